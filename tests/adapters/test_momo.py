"""MTN MoMo export adapter: a hand-chosen workbook (built here, visible row by row), rejects, a writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
import xlsxwriter

from kanda.synthetic.core import DirtMix, make_registry, truth_chunks
from kanda.synthetic.writers import momo as writer
from regions import get_region
from regions.adapters.base import ADAPTER_SCHEMA, FileRejected, ReadContext
from regions.adapters.momo import ADAPTER

REGION = get_region("GH")
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
        for r, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
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


def _read(path: Path, batch_rows: int = 500) -> tuple[pl.DataFrame, int]:
    chunks = list(ADAPTER.read(path, ReadContext(region=REGION, salt="test-salt", batch_rows=batch_rows)))
    return pl.concat([c.frame for c in chunks]), sum(c.ignored for c in chunks)


def _row(frame: pl.DataFrame, source_row: int) -> dict:
    return frame.filter(pl.col("source_row") == source_row).row(0, named=True)


def test_sample_values(sample: Path) -> None:
    frame, ignored = _read(sample, batch_rows=5)
    assert list(frame.columns) == [*ADAPTER_SCHEMA, "raw_record"]
    assert ignored == 2  # the TRANSFER payout and the Totals row
    assert frame["source_row"].to_list() == [*range(1, 9), *range(10, 15)]

    first = _row(frame, 1)
    assert (first["transaction_id"], first["event_type"], first["status"]) == ("3600000101", "sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (100_050, 1_501, "GHS")
    assert first["occurred_at"] == D(2025, 2, 11, 10, 42, 20, tzinfo=UTC)
    assert (first["creator_id"], first["product_id"], first["channel"]) == ("GH-C0001", "GH-P00001", "mtn_momo")
    assert {k: v for k, v in _row(frame, 2).items() if k != "source_row"} == {
        k: v for k, v in first.items() if k != "source_row"
    }

    pending, paid = _row(frame, 3), _row(frame, 4)
    assert (pending["status"], pending["fee_minor"]) == ("pending", 0)
    assert pending["occurred_at"] == D(2025, 2, 11, 23, 30, 5, tzinfo=UTC)  # a text date, DD/MM/YYYY
    assert (paid["status"], paid["amount_minor"], paid["fee_minor"]) == ("success", 25_000, 375)  # a number cell
    assert pending["buyer_ref"] == paid["buyer_ref"]
    assert _row(frame, 5)["status"] == "failed"

    refund, reversal = _row(frame, 6), _row(frame, 8)
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

    assert _row(frame, 10)["amount_minor"] is None  # "1,O00.00"
    assert _row(frame, 11)["occurred_at"] is None  # "31/02/2025 25:00"
    assert _row(frame, 12)["creator_id"] is None  # empty External Id
    assert _row(frame, 13)["buyer_ref"] is None  # Excel-mangled MSISDN

    second_sheet = _row(frame, 14)
    assert (second_sheet["amount_minor"], second_sheet["fee_minor"]) == (1_234_567, 18_519)
    assert second_sheet["occurred_at"] == D(2025, 2, 14, 7, 5, 9, tzinfo=UTC)


def test_buyer_ref_is_a_hash_and_no_contact_leaks(sample: Path) -> None:
    frame, _ = _read(sample)
    refs = frame["buyer_ref"].drop_nulls()
    assert refs.len() == 12 and refs.str.contains(r"^[0-9a-f]{64}$").all()
    visible = frame.drop("raw_record").select(pl.all().cast(pl.String))
    for contact in ("233241234567", "241234567", "0241112222", "5551234"):
        assert not visible.select(pl.any_horizontal(pl.all().str.contains(contact, literal=True))).to_series().any()
    assert "233241234567" in str(_row(frame, 1)["raw_record"])


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    with pytest.raises(FileRejected, match="empty"):
        _read(empty)
    no_rows = _build(tmp_path / "header-only.xlsx", [[]])
    with pytest.raises(FileRejected, match="no data rows"):
        _read(no_rows)


def test_other_format_is_rejected(tmp_path: Path) -> None:
    other = _build(tmp_path / "other.xlsx", [[["x", "1"]]], header=["Invoice", "Total"])
    with pytest.raises(FileRejected, match=r"not a MTN MoMo export .* missing: date, txn, type, status, amount"):
        _read(other)


def test_truncated_file_is_rejected(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileRejected, match="truncated or corrupt"):
        _read(truncated)


def test_round_trip_across_sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SHEET_ROWS", 1_000)  # spill into further sheets as past Excel's row cap
    truth = pl.concat(
        truth_chunks(
            REGION,
            make_registry(17),
            start=dt.date(2025, 3, 1),
            days=3,
            rows=3000,
            seed=17,
            dirt=DirtMix().scaled(3),
        )
    )
    path = tmp_path / "momo.xlsx"
    writer.write(path, iter([truth]), REGION, np.random.default_rng(3))
    book = openpyxl.load_workbook(path, read_only=True)
    assert len(book.sheetnames) >= 4
    data_rows = sum(sheet.max_row - 1 for sheet in book.worksheets)
    book.close()

    frame, ignored = _read(path, batch_rows=500)
    assert frame.height + ignored == data_rows
    assert frame.height == truth.height and frame["source_row"].is_unique().all()

    expected = truth.unique(["txn_no", "event_type", "status"], keep="first").with_columns(
        transaction_id=writer.payment_id(pl.col("txn_no"))
    )
    got = frame.unique(["transaction_id", "event_type", "status"], keep="first")
    joined = expected.join(got, on=["transaction_id", "event_type", "status"], how="left", suffix="_got")
    assert joined["source_row"].null_count() == 0 and joined.height == got.height

    clean = joined.filter(pl.col("corruption").is_null())
    for column in ("amount_minor", "fee_minor", "creator_id", "product_id"):
        assert (clean[column] == clean[f"{column}_got"]).all(), column
    assert clean.select((pl.col("occurred_at").dt.truncate("1s") == pl.col("occurred_at_got")).all()).item()

    for kind, column in (
        ("bad_amount", "amount_minor"),
        ("bad_time", "occurred_at"),
        ("missing_reference", "creator_id"),
    ):
        damaged = joined.filter(pl.col("corruption") == kind)
        assert damaged.height > 0 and damaged[f"{column}_got"].null_count() == damaged.height, kind
