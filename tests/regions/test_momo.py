"""MTN MoMo export adapter: a hand-chosen workbook (built here, visible row by row), rejects, a writer round trip."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
import xlsxwriter

from kanda.settings import Settings
from regions import get_region
from regions.rails import get_adapter
from regions.rails.base import ADAPTER_SCHEMA, RAIL_REF, FileRejected, ReadContext
from regions.rails.momo import writer
from tests.support.roundtrip import (
    COMPARED,
    assert_lines_accounted,
    assert_no_contact_leaks,
    assert_rejected,
    assert_round_trip,
    assert_same_but_source_row,
    match_events,
    quarantine_rules,
    read_all,
    row,
    through_contract,
    truth_frame,
)

REGION = get_region("GH")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/momo/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)
UTC = dt.UTC
D = dt.datetime
HEADER = writer.HEADER
# Date cells are Excel dates unless given as text; "#250" is a number cell. Accra is UTC+0 all year.
SHEET_1 = [
    [
        D(2025, 2, 11, 10, 42, 20),
        "3600000101",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "1,000.50",
        "15.01",
        "GHS",
        "GH-C0001.GH-P00001.a1",
        "233241234567",
        "thanks",
        "",
    ],
    [
        D(2025, 2, 11, 10, 42, 20),
        "3600000101",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "1,000.50",
        "15.01",
        "GHS",
        "GH-C0001.GH-P00001.a1",
        "233241234567",
        "thanks",
        "",
    ],
    [
        "11/02/2025 23:30:05",
        "3600000102",
        "PAYMENT",
        "PENDING",
        "",
        "250",
        "",
        "GHS",
        "GH-C0002.GH-P00005.b2",
        "0241112222",
        "",
        "",
    ],
    [
        D(2025, 2, 11, 23, 31),
        "3600000102",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "#250",
        "3.75",
        "GHS",
        "GH-C0002.GH-P00005.b2",
        "0241112222",
        "",
        "",
    ],
    [
        D(2025, 2, 12, 8, 0),
        "3600000103",
        "PAYMENT",
        "FAILED",
        "PAYER_LIMIT_REACHED",
        "80",
        "0",
        "GHS",
        "GH-C0003.GH-P00009.c3",
        "+233 20 555 1234",
        "",
        "",
    ],
    [
        D(2025, 2, 13, 12, 0),
        "7200000001",
        "REFUND",
        "SUCCESSFUL",
        "",
        "1,000.50",
        "",
        "GHS",
        "GH-C0001.GH-P00001.a1",
        "233241234567",
        "",
        "3600000101",
    ],
    [
        D(2025, 2, 12, 9, 0),
        "3600000104",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "45",
        "0.68",
        "GHS",
        "GH-C0004.GH-P00013.d4",
        "0277000111",
        "",
        "",
    ],
    [
        D(2025, 2, 12, 18, 45),
        "7200000002",
        "REVERSAL",
        "SUCCESSFUL",
        "",
        "-45.00",
        "",
        "GHS",
        "GH-C0004.GH-P00013.d4",
        "0277000111",
        "",
        "3600000104",
    ],
    [D(2025, 2, 12, 23, 59, 59), "9000000001", "TRANSFER", "SUCCESSFUL", "", "5,000", "", "GHS", "", "", "", ""],
    [
        D(2025, 2, 12, 10, 0),
        "3600000106",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "1,O00.00",
        "1.50",
        "GHS",
        "GH-C0006.GH-P00021.f6",
        "0244000006",
        "",
        "",
    ],
    [
        "31/02/2025 25:00",
        "3600000107",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "99",
        "1.49",
        "GHS",
        "GH-C0007.GH-P00025.g7",
        "0244000007",
        "",
        "",
    ],
    [D(2025, 2, 12, 11, 0), "3600000108", "PAYMENT", "SUCCESSFUL", "", "60", "0.90", "GHS", "", "0244000008", "", ""],
    [
        D(2025, 2, 12, 12, 0),
        "3600000109",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "70",
        "1.05",
        "GHS",
        "GH-C0009.GH-P00033.i9",
        "2.33244E+11",
        "",
        "",
    ],
]
SHEET_2 = [
    [
        D(2025, 2, 14, 7, 5, 9),
        "3600000110",
        "PAYMENT",
        "SUCCESSFUL",
        "",
        "12,345.67",
        "185.19",
        "GHS",
        "GH-C0010.GH-P00037.j10",
        "233200000010",
        "",
        "",
    ],
    ["Total", "", "", "", "", "14,676.17", "", "GHS", "", "", "", ""],
]


def _build(path: Path, sheets: list[list[list]], header: list[str] = HEADER) -> Path:
    book = xlsxwriter.Workbook(str(path))
    date = book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    for index, rows in enumerate(sheets, start=1):
        sheet = book.add_worksheet(f"Transactions {index}")
        sheet.write_row(0, 0, header)
        for r, cells in enumerate(rows, start=1):
            for col, value in enumerate(cells):
                if isinstance(value, dt.datetime):
                    sheet.write_datetime(r, col, value, date)
                elif isinstance(value, str) and value.startswith("#"):
                    sheet.write_number(r, col, float(value[1:]))
                else:
                    sheet.write_string(r, col, value)
    book.close()
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return _build(tmp_path / "momo.xlsx", [SHEET_1, SHEET_2])


def test_sample_values(sample: Path) -> None:
    frame, ignored = read_all(ADAPTER, sample, REGION, batch_rows=5)
    assert list(frame.columns) == [*ADAPTER_SCHEMA, RAIL_REF, "raw_record"]  # RAIL_REF: a refund's own id
    assert ignored == 2  # the TRANSFER payout and the Totals row
    assert frame["source_row"].to_list() == [*range(1, 9), *range(10, 15)]

    first = row(frame, 1)
    assert (first["transaction_id"], first["event_type"], first["status"]) == ("3600000101", "sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (100_050, 1_501, "GHS")
    assert first["occurred_at"] == D(2025, 2, 11, 10, 42, 20, tzinfo=UTC)
    assert (first["creator_id"], first["product_id"], first["channel"]) == ("GH-C0001", "GH-P00001", "mtn_momo")
    assert_same_but_source_row(row(frame, 2), first)

    pending, paid = row(frame, 3), row(frame, 4)
    assert (pending["status"], pending["fee_minor"]) == ("pending", 0)
    assert pending["occurred_at"] == D(2025, 2, 11, 23, 30, 5, tzinfo=UTC)  # a text date, DD/MM/YYYY
    assert (paid["status"], paid["amount_minor"], paid["fee_minor"]) == ("success", 25_000, 375)  # a number cell
    assert pending["buyer_ref"] == paid["buyer_ref"]
    assert row(frame, 5)["status"] == "failed"

    refund, reversal = row(frame, 6), row(frame, 8)
    assert (refund["transaction_id"], refund["event_type"], refund["amount_minor"]) == (
        "3600000101",
        "refund",
        -100_050,
    )
    assert refund["buyer_ref"] == first["buyer_ref"]  # 233241234567 in both
    assert (reversal["transaction_id"], reversal["event_type"], reversal["amount_minor"]) == (
        "3600000104",
        "reversal",
        -4_500,
    )

    assert row(frame, 10)["amount_minor"] is None  # "1,O00.00"
    assert row(frame, 11)["occurred_at"] is None  # "31/02/2025 25:00"
    assert row(frame, 12)["creator_id"] is None  # empty External Id
    assert row(frame, 13)["buyer_ref"] is None  # Excel-mangled MSISDN

    second_sheet = row(frame, 14)
    assert (second_sheet["amount_minor"], second_sheet["fee_minor"]) == (1_234_567, 18_519)
    assert second_sheet["occurred_at"] == D(2025, 2, 14, 7, 5, 9, tzinfo=UTC)


def test_buyer_ref_is_a_hash_and_no_contact_leaks(sample: Path) -> None:
    frame, _ = read_all(ADAPTER, sample, REGION)
    refs = frame["buyer_ref"].drop_nulls()
    assert refs.len() == 12 and refs.str.contains(r"^[0-9a-f]{64}$").all()
    assert_no_contact_leaks(frame, ("233241234567", "241234567", "0241112222", "5551234"))
    assert "233241234567" in str(row(frame, 1)["raw_record"])


def test_empty_file_is_rejected_and_a_header_only_workbook_is_an_empty_export(tmp_path: Path) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "empty.xlsx", "empty", content=b"")
    no_rows = _build(tmp_path / "header-only.xlsx", [[]])
    chunks = list(ADAPTER.read(no_rows, ReadContext(region=REGION, salt="test-salt")))
    assert sum(c.frame.height + c.ignored for c in chunks) == 0  # loaded as 0 rows, as a header-only CSV is


def test_other_format_is_rejected(tmp_path: Path) -> None:
    other = _build(tmp_path / "other.xlsx", [[["x", "1"]]], header=["Invoice", "Total"])
    reason = r"^sheet 1: none of the required columns is there \(found: Invoice, Total\); GH \(Ghana\) expects"
    assert_rejected(ADAPTER, REGION, other, reason)


def test_truncated_file_is_rejected(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    assert_rejected(ADAPTER, REGION, tmp_path / "truncated.xlsx", "cut off or damaged", content=data[: len(data) // 2])


def test_round_trip_across_sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SHEET_ROWS", 1_000)  # spill into further sheets as past Excel's row cap
    truth = truth_frame(REGION, seed=17)
    path = tmp_path / "momo.xlsx"
    writer.write(path, iter([truth]), REGION, np.random.default_rng(3))
    book = openpyxl.load_workbook(path, read_only=True)
    assert len(book.sheetnames) >= 4
    data_rows = sum(sheet.max_row - 1 for sheet in book.worksheets)  # every sheet repeats the header
    book.close()

    frame, ignored = read_all(ADAPTER, path, REGION, batch_rows=500)
    assert_lines_accounted(frame, ignored, lines=data_rows, truth=truth)
    both = match_events(truth, frame, writer.payment_id(pl.col("txn_no")))
    # MoMo states the fee of every event, and its times are whole seconds.
    assert_round_trip(both, compare=(*COMPARED, "fee_minor"), whole_seconds=True)


def test_a_collection_with_its_type_left_blank_is_quarantined_not_ignored(tmp_path: Path) -> None:
    """A dated row with money and no Type is a record whose event type is unknown; only the Totals row (no date,
    no type) and named other movements are structure. Ignoring it would lose a payment while every count balanced."""
    blank = [D(2025, 2, 12, 9, 0), "3600000201", "", "SUCCESSFUL", "", "2,500.00", "", "GHS"]
    path = _build(
        tmp_path / "momo.xlsx",
        [
            [
                [*blank, "GH-C0001.GH-P00001.z1", "0244000001", "", ""],
                [D(2025, 2, 12, 9, 5), "9000000002", "TRANSFER", "SUCCESSFUL", "", "100", "", "GHS", "", "", "", ""],
                [""] * 12,  # a blank row
                ["Generated on 12/02/2025 by the merchant portal", *[""] * 11],
                ["Total", "", "", "", "", "2,600.00", "", "GHS", "", "", "", ""],
                ["Grand Total", "", "", "", "", "2,600.00", "", "GHS", "", "", "", ""],
            ]
        ],
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 5  # the TRANSFER, the blank row, the note and both totals
    split = through_contract(frame, REGION)
    assert split.valid.is_empty()
    assert ("missing_or_unreadable", "event_type") in quarantine_rules(split, 1)


def test_a_workbook_with_month_first_text_dates_is_rejected_not_loaded_on_the_wrong_days(tmp_path: Path) -> None:
    """MoMo's text dates are day first; a sheet re-saved month first (12/13/2025) would load 12/02/2025 as the
    12th of February."""
    from regions.rails.base import FileRejected

    def payment(date: str, txn: str) -> list[str]:
        return [date, txn, "PAYMENT", "SUCCESSFUL", "", "100", "", "GHS", "GH-C0001.GH-P00001.a", "0244000001", "", ""]

    path = _build(tmp_path / "momo.xlsx", [[payment("12/02/2025 10:00", "1"), payment("12/13/2025 10:00", "2")]])
    with pytest.raises(FileRejected) as raised:
        read_all(ADAPTER, path, REGION)
    assert raised.value.kind == "wrong_date_order" and "record 2" in raised.value.reason


def test_a_workbook_too_large_to_read_whole_is_refused_by_its_size(sample: Path, tmp_path: Path) -> None:
    """Sheets are read whole into memory, so the rail refuses a workbook past 512 MiB before opening it, as the
    reader did before the rail became a spec (the switch lost the limit: such a file was read, or ran out of
    memory). The file is a real workbook made sparse past the limit; its content beyond that is never read."""
    path = tmp_path / "big.xlsx"
    path.write_bytes(sample.read_bytes())
    os.truncate(path, 600 << 20)
    assert_rejected(ADAPTER, REGION, path, r"^the file is 600\.0 MiB, more than the 512\.0 MiB this rail reads at once")
    with pytest.raises(FileRejected) as rejected:
        read_all(ADAPTER, path, REGION)
    assert rejected.value.kind == "too_large"


def test_two_refunds_of_one_amount_within_a_minute_are_two_refunds_and_an_overlapping_export_repeats_none(
    settings: Settings, tmp_path: Path
) -> None:
    """Each REFUND row has a Transaction Id of its own beside the payment's. Told apart by their minute, two refunds
    of GHS 250.00 booked within one minute were one refund and a duplicate: the second refund's money never left
    the creator's net, and nothing flagged it. A refund in the next export again (exports of overlapping periods)
    is still a duplicate."""
    from kanda.flow import build
    from kanda.regional.ingest import ingest_files
    from kanda.regional.store import open_store
    from tests.support.files import make_files

    make_files(settings, regions=["GH"], rows=20)
    ref, payer = "GH-C0001.GH-P00001.r1", "233241234567"

    def line(when: dt.datetime, txn: str, kind: str, amount: str, paid: str = "") -> list:
        return [when, txn, kind, "SUCCESSFUL", "", amount, "", "GHS", ref, payer, "", paid]

    sale = line(D(2025, 2, 11, 10, 0), "3600000301", "PAYMENT", "1,000.00")
    first = line(D(2025, 2, 12, 9, 0, 5), "7200000301", "REFUND", "250.00", "3600000301")
    second = line(D(2025, 2, 12, 9, 0, 40), "7200000302", "REFUND", "250.00", "3600000301")
    (report,) = ingest_files(settings, "GH", [_build(tmp_path / "a.xlsx", [[sale, first, second]])]).files
    assert (report.loaded, report.duplicates, report.quarantined) == (3, 0, 0), report
    (again,) = ingest_files(settings, "GH", [_build(tmp_path / "b.xlsx", [[second, first]])]).files
    assert (again.loaded, again.duplicates) == (0, 2), again
    build(settings, "GH")
    with open_store(settings, "GH", read_only=True) as con:
        payment = con.execute(
            "SELECT gross_minor, refunded_minor, current_state FROM fct_sales WHERE transaction_id = '3600000301'"
        ).fetchall()
    assert payment == [(100_000, 50_000, "partially_refunded")]
