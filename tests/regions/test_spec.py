"""The declarative rail spec: validation messages, exact parsing, zero-decimal units, and writer round trips."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from regions import all_regions, get_region, yamlfile
from regions.rails import FileRejected, get_adapter, rail_names
from regions.rails.base import DEFAULT_BATCH_ROWS
from regions.spec import SpecError, json_schema, parse_spec
from regions.spec.engine import SpecAdapter
from regions.spec.model import read_yaml
from regions.synthetic.writers import get_writer
from tests.regions.spec_regions import RW_YAML, write_regions
from tests.support.roundtrip import assert_round_trip, read_all, side_by_side, truth_frame, utc


@pytest.fixture
def regions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return write_regions(tmp_path / "regions", monkeypatch)


def spec_of(text: str):
    data, lines = read_yaml(text, "spec.yaml")
    return parse_spec(data, lines=lines, origin="spec.yaml")


# ---------------------------------------------------------------------------------------------------- loading
def test_regions_from_the_regions_dir_join_the_shipped_ones(regions_dir: Path) -> None:
    regions = all_regions()
    assert {"RW", "UG", "KE", "NG"} <= set(regions)
    rw = get_region("rw")
    assert (rw.currency, rw.exponent, rw.source_format) == ("RWF", 0, "spec:rw")
    assert rw.rail_spec is not None and rw.rail_spec.format == "csv"
    assert get_adapter("spec:rw").format_name == "spec:rw"


def test_without_the_variable_only_shipped_regions_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANDA_REGIONS_DIR", raising=False)
    assert "RW" not in all_regions()
    assert set(rail_names()) >= {"mpesa", "paystack", "stripe"}


def test_every_shipped_yaml_file_reads_the_same_with_either_parser() -> None:
    """Region files and rail specs are read with libyaml's parser when PyYAML has it: the documents and the key
    lines that error messages cite must be what PyYAML's own parser gives."""
    # PyYAML's wheels carry libyaml; without it the fast path is gone and this compares one parser with itself
    assert yaml.__with_libyaml__ and yamlfile._FastLoader is yaml.CSafeLoader
    root = Path(__file__).parents[2] / "regions"
    files = sorted(root.glob("config/*.yaml")) + sorted(root.glob("rails/*/spec.yaml"))
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert yamlfile._parse(text, yamlfile._FastLoader) == yamlfile._parse(text, yaml.SafeLoader), path


def test_a_yaml_syntax_error_names_the_line_and_the_character(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    broken = RW_YAML.replace("\n", "\n\t", 1)  # a tab where indentation belongs: a common slip
    write_regions(tmp_path / "regions", monkeypatch, rw=broken)
    with pytest.raises(SpecError, match=r"rw\.yaml:2: found character '\\t' that cannot start any token"):
        get_region("RW")  # the broken file stops its own region only (tests/regions/test_region_files.py)


def test_spec_errors_name_the_file_line_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = RW_YAML.replace("  amount: {unit: major}", "  amount: {unit: major, decimals: ','}").replace(
        "kind: phone", "kind: telephone"
    )
    write_regions(tmp_path / "regions", monkeypatch, rw=broken)
    with pytest.raises(SpecError) as caught:
        all_regions(strict=True)
    problems = caught.value.problems
    lines = broken.splitlines()
    amount_line = next(i for i, line in enumerate(lines, 1) if "decimals" in line)
    buyer_line = next(i for i, line in enumerate(lines, 1) if "telephone" in line)
    assert any(
        p.endswith(f"rw.yaml:{amount_line}: rail.amount.decimals: Extra inputs are not permitted") for p in problems
    )
    assert any(f"rw.yaml:{buyer_line}: rail.fields.buyer.kind:" in p and "'email' or 'phone'" in p for p in problems)


def test_a_bad_source_and_a_bad_regex_are_named() -> None:
    text = (
        "format: csv\namount: {unit: minor}\ntime: {zone: utc}\nfields:\n  transaction_id: id\n"
        "  amount: {colum: Amount}\n  occurred_at: {regex: {of: t, pattern: '('}}\n  reference: ref\n"
    )
    with pytest.raises(SpecError) as caught:
        spec_of(text)
    assert caught.value.problems[0].startswith("spec.yaml:6: fields.amount: a source is a column name or")
    assert caught.value.problems[1].startswith("spec.yaml:7: fields.occurred_at.regex.pattern:")


def test_region_file_errors_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_regions(tmp_path / "regions", monkeypatch, rw=RW_YAML.replace("zone: Africa/Kigali", "zone: Africa/Kigal"))
    with pytest.raises(SpecError, match=r"rw\.yaml:5: zone: 'Africa/Kigal' is not an IANA time zone"):
        get_region("RW")


def test_a_region_code_defined_twice_is_an_error_naming_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_regions(tmp_path / "regions", monkeypatch, ke=RW_YAML.replace("code: RW", "code: KE"))
    with pytest.raises(SpecError, match=r"ke\.yaml:1: code: region KE is already defined in .*ke\.yaml"):
        get_region("KE")


def test_json_schema_is_exported_for_editors() -> None:
    schema = json_schema()
    assert schema["title"] == "kanda rail spec"
    assert {"format", "amount", "time", "fields"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


# ---------------------------------------------------------------------------------------------------- parsing
BD_SPEC = """\
format: csv
header:
  aliases:
    amount: ["Amount (BDT)", "Taka"]
ignore:
  - {of: trx, matches: '^(Total|Grand total)'}
amount: {unit: major}
time: {formats: ["%d/%m/%Y %H:%M"], zone: local, native_digits: true}
fields:
  transaction_id: trx
  amount: amount
  occurred_at: when
  creator_id: {regex: {of: note, pattern: '(?P<creator>BD-C\\d{4})', group: creator}}
  product_id: {regex: {of: note, pattern: '\\.(BD-P\\d{5})'}}
  buyer: {of: msisdn, kind: phone}
"""


def test_lakh_grouping_native_digits_and_local_times_parse_exactly(tmp_path: Path) -> None:
    sample = tmp_path / "bd.csv"
    sample.write_text(
        "trx,when,Taka,note,msisdn\n"
        'A1,05/03/2025 10:30,"1,00,000.50",for BD-C0001.BD-P00001,01712345678\n'
        "A2,০৫/০৩/২০২৫ ১০:৩০,৫০০,for BD-C0001.BD-P00002,\n"
        'A3,05/03/2025 10:30,"12,34,567",for BD-C0002.BD-P00005,+8801712345678\n'
        "A4,05/03/2025 10:30,12.345,for BD-C0002.BD-P00005,\n"
        'Grand total,,"13,35,067.50",,\n'
    )
    frame, ignored = read_all(SpecAdapter(spec_of(BD_SPEC), "bd_test"), sample, get_region("BD"))
    assert ignored == 1
    assert frame["amount_minor"].to_list() == [10_000_050, 50_000, 123_456_700, None]  # 3 decimals: null
    assert frame["occurred_at"].to_list() == [utc(2025, 3, 5, 4, 30)] * 4  # Asia/Dhaka is UTC+6
    assert frame["creator_id"].to_list() == ["BD-C0001", "BD-C0001", "BD-C0002", "BD-C0002"]
    assert frame["buyer_ref"][0] == frame["buyer_ref"][2] and frame["buyer_ref"][1] is None


COMMA_SPEC = """\
format: csv
delimiter: auto
amount: {unit: major, decimal: ","}
time: {formats: [iso], zone: offset}
fields:
  transaction_id: id
  amount: Betrag
  fee: Gebuehr
  occurred_at: Zeit
  reference: Ref
"""


def test_comma_decimals_semicolons_and_offset_times(tmp_path: Path) -> None:
    sample = tmp_path / "eg.csv"
    sample.write_text(
        "id;Betrag;Gebuehr;Zeit;Ref\n"
        "x1;1.234,50;18,52;2025-03-05T10:30:00+02:00;EG-C0001.EG-P00001\n"
        "x2;99,9;;2025-03-05T08:30:00Z;EG-C0001.EG-P00001\n"
    )
    region = get_region("EG")
    frame, _ = read_all(SpecAdapter(spec_of(COMMA_SPEC.replace("Ref", "Ref")), "eg_test"), sample, region)
    assert frame["amount_minor"].to_list() == [123_450, 9_990]
    assert frame["fee_minor"].to_list() == [1_852, 0]  # an empty fee is no fee
    assert frame["occurred_at"].to_list() == [utc(2025, 3, 5, 8, 30)] * 2


def test_strftime_times_with_an_offset_read_the_offset_and_a_second_of_60_is_unreadable(tmp_path: Path) -> None:
    spec = COMMA_SPEC.replace("formats: [iso]", 'formats: ["%Y-%m-%d %H:%M:%S %z"]')
    sample = tmp_path / "eg.csv"
    sample.write_text(
        "id;Betrag;Gebuehr;Zeit;Ref\n"
        "x1;10,00;;2025-03-05 10:30:00 +0200;EG-C0001.EG-P00001\n"
        "x2;10,00;;2025-03-05 23:59:60 +0200;EG-C0001.EG-P00001\n"  # not the next minute, nor the next day
    )
    frame, _ = read_all(SpecAdapter(spec_of(spec), "eg_test"), sample, get_region("EG"))
    assert frame["occurred_at"].to_list() == [utc(2025, 3, 5, 8, 30), None]


def test_a_file_without_the_spec_columns_is_rejected_with_what_is_missing(regions_dir: Path, tmp_path: Path) -> None:
    sample = tmp_path / "other.csv"
    sample.write_text("Receipt,Amount\nA,1\n")
    with pytest.raises(FileRejected) as raised:
        read_all(get_adapter("spec:rw"), sample, get_region("RW"))
    # the columns as the rail's exports print them (first header spelling), in the aliases' order
    assert raised.value.kind == "wrong_columns"
    assert "required column(s) missing: Transaction ID, Date, Status, Fee, Narrative, Payer" in raised.value.reason


# -------------------------------------------------------------------------------------------- zero-decimal units
def test_zero_decimal_amounts_are_exact_in_major_and_in_declared_x100_units(regions_dir: Path, tmp_path: Path) -> None:
    rw_file = tmp_path / "rw.csv"
    rw_file.write_text(
        "Transaction ID,Status,Amount (RWF),Fee,Date,Narrative,Payer\n"
        'T1,Completed,"12,500",188,05/03/2025 10:00:00,REF RW-C0001/RW-P00001,0788123456\n'
        "T2,Completed,12500.00,0,05/03/2025 10:00:00,REF RW-C0001/RW-P00001,\n"
        "T3,Completed,12500.5,0,05/03/2025 10:00:00,REF RW-C0001/RW-P00001,\n"
        "T1,Refunded,12500,0,06/03/2025 09:00:00,REF RW-C0001/RW-P00001,\n"
    )
    rw, _ = read_all(get_adapter("spec:rw"), rw_file, get_region("RW"))
    # RWF has no minor unit: "12,500" is 12500 minor units, not 1,250,000 and not 125.
    assert rw["amount_minor"].to_list() == [12_500, 12_500, None, -12_500]
    assert rw["fee_minor"].to_list() == [188, 0, 0, 0]
    assert rw["occurred_at"][0] == utc(2025, 3, 5, 8, 0)  # Africa/Kigali is UTC+2

    ug_file = tmp_path / "ug.csv"
    ug_file.write_text(
        "id,Status,Amount,Amount Refunded,Fee,Currency,Created (UTC),kanda_ref (metadata),Customer Email\n"
        "ch_1,Paid,1250000,0,18800,ugx,2025-03-05 10:00:00,UG-C0001.UG-P00001,a@b.example\n"
        "ch_2,Paid,1250050,0,0,ugx,2025-03-05 10:00:00,UG-C0001.UG-P00001,\n"
        "ch_1,Refunded,1250000,1250000,0,ugx,2025-03-06 10:00:00,UG-C0001.UG-P00001,\n"
    )
    ug, _ = read_all(get_adapter("spec:ug"), ug_file, get_region("UG"))
    # Declared x100: 1250000 is UGX 12,500; a value that is not a multiple of 100 is not what the spec says: null.
    assert ug["amount_minor"].to_list() == [12_500, None, -12_500]
    assert ug["fee_minor"].to_list() == [188, 0, 0]
    assert ug["currency"].to_list() == ["UGX"] * 3


# ------------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("code", ["RW", "UG"])
def test_generated_files_read_back_as_the_truth(regions_dir: Path, tmp_path: Path, code: str) -> None:
    region = get_region(code)
    truth = truth_frame(region, seed=11, rows=1500)
    writer, extension = get_writer(region.source_format)
    path = tmp_path / f"{code.lower()}.{extension}"
    writer(path, iter([truth]), region, np.random.default_rng(5))
    frame, ignored = read_all(get_adapter(region.source_format), path, region)
    assert frame.height == truth.height and frame["source_row"].is_unique().all()
    both = side_by_side(truth, frame)
    assert_round_trip(both, compare=("amount_minor", "fee_minor", "event_type", "status", "creator_id", "product_id"))
    if code == "RW":  # title lines, a disclaimer and a repeated header per page, the Totals row
        pages = -(-truth.height // 250)
        assert ignored == 2 + 2 * pages + 1
        assert frame.filter(pl.col("event_type") == "sale")["amount_minor"].min() > 0


def test_title_lines_are_counted_when_the_export_has_no_records(regions_dir: Path, tmp_path: Path) -> None:
    """A quiet day's statement (title lines, then only the header) accounts for its title lines as a busy day's does."""
    region = get_region("RW")
    writer, extension = get_writer(region.source_format)
    full = tmp_path / f"full.{extension}"
    writer(full, iter([truth_frame(region, seed=2, rows=5)]), region, np.random.default_rng(1))
    title_and_header = full.read_text().splitlines(keepends=True)[:3]
    assert title_and_header[2].startswith("Transaction ID,"), "the RW writer's third line is expected to be its header"
    quiet = tmp_path / f"quiet.{extension}"
    quiet.write_text("".join(title_and_header))
    frame, ignored = read_all(get_adapter(region.source_format), quiet, region)
    assert (frame.height, ignored) == (0, 2)


def test_a_spec_whose_mapping_cannot_be_inverted_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = RW_YAML.replace("transaction_id: txn", "transaction_id: {split: {of: txn, separator: '-', index: 0}}")
    write_regions(tmp_path / "regions", monkeypatch, rw=text)
    region = get_region("RW")
    writer, _ = get_writer(region.source_format)
    truth = truth_frame(region, seed=1, rows=10, start=dt.date(2025, 3, 1))
    with pytest.raises(ValueError, match="field 'transaction_id': the synthetic writer renders only columns"):
        writer(tmp_path / "x.csv", iter([truth]), region, np.random.default_rng(0))


# ------------------------------------------------------------------------------------- built-in rails as specs
RAILS = Path(__file__).parents[2] / "regions" / "rails"


@pytest.mark.parametrize(("rail", "folder"), [("stripe_payments", "stripe"), ("platform_csv", "gumroad")])
def test_a_rail_the_spec_expresses_is_read_by_its_spec_alone(rail: str, folder: str) -> None:
    """The shipped rail is its spec (no reader module), under the format name its regions already use; what it
    reads is proven by the rail's own tests (samples, round trips, amounts, the bad-input table)."""
    assert (RAILS / folder / "spec.yaml").exists() and not (RAILS / folder / "reader.py").exists()
    adapter = get_adapter(rail)
    assert isinstance(adapter, SpecAdapter) and adapter.format_name == rail


def test_fan_out_orders_events_by_row_then_template_and_charges_the_fee_once(tmp_path: Path) -> None:
    sample = tmp_path / "eg.csv"
    sample.write_text(
        "id;Created date (UTC);Amount;Amount Refunded;Currency;Fee;Status;kanda_ref (metadata)\n"
        "ch_1;2024-05-01 10:00:00;100,00;40,00;egp;3,00;Disputed;EG-C0001.EG-P00001\n"
        "ch_2;2024-05-01 11:00:00;50,00;0,00;egp;1,50;Paid;EG-C0001.EG-P00001\n"
        "ch_3;2024-05-01 12:00:00;20,00;N/A;egp;1,00;Pending;EG-C0001.EG-P00001\n"
    )
    frame, ignored = read_all(get_adapter("stripe_payments"), sample, get_region("EG"))
    assert ignored == 0
    rows = frame.select("source_row", "transaction_id", "event_type", "status", "amount_minor", "fee_minor").rows()
    assert rows == [
        (1, "ch_1", "sale", "success", 10_000, 300),
        (1, "ch_1", "refund", "success", -4_000, 0),
        (1, "ch_1", "reversal", "success", -6_000, 0),  # what was not refunded
        (2, "ch_2", "sale", "success", 5_000, 150),
        (3, "ch_3", "sale", "pending", 2_000, 100),
        (3, "ch_3", "refund", None, None, 0),  # unreadable: a refund of unknown size, on a charge not yet paid
    ]


def test_an_event_amount_may_only_name_an_event_defined_before_it() -> None:
    text = (
        "format: csv\namount: {unit: major}\ntime: {zone: utc}\nfields:\n  transaction_id: id\n"
        "  amount: A\n  occurred_at: t\n  reference: r\nevents:\n  - event_type: reversal\n"
        "    when: {of: D, equals: '1'}\n    amount: {minus: [A, {event: refund}]}\n"
    )
    with pytest.raises(SpecError, match=r"spec.yaml:9: events: .*event 0's amount names event 'refund'"):
        spec_of(text)


@pytest.mark.parametrize(
    ("extra", "events", "problem"),
    [
        ("", "    settled_amount: C\n", "event 0 has `settled_amount` but `fields.settled` is not given"),
        ("  settled: {currency: S, amount: C}\n", "", "`settled` needs `currency`"),
        ("  currency: K\n  net: N\n  settled: {currency: S, amount: C}\n", "", "cannot be combined with net"),
    ],
)
def test_settled_figures_are_refused_where_they_would_mix_currencies(extra: str, events: str, problem: str) -> None:
    """A settled figure replaces a payment's amount in another currency by what it settled for in the region's:
    without `fields.settled` nothing says which rows that is, without `currency` nothing says the payment was in
    another currency, and beside a stated net (in the payment's currency) the two would disagree."""
    text = (
        "format: csv\namount: {unit: major}\ntime: {zone: utc}\nfields:\n  transaction_id: id\n"
        f"  amount: A\n  occurred_at: t\n  reference: r\n{extra}events:\n  - event_type: refund\n"
        f"    when: {{of: D, equals: '1'}}\n    amount: D\n{events}"
    )
    with pytest.raises(SpecError, match=re.escape(problem)):
        spec_of(text)


# ------------------------------------------------------------------------------------------- NDJSON and XLSX
NDJSON_RAIL = """\
  format: ndjson
  vocabulary:
    of: event.status
    map: {ok: [sale, success], waiting: [sale, pending], declined: [sale, failed], refund: [refund, success],
          chargeback: [reversal, success]}
  amount: {unit: minor}
  time: {formats: [iso], zone: offset}
  fields:
    transaction_id: event.payment.id
    amount: event.payment.amount
    fee: event.payment.fee
    occurred_at: event.at
    reference: event.payment.ref
    buyer: {of: event.customer.email, kind: email}
"""

XLSX_RAIL = """\
  format: xlsx
  header:
    aliases:
      txn: ["Transaction Id", "Financial Transaction Id"]
  ignore:
    - {of: txn, equals: Totals}
  vocabulary:
    of: Status
    map: {SUCCESSFUL: [sale, success], PENDING: [sale, pending], FAILED: [sale, failed], REFUNDED: [refund, success],
          REVERSED: [reversal, success]}
  amount: {unit: major}
  time: {formats: ["%Y-%m-%d %H:%M:%S"], zone: local}
  fields:
    transaction_id: txn
    amount: Amount
    fee: Fee
    occurred_at: Date
    reference: External Id
    buyer: {of: Payer, kind: phone}
  writer:
    preamble: ["MoMo merchant export"]
    trailer: [["Totals"]]
"""


@pytest.mark.parametrize("rail", [NDJSON_RAIL, XLSX_RAIL], ids=["ndjson", "xlsx"])
def test_ndjson_and_xlsx_rails_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rail: str) -> None:
    from tests.regions.spec_regions import UG_YAML

    region_yaml = UG_YAML[: UG_YAML.index("rail:")] + "rail:\n" + rail
    write_regions(tmp_path / "regions", monkeypatch, ug=region_yaml)
    region = get_region("UG")
    truth = truth_frame(region, seed=8, rows=600)
    writer, extension = get_writer(region.source_format)
    path = tmp_path / f"ug.{extension}"
    writer(path, iter([truth]), region, np.random.default_rng(3))
    frame, ignored = read_all(get_adapter(region.source_format), path, region)
    assert frame.height == truth.height
    assert ignored == (2 if extension == "xlsx" else 0)  # the title row and the Totals row
    assert_round_trip(
        side_by_side(truth, frame), compare=("amount_minor", "fee_minor", "event_type", "status", "creator_id")
    )


@pytest.mark.parametrize("code", ["NG", "EG"])
def test_a_large_file_without_the_optional_column_an_ignore_rule_reads_is_read_whole(code: str, tmp_path: Path) -> None:
    """Paystack's test-mode rule reads `data.domain` and Stripe's reads `Mode`, which a file may lack. The rule is
    then a literal, and polars fails filtering 20,000 rows or more by a literal predicate: every such file of a
    real size stopped the ingest with a traceback, while the small samples in the tests read fine."""
    from tests.support.builders import paystack_event

    rows = 50_000
    if code == "NG":
        path = tmp_path / "webhooks.ndjson"
        path.write_text("".join(json.dumps(paystack_event(n)) + "\n" for n in range(rows)))
    else:
        path = tmp_path / "payments.csv"
        line = "ch_{};2026-10-01 10:00:00;100,00;0,00;egp;1,50;Paid;EG-C0001.EG-P00001\n"
        path.write_text(
            "id;Created date (UTC);Amount;Amount Refunded;Currency;Fee;Status;kanda_ref (metadata)\n"
            + "".join(line.format(n) for n in range(rows))
        )
    region = get_region(code)
    # read in chunks of the default size, as an ingest reads them (the tests' usual 500 rows never showed it)
    frame, ignored = read_all(get_adapter(region.source_format), path, region, batch_rows=DEFAULT_BATCH_ROWS)
    assert (frame.height, ignored) == (rows, 0)
