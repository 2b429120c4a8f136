"""Every rail's amounts are exact or quarantined: never a different number (the int64 wrap-around class of bugs).

For each adapter, Hypothesis writes amount strings of any length (up to 30 digits), sign, grouping (western, lakh,
spaces), decimal style and padding into a minimal native file, and some damaged ones (misplaced grouping, letters,
two decimal marks). The file goes through the reader and the contract. Each row must come out either loaded with
exactly the value Python's `Decimal` gives (times 10**exponent, integral), or quarantined for its money; and
whatever number a quarantined row shows must be that same exact value or nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quality.contract import MAX_ABS_MINOR
from regions import RegionConfig, get_region
from regions.rails import get_adapter
from regions.rails.momo.writer import HEADER as MOMO_HEADER
from tests.support.roundtrip import read_all, through_contract

MONEY_COLUMNS = {"amount_minor", "fee_minor", "net_minor"}


@dataclass(frozen=True)
class Amount:
    """An amount as written in a file, and the exact number(s) it states (none: it states no number)."""

    text: str
    value: Decimal | None
    plain: bool  # digits, an optional standard grouping and at most the currency's decimals: must load if in range
    number_cell: bool = False  # MoMo only: an Excel number cell rather than text
    binary: bool = False  # a binary float (JSON float, Excel number): its exact double value is as true as its text

    def values(self) -> set[Decimal]:
        if self.value is None:
            return set()
        if not self.binary:
            return {self.value}
        f = float(self.value)
        return {self.value, Decimal(repr(f)), Decimal(f)}


def _group(digits: str, style: str, mark: str) -> str:
    if style == "none" or len(digits) <= 3:
        return digits
    sep = " " if style == "space" else mark
    head, tail = digits[:-3], digits[-3:]
    size = 2 if style == "lakh" else 3
    groups = []
    while head:
        groups.insert(0, head[-size:])
        head = head[:-size]
    return sep.join([*groups, tail])


@st.composite
def major_amounts(draw: st.DrawFn, exponent: int, decimal: str) -> Amount:
    """Major units as a person or an export writes them, sometimes damaged."""
    thousands = "," if decimal == "." else "."
    whole = draw(st.one_of(st.integers(0, 10**7), st.integers(0, 10**30)))
    digits = str(whole)
    sign = draw(st.sampled_from(["", "", "", "-", "+"]))
    style = draw(st.sampled_from(["none", "none", "western", "lakh", "space"]))
    zeros = "0" * draw(st.integers(0, 2)) if style == "none" else ""
    fraction = draw(st.one_of(st.none(), st.text("0123456789", min_size=0, max_size=5)))
    pad = draw(st.sampled_from(["", " ", "  "])), draw(st.sampled_from(["", " ", "\u00a0"]))
    text = sign + zeros + _group(digits, style, thousands) + ("" if fraction is None else decimal + fraction)
    value = Decimal(f"{sign}{digits}.{fraction or '0'}")
    damage = draw(st.sampled_from([None] * 6 + ["misgrouped", "letter", "two_marks", "trailing_sign"]))
    if damage == "misgrouped" and len(digits) >= 3:
        text, value = sign + digits[:-2] + thousands + digits[-2:], None  # "12,50": not a grouping, not a decimal
    elif damage == "letter":
        text, value = text.replace("0", "O", 1) if "0" in text else text + "x", None
    elif damage == "two_marks":
        text, value = text + f"{decimal}5{decimal}5", None
    elif damage == "trailing_sign":
        text, value = text + "-", None
    plain = value is not None and sign == "" and style in ("none", "western") and len(fraction or "") <= exponent
    return Amount(pad[0] + text + pad[1], value, plain)


@st.composite
def minor_amounts(draw: st.DrawFn) -> Amount:
    """Minor units as a JSON rail sends them: a number (integer or float) or a string, of any size."""
    whole = draw(st.one_of(st.integers(-(10**7), 10**7), st.integers(-(10**30), 10**30)))
    kind = draw(st.sampled_from(["int", "int", "string", "float", "padded"]))
    if kind == "float":
        fraction = draw(st.sampled_from(["0", "5", "25", "0000001"]))
        text = f"{whole}.{fraction}"
        return Amount(text, Decimal(text), plain=False, binary=True)
    if kind == "string":
        return Amount(json.dumps(str(whole)), Decimal(whole), plain=whole > 0)
    if kind == "padded":
        return Amount(json.dumps(f" {whole} "), Decimal(whole), plain=False)
    return Amount(str(whole), Decimal(whole), plain=whole > 0)


@st.composite
def momo_amounts(draw: st.DrawFn) -> Amount:
    """MoMo's portal writes text or Excel number cells."""
    if draw(st.booleans()):
        return draw(major_amounts(2, "."))
    cents = draw(st.one_of(st.integers(-(10**6), 10**9), st.integers(-(10**20), 10**20)))
    value = Decimal(cents) / 100
    return Amount(f"{value:f}", value, plain=False, number_cell=True, binary=True)


# ------------------------------------------------------------------------------------------------ native files
def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def gumroad_file(path: Path, amounts: list[Amount], fees: list[Amount] | None = None) -> None:
    header = [
        "Purchase ID",
        "Item Name",
        "Purchase Date",
        "Purchase Time",
        "Sale Price (TZS)",
        "Fees (TZS)",
        "Net Total (TZS)",
    ]
    rows = []
    for i, (a, f) in enumerate(zip(amounts, fees or [ZERO] * len(amounts), strict=True)):
        # the stated net must agree with the sale and fee; where the fee states no exact number, nothing can
        fee = exact_minor(f, get_region("TZ"), major=True)
        net = f"{(a.value * 100 - fee.pop()) / 100:.2f}" if a.value is not None and len(fee) == 1 else "0.00"
        rows.append([f"P{i}", "[TZ-C0001.TZ-P00001] x", "2025-02-11", "10:00:00", a.text, f.text, net])
    path.write_text(_csv([header, *rows]), encoding="utf-8")


def mpesa_file(path: Path, amounts: list[Amount]) -> None:
    header = ["Receipt No", "Completion Time", "Details", "Transaction Status", "Paid In", "Withdrawn", "Balance"]
    details = "Pay Bill Online from 0712345678 - JANE W Acc. KE-C0001.KE-P00001"
    rows = [
        [f"SBA{i:07d}", "2025-02-11 13:42:20", details, "Completed", a.text, "", "0.00"] for i, a in enumerate(amounts)
    ]
    path.write_text(_csv([header, *rows]), encoding="utf-8")


def stripe_file(delimiter: str) -> Callable[..., None]:
    def write(path: Path, amounts: list[Amount], fees: list[Amount] | None = None) -> None:
        zero = "0,00" if delimiter == ";" else "0.00"
        header = [
            "id",
            "Created date (UTC)",
            "Amount",
            "Amount Refunded",
            "Currency",
            "Fee",
            "Status",
            "kanda_ref (metadata)",
        ]
        fee_texts = [f.text for f in fees] if fees else [zero] * len(amounts)
        rows = [
            [f"ch_{i}", "2025-02-11 10:00:00", a.text, zero, "egp", fee, "Paid", "EG-C0001.EG-P00001"]
            for i, (a, fee) in enumerate(zip(amounts, fee_texts, strict=True))
        ]
        path.write_text(_csv([header, *rows], delimiter), encoding="utf-8")

    return write


def _ndjson(path: Path, records: list[dict], verbatim: dict[str, list[Amount]]) -> None:
    """One JSON document a line, each `verbatim` field written as is (a raw JSON number, or a quoted string)."""
    lines = []
    for index, record in enumerate(records):
        line = json.dumps(record)
        for field, values in verbatim.items():
            line = line.replace(f'"{field}": "@"', f'"{field}": {values[index].text}')
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def bkash_file(path: Path, amounts: list[Amount]) -> None:
    records = [
        {
            "paymentID": f"TR{i}",
            "trxID": f"X{i}",
            "transactionStatus": "Completed",
            "amount": "@",
            "currency": "BDT",
            "intent": "sale",
            "merchantInvoiceNumber": "BD-C0001.BD-P00001.a",
            "paymentExecuteTime": "2025-02-11T12:05:00:000 GMT+0600",
            "customerMsisdn": "01770618575",
            "statusCode": "0000",
        }
        for i in range(len(amounts))
    ]
    _ndjson(path, records, {"amount": [Amount(json.dumps(a.text), a.value, a.plain) for a in amounts]})


def paystack_file(path: Path, amounts: list[Amount], fees: list[Amount] | None = None) -> None:
    records = [
        {
            "event": "charge.success",
            "data": {
                "status": "success",
                "reference": f"R{i}",
                "amount": "@",
                "paid_at": "2025-02-11T10:42:20.000Z",
                "created_at": "2025-02-11T10:41:55.000Z",
                "channel": "card",
                "currency": "NGN",
                "fees": "@",
                "customer": {"email": None},
                "metadata": {"kanda_ref": "NG-C0001.NG-P00001"},
            },
        }
        for i in range(len(amounts))
    ]
    _ndjson(path, records, {"amount": amounts, "fees": fees or [Amount("0", Decimal(0), True)] * len(amounts)})


def jazzcash_file(path: Path, amounts: list[Amount]) -> None:
    records = [
        {
            "pp_TxnType": "MWALLET",
            "pp_TxnRefNo": f"T{i}",
            "pp_Amount": "@",
            "pp_TxnCurrency": "PKR",
            "pp_TxnDateTime": "20250211101500",
            "pp_BillReference": "PK-C0001.PK-P00001",
            "pp_ResponseCode": "121",
            "ppmpf_1": "03011234567",
        }
        for i in range(len(amounts))
    ]
    _ndjson(path, records, {"pp_Amount": amounts})


def momo_file(path: Path, amounts: list[Amount], fees: list[Amount] | None = None) -> None:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Transactions")
    sheet.write_row(0, 0, MOMO_HEADER)
    for i, (a, f) in enumerate(zip(amounts, fees or [ZERO] * len(amounts), strict=True), start=1):
        cells = dict.fromkeys(MOMO_HEADER, "")
        cells.update(
            {
                "Date": "2025-02-11 10:42:20",
                "Transaction Id": f"36{i:08d}",
                "Type": "PAYMENT",
                "Status": "SUCCESSFUL",
                "Currency": "GHS",
                "External Id": "GH-C0001.GH-P00001.x",
                "Payer Party Id": "233200000010",
            }
        )
        money = {"Amount": a, "Fee": f}
        for col, name in enumerate(MOMO_HEADER):
            if name in money and money[name].number_cell:
                sheet.write_number(i, col, float(money[name].text))
            else:
                sheet.write_string(i, col, money[name].text if name in money else cells[name])
    book.close()


ZERO = Amount("0", Decimal(0), plain=True)


@dataclass(frozen=True)
class Rail:
    region: str
    write: Callable[..., None]
    amounts: st.SearchStrategy[Amount]
    major: bool = True  # the file states major units (else minor units)
    fees: bool = False  # the fee is parsed from the file's text too (the same path as amounts)
    free_ignored: bool = False  # a sale of exactly 0 is a free purchase, ignored (counted) rather than quarantined


RAILS = {
    "gumroad": Rail("TZ", gumroad_file, major_amounts(2, "."), fees=True, free_ignored=True),
    "mpesa": Rail("KE", mpesa_file, major_amounts(2, ".")),
    "stripe_semicolon": Rail("EG", stripe_file(";"), major_amounts(2, ","), fees=True),
    "stripe_comma": Rail("EG", stripe_file(","), major_amounts(2, "."), fees=True),
    "bkash": Rail("BD", bkash_file, major_amounts(2, ".")),
    "momo": Rail("GH", momo_file, momo_amounts(), fees=True),
    "paystack": Rail("NG", paystack_file, minor_amounts(), major=False, fees=True),
    "jazzcash": Rail("PK", jazzcash_file, minor_amounts(), major=False),
}


def exact_minor(amount: Amount, region: RegionConfig, major: bool) -> set[int]:
    """The exact minor units the text states (empty when it states none: damage, or more decimals than exist)."""
    scaled = {v * (10**region.exponent if major else 1) for v in amount.values()}
    return {int(m) for m in scaled if m == m.to_integral_value()}


def check_rail(rail: Rail, amounts: list[Amount], tmp_path: Path, *, column: str = "amount_minor") -> None:
    """`amounts` in the sale amount field, or with `column="fee_minor"` in the fee field beside a plain sale."""
    region = get_region(rail.region)
    path = tmp_path / f"amounts.{'xlsx' if rail.write is momo_file else 'csv'}"
    # what a plausible value lies within: a sale's amount within the contract's range; a fee within its sale
    floor, ceiling = 1, MAX_ABS_MINOR
    if column == "fee_minor":
        sale = Amount("1000", Decimal(1000), plain=True) if rail.major else Amount("100000", Decimal(100000), True)
        rail.write(path, [sale] * len(amounts), amounts)
        floor, ceiling = 0, min(exact_minor(sale, region, rail.major))
    else:
        rail.write(path, amounts)
    frame, ignored = read_all(get_adapter(region.source_format), path, region)
    split = through_contract(frame, region)
    assert split.valid.height + split.quarantine.height + ignored == len(amounts)
    loaded = dict(zip(split.valid["source_row"], split.valid[column], strict=True))
    parsed = {
        r: json.loads(p)[column]
        for r, p in zip(split.quarantine["source_row"], split.quarantine["parsed"], strict=True)
    }
    reasons = {
        r: {x["column"] for x in json.loads(t)}
        for r, t in zip(split.quarantine["source_row"], split.quarantine["reasons"], strict=True)
    }
    for row, amount in enumerate(amounts, start=1):
        exact = exact_minor(amount, region, rail.major)
        if row in loaded:
            assert loaded[row] in exact, (amount, loaded[row], exact)  # loaded: exactly the stated number
            continue
        if row not in reasons:  # ignored: only a sale the text states as exactly nothing, on a rail that sells free
            assert rail.free_ignored and column == "amount_minor" and exact == {0}, (amount, exact)
            continue
        assert reasons[row] & MONEY_COLUMNS, (amount, reasons[row])  # quarantined for its money
        shown = parsed[row]
        # Whatever a steward sees is the stated number or nothing; a binary float beyond 2^53 has already lost its
        # digits before any reader sees it, and is far outside the contract's range (that is its reason).
        assert shown is None or shown in exact or (amount.binary and abs(shown) > MAX_ABS_MINOR), (amount, shown)
        plausible = any(floor <= e <= ceiling for e in exact)
        assert not (amount.plain and plausible), (amount, reasons[row])  # a plain, plausible amount loads


@pytest.mark.parametrize("name", sorted(RAILS))
def test_amounts_are_exact_or_quarantined(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    rail = RAILS[name]

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(amounts=st.lists(rail.amounts, min_size=1, max_size=20))
    def run(amounts: list[Amount]) -> None:
        check_rail(rail, amounts, tmp_path_factory.mktemp(name))

    run()


@pytest.mark.parametrize("name", sorted(n for n, r in RAILS.items() if r.fees))
def test_fees_are_exact_or_quarantined(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fees go through the same parsing as amounts: the same promise."""
    rail = RAILS[name]

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(fees=st.lists(rail.amounts, min_size=1, max_size=20))
    def run(fees: list[Amount]) -> None:
        check_rail(rail, fees, tmp_path_factory.mktemp(name), column="fee_minor")

    run()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("gumroad", "184467440737098017.00", None),  # the example: wrapped to 250084 before
        ("mpesa", "184,467,440,737,098,017.00", None),
        ("stripe_semicolon", "184.467.440.737.098.017,00", None),
        ("bkash", "1,84,46,74,40,73,70,98,017.00", None),
        ("momo", "184467440737098017.00", None),
        ("paystack", "18446744073709801700", None),  # a JSON integer larger than int64
        ("jazzcash", '"18446744073709801700"', None),
        ("paystack", "5000.5", None),  # a float in minor units: no exact minor amount
        ("paystack", "5000.0", 5000),
        ("mpesa", "12,50", None),  # not a grouping and not this rail's decimal mark
        ("bkash", "1,00,000.50", 10_000_050),  # lakh grouping
        ("stripe_semicolon", "1.234,5", 123_450),
    ],
)
def test_known_amounts(name: str, text: str, expected: int | None, tmp_path: Path) -> None:
    rail = RAILS[name]
    region = get_region(rail.region)
    rail.write(tmp_path / ("a.xlsx" if name == "momo" else "a.csv"), [Amount(text, None, plain=False)])
    frame, _ = read_all(get_adapter(region.source_format), tmp_path / ("a.xlsx" if name == "momo" else "a.csv"), region)
    assert frame["amount_minor"].to_list() == [expected]
    split = through_contract(frame, region)
    if expected is None:
        assert split.valid.is_empty()
        assert {r["column"] for r in json.loads(split.quarantine["reasons"][0])} == {"amount_minor"}
    else:
        assert split.valid["amount_minor"].to_list() == [expected]
