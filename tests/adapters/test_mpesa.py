"""M-Pesa statement adapter: hand-written statements with the rail's dirt, file-level rejects, a writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kanda.synthetic.core import DirtMix, make_registry, truth_chunks
from kanda.synthetic.writers import mpesa as writer
from regions import get_region
from regions.adapters.base import ADAPTER_SCHEMA, FileRejected, ReadContext
from regions.adapters.mpesa import ADAPTER

SAMPLES = Path(__file__).parent.parent / "samples" / "mpesa"
REGION = get_region("KE")
UTC = dt.UTC


def _read(path: Path, batch_rows: int = 500) -> tuple[pl.DataFrame, int]:
    chunks = list(ADAPTER.read(path, ReadContext(region=REGION, salt="test-salt", batch_rows=batch_rows)))
    return pl.concat([c.frame for c in chunks]), sum(c.ignored for c in chunks)


def _row(frame: pl.DataFrame, source_row: int) -> dict:
    return frame.filter(pl.col("source_row") == source_row).row(0, named=True)


def test_statement_values() -> None:
    frame, ignored = _read(SAMPLES / "statement.csv")
    assert list(frame.columns) == [*ADAPTER_SCHEMA, "raw_record"]
    # 2 title lines, 2 disclaimer/page lines, 1 repeated header, 1 charge, 1 bank payout, 1 empty padded row.
    assert ignored == 8
    assert frame["source_row"].to_list() == [1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14]

    first = _row(frame, 1)
    assert (first["transaction_id"], first["event_type"], first["status"]) == ("SBA1000001", "sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (1_000_000, 0, "KES")
    assert first["occurred_at"] == dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=UTC)  # 13:42:20 Nairobi (UTC+3)
    assert (first["creator_id"], first["product_id"]) == ("KE-C0001", "KE-P00001")

    pending, completed = _row(frame, 2), _row(frame, 3)
    assert (pending["status"], completed["status"]) == ("pending", "success")
    assert pending["transaction_id"] == completed["transaction_id"] == "SBA1000002"
    assert pending["amount_minor"] == completed["amount_minor"] == 125_050
    assert completed["occurred_at"] == dt.datetime(2025, 2, 11, 23, 10, tzinfo=UTC)  # the local day before
    assert _row(frame, 5)["status"] == "failed"

    reversal, refund, relisted = _row(frame, 8), _row(frame, 9), _row(frame, 10)
    assert (reversal["transaction_id"], reversal["event_type"], reversal["amount_minor"]) == (
        "SBA1000001",
        "reversal",
        -1_000_000,
    )
    assert (refund["transaction_id"], refund["event_type"], refund["amount_minor"]) == ("SBA1000003", "refund", -50_000)
    assert (relisted["transaction_id"], relisted["event_type"], relisted["status"]) == (
        "SBA1000005",
        "reversal",
        "success",
    )
    assert relisted["amount_minor"] == -300_000 and reversal["creator_id"] == "KE-C0001"

    assert _row(frame, 11)["amount_minor"] is None  # "12,3O0.00"
    assert _row(frame, 12)["occurred_at"] is None  # "N/A"
    assert _row(frame, 13)["creator_id"] is None  # "Acc. " with no reference
    duplicate = _row(frame, 14)
    assert {k: v for k, v in duplicate.items() if k != "source_row"} == {
        k: v for k, v in first.items() if k != "source_row"
    }


def test_buyer_ref_masked_phones_and_no_leaks() -> None:
    frame, _ = _read(SAMPLES / "statement.csv")
    assert _row(frame, 4)["buyer_ref"] is None  # "0****393"
    assert _row(frame, 1)["buyer_ref"] is not None and len(_row(frame, 1)["buyer_ref"]) == 64
    assert frame["buyer_ref"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
    visible = frame.drop("raw_record").select(pl.all().cast(pl.String))
    for contact in ("0712345678", "712345678", "254722000111", "WANJIKU"):
        assert not visible.select(pl.any_horizontal(pl.all().str.contains(contact, literal=True))).to_series().any()


def test_header_variant_latin1_and_dd_mm_dates() -> None:
    frame, ignored = _read(SAMPLES / "statement_variant.csv")
    assert ignored == 1  # the charge row
    assert frame["transaction_id"].to_list() == ["SCA2000001", "SCA2000002", "SCA2000002"]
    assert frame["event_type"].to_list() == ["sale", "sale", "reversal"]
    assert frame["amount_minor"].to_list() == [150_000, 25_000, -25_000]
    assert frame["occurred_at"].to_list() == [
        dt.datetime(2025, 2, 11, 10, 42, tzinfo=UTC),  # 11/02/2025 13:42, no seconds
        dt.datetime(2025, 2, 28, 21, 30, 15, tzinfo=UTC),  # 01/03/2025 00:30:15 local is still February in UTC
        dt.datetime(2025, 3, 2, 6, 5, tzinfo=UTC),
    ]
    statement, _ = _read(SAMPLES / "statement.csv")
    # "0712 345 678" here and "0712345678" there are one buyer.
    assert frame["buyer_ref"][0] == _row(statement, 1)["buyer_ref"]
    assert "JOSÉ" in str(frame["raw_record"][0])


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FileRejected, match="empty"):
        _read(empty)


def test_other_format_is_rejected(tmp_path: Path) -> None:
    other = tmp_path / "gumroad.csv"
    other.write_text("Purchase ID,Item Name,Purchase Date,Sale Price ($)\nabc,Beat pack,2025-01-01,10\n")
    with pytest.raises(FileRejected, match=r"not a M-Pesa statement file: required column\(s\) missing: receipt"):
        _read(other)
    partial = tmp_path / "partial.csv"
    partial.write_text("Receipt No,Completion Time,Details\nSBA1,2025-01-01 10:00:00,x\n")
    with pytest.raises(FileRejected, match="missing: status, paid_in, withdrawn"):
        _read(partial)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = (SAMPLES / "statement.csv").read_bytes()
    cut = data.index(b"SBA1000006") + 40
    truncated = tmp_path / "truncated.csv"
    truncated.write_bytes(data[:cut])
    with pytest.raises(FileRejected, match="truncated"):
        _read(truncated)


def test_round_trip(tmp_path: Path) -> None:
    truth = pl.concat(
        truth_chunks(
            REGION,
            make_registry(13),
            start=dt.date(2025, 3, 1),
            days=3,
            rows=3000,
            seed=13,
            dirt=DirtMix().scaled(3),
        )
    )
    for seed in (1, 2):  # the writer picks one of the two header variants per file
        path = tmp_path / f"mpesa-{seed}.csv"
        writer.write(path, iter([truth]), REGION, np.random.default_rng(seed))
        _check_round_trip(path, truth)


def _check_round_trip(path: Path, truth: pl.DataFrame) -> None:
    frame, ignored = _read(path, batch_rows=500)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert frame.height + ignored == len(lines) - 1  # every line but the header is a row or an ignored line
    assert frame.height == truth.height and frame["source_row"].is_unique().all()

    expected = truth.unique(["txn_no", "event_type", "status"], keep="first").with_columns(
        transaction_id=writer.receipt(pl.col("txn_no"))
    )
    got = frame.unique(["transaction_id", "event_type", "status"], keep="first")
    joined = expected.join(got, on=["transaction_id", "event_type", "status"], how="left", suffix="_got")
    assert joined["source_row"].null_count() == 0 and joined.height == got.height

    clean = joined.filter(pl.col("corruption").is_null())
    for column in ("amount_minor", "creator_id", "product_id"):
        assert (clean[column] == clean[f"{column}_got"]).all(), column
    seconds = (pl.col("occurred_at").dt.truncate("1s") == pl.col("occurred_at_got")).all()
    assert clean.select(seconds).item()

    for kind, column in (
        ("bad_amount", "amount_minor"),
        ("bad_time", "occurred_at"),
        ("missing_reference", "creator_id"),
    ):
        damaged = joined.filter(pl.col("corruption") == kind)
        assert damaged.height > 0 and damaged[f"{column}_got"].null_count() == damaged.height, kind
