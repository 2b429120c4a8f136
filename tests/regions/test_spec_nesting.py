"""Sources nested in sources: a `case` on a column inside a `case` on `@event_type`, lookups and coalesces under it.

The engine computes some values once per chunk into working columns (a column's lower-cased text, a parsed amount)
that other expressions read. A fee that is a `case` on a column parses an expression that reads the column's
lower-cased working text, and both were added in one `with_columns`, which computes its columns side by side:
polars failed with `ColumnNotFoundError: _lowerN`, so Flutterwave's fee could not depend on `merchant_fee`. A
spec that reads a derived value (`@event_type`) where it is not derived yet is refused on load, naming the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regions import get_region
from regions.spec import SpecError, parse_spec
from regions.spec.engine import SpecAdapter
from regions.spec.model import read_yaml
from tests.support.roundtrip import read_all, utc

REGION = get_region("EG")  # EGP, two decimals

SPEC = """\
format: csv
amount: {{unit: major}}
time: {{formats: {formats}, zone: utc}}
{extra}fields:
  transaction_id: id
  event_type: {{lookup: {{of: kind, table: {{pay: sale, back: refund}}}}}}
  amount: {amount}
  fee: {fee}
  occurred_at: {time}
  reference: ref
"""

ROWS = """\
id,kind,amount,fee,extra,flag,tier,at,day,ref
t1,pay,100.00,3.00,1.00,Y,a,2025-03-05T10:00:00Z,05/03/2025 10:00,EG-C0001.EG-P00001
t2,pay,100.00,3.00,1.00,n,b,2025-03-05T11:00:00Z,13/03/2025 11:00,EG-C0001.EG-P00001
t3,pay,100.00,,1.00, y ,a,2025-03-05T12:00:00Z,05/03/2025 12:00,EG-C0001.EG-P00001
t4,back,40.00,3.00,1.00,Y,b,2025-03-05T13:00:00Z,05/03/2025 13:00,EG-C0001.EG-P00001
"""


def spec_text(*, fee: str = "fee", amount: str = "amount", time: str = "at", formats: str = "[iso]", extra: str = ""):
    return SPEC.format(fee=fee, amount=amount, time=time, formats=formats, extra=extra)


def read(tmp_path: Path, text: str):
    data, lines = read_yaml(text, "spec.yaml")
    spec = parse_spec(data, lines=lines, origin="spec.yaml")
    sample = tmp_path / "nested.csv"
    sample.write_text(ROWS)
    frame, ignored = read_all(SpecAdapter(spec, "nested_test"), sample, REGION)
    return frame, ignored


#: Fee sources nested two to four deep, and the fee (minor units) of rows t1..t4 (t4 is a refund).
NESTED_FEES = {
    # Flutterwave's shape: a sale's fee depends on another column
    "case in case": (
        '{case: {of: "@event_type", when: {sale: {case: {of: flag, when: {y: fee}, default: extra}}},'
        ' default: {value: "0"}}}',
        [300, 100, 0, 0],  # t3's fee is empty: no fee
    ),
    "lookup in case in case": (
        '{case: {of: "@event_type", when: {sale: {case: {of: flag, when: {y: {lookup: {of: tier,'
        ' table: {a: "2.50", b: "5.00"}}}}, default: fee}}}, default: {value: "0"}}}',
        [250, 300, 250, 0],
    ),
    "case in coalesce in case": (
        '{case: {of: "@event_type", when: {sale: {coalesce: [{case: {of: flag, when: {y: fee}}}, extra]}},'
        ' default: {value: "0"}}}',
        [300, 100, 100, 0],  # no branch, or an empty fee: the next of the coalesce
    ),
    "case on a lookup over a case": (
        '{case: {of: {lookup: {of: {case: {of: "@event_type", when: {sale: flag}, default: kind}},'
        ' table: {y: "yes", back: "yes"}, default: "no"}}, when: {"yes": fee}, default: extra}}',
        [300, 100, 0, 300],
    ),
    "coalesce in case in case in case": (
        '{case: {of: "@event_type", when: {sale: {case: {of: flag, when: {y: {case: {of: tier,'
        ' when: {a: {coalesce: [fee, extra]}}, default: {value: "0"}}}}, default: extra}}},'
        ' default: {value: "0"}}}',
        [300, 100, 100, 0],
    ),
}


@pytest.mark.parametrize("fee", list(NESTED_FEES), ids=list(NESTED_FEES))
def test_nested_sources_read_the_fee_each_row_states(tmp_path: Path, fee: str) -> None:
    source, expected = NESTED_FEES[fee]
    frame, _ = read(tmp_path, spec_text(fee=source))
    assert frame["fee_minor"].to_list() == expected


def test_an_amount_read_by_a_case_on_a_column_nested_in_the_event_types(tmp_path: Path) -> None:
    amount = '{case: {of: "@event_type", when: {sale: {case: {of: tier, when: {b: extra}, default: amount}}}}}'
    frame, _ = read(tmp_path, spec_text(amount=amount))
    assert frame["amount_minor"].to_list() == [10_000, 100, 10_000, None]  # t4: a refund, no branch


def test_an_ignore_rule_on_an_amount_read_by_a_case_on_a_column(tmp_path: Path) -> None:
    """Rows are set aside before anything else is read: the rule's parsed amount reads the lower-cased flag."""
    extra = "ignore:\n  - {of: {case: {of: flag, when: {n: extra}}}, nonzero: true}\n"
    frame, ignored = read(tmp_path, spec_text(extra=extra))
    assert (frame["transaction_id"].to_list(), ignored) == (["t1", "t3", "t4"], 1)


@pytest.mark.parametrize("of", ["tier", '"@event_type"'])
def test_a_day_first_time_read_by_a_case(tmp_path: Path, of: str) -> None:
    """Day-first formats are checked over the whole chunk before the rows are mapped (a month-first file is
    refused): that check read the time where neither the working texts nor the event type existed yet."""
    when = "a" if of == "tier" else "sale"
    time = f"{{case: {{of: {of}, when: {{{when}: day}}, default: at}}}}"
    frame, _ = read(tmp_path, spec_text(time=time, formats='["%d/%m/%Y %H:%M", iso]'))
    assert frame["occurred_at"].to_list()[:3] == [
        utc(2025, 3, 5, 10),
        utc(2025, 3, 13, 11) if of == '"@event_type"' else utc(2025, 3, 5, 11),
        utc(2025, 3, 5, 12),
    ]


def test_an_event_template_whose_amount_is_a_case_on_a_column(tmp_path: Path) -> None:
    extra = (
        "events:\n  - event_type: refund\n    when: {of: flag, equals: n}\n"
        "    amount: {case: {of: tier, when: {b: extra}, default: amount}}\n"
    )
    frame, _ = read(tmp_path, spec_text(extra=extra))
    refunds = frame.filter(frame["transaction_id"] == "t2")
    assert refunds.select("event_type", "amount_minor").rows() == [("sale", 10_000), ("refund", -100)]


#: A source reading a derived value before it is derived: (text replaced, its replacement, the error expected).
TOO_EARLY = {
    "ignore rule": (
        "fields:",
        'ignore:\n  - {of: {case: {of: "@event_type", when: {sale: flag}}}, equals: x}\nfields:',
        r"spec\.yaml:4: ignore: .*rule 0 reads @event_type, which is derived only for the rows no rule sets aside",
    ),
    "vocabulary": (
        "fields:",
        'vocabulary:\n  of: {coalesce: [kind, "@status"]}\n  map: {pay: [sale, success]}\nfields:',
        r"spec\.yaml:5: vocabulary\.of: .*reads @status, which is derived after the vocabulary",
    ),
    "status": (
        "  amount: amount",
        '  status: {case: {of: "@event_type", when: {sale: {value: success}}}}\n  amount: amount',
        r"spec\.yaml:7: fields\.status: .*reads @event_type, which is derived after the event type, status and ref",
    ),
    "reference": (
        "  reference: ref",
        '  reference: {case: {of: "@status", when: {success: ref}}}',
        r"spec\.yaml:10: fields\.reference: .*reads @status",
    ),
}


@pytest.mark.parametrize("where", list(TOO_EARLY), ids=list(TOO_EARLY))
def test_a_derived_value_read_before_it_is_derived_is_refused_on_load(where: str) -> None:
    """Polars would report such a spec as a missing column on the first file; the author gets the key at load."""
    old, new, message = TOO_EARLY[where]
    data, lines = read_yaml(spec_text().replace(old, new, 1), "spec.yaml")
    with pytest.raises(SpecError, match=message):
        parse_spec(data, lines=lines, origin="spec.yaml")
