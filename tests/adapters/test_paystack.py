"""Paystack webhook adapter: a hand-written log with the rail's dirt, file-level rejects, and a writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kanda.synthetic.core import DirtMix, make_registry, truth_chunks
from kanda.synthetic.writers.paystack import write
from regions import get_region
from regions.adapters.base import ADAPTER_SCHEMA, FileRejected, ReadContext
from regions.adapters.paystack import ADAPTER

SAMPLE = Path(__file__).parent.parent / "samples" / "paystack" / "webhooks.ndjson"
REGION = get_region("NG")
UTC = dt.UTC


def _read(path: Path, batch_rows: int = 500) -> tuple[pl.DataFrame, int]:
    chunks = list(ADAPTER.read(path, ReadContext(region=REGION, salt="test-salt", batch_rows=batch_rows)))
    return pl.concat([c.frame for c in chunks]), sum(c.ignored for c in chunks)


def _row(frame: pl.DataFrame, source_row: int) -> dict:
    return frame.filter(pl.col("source_row") == source_row).row(0, named=True)


def test_sample_values() -> None:
    frame, ignored = _read(SAMPLE, batch_rows=4)
    assert list(frame.columns) == [*ADAPTER_SCHEMA, "raw_record"]
    assert ignored == 2  # transfer.success and subscription.create; the blank line is not a document
    assert frame["source_row"].to_list() == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]

    first = _row(frame, 1)
    assert first["transaction_id"] == "PSK-0001"
    assert (first["event_type"], first["status"]) == ("sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (500_000, 7_500, "NGN")
    assert first["occurred_at"] == dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=UTC)
    assert (first["creator_id"], first["product_id"], first["channel"]) == ("NG-C0001", "NG-P00001", "card")
    # A duplicate delivery maps to the identical row (only source_row differs).
    assert {k: v for k, v in _row(frame, 2).items() if k != "source_row"} == {
        k: v for k, v in first.items() if k != "source_row"
    }

    pending, paid = _row(frame, 3), _row(frame, 4)  # "ongoing" then success; amount as a string; metadata as text
    assert (pending["status"], pending["occurred_at"]) == ("pending", dt.datetime(2025, 2, 11, 23, 30, 5, tzinfo=UTC))
    assert (pending["fee_minor"], pending["creator_id"], pending["product_id"]) == (0, "NG-C0002", "NG-P00005")
    assert (paid["status"], paid["amount_minor"], paid["fee_minor"]) == ("success", 250_000, 3_750)
    assert paid["transaction_id"] == pending["transaction_id"] == "PSK-0002"

    abandoned = _row(frame, 5)
    assert (abandoned["event_type"], abandoned["status"]) == ("sale", "failed")
    assert abandoned["occurred_at"] == dt.datetime(2025, 2, 12, 8, 0, tzinfo=UTC)

    sale, refund = _row(frame, 7), _row(frame, 8)
    assert sale["occurred_at"] == dt.datetime(2025, 2, 12, 9, 15, 30, 500_000, tzinfo=UTC)
    assert (refund["transaction_id"], refund["event_type"], refund["status"]) == ("PSK-0004", "refund", "success")
    assert (refund["amount_minor"], refund["fee_minor"]) == (-1_234_567, 0)
    assert refund["occurred_at"] == dt.datetime(2025, 2, 13, 12, 0, tzinfo=UTC)
    assert refund["buyer_ref"] == sale["buyer_ref"]

    reversal = _row(frame, 9)
    assert (reversal["event_type"], reversal["status"], reversal["amount_minor"]) == ("reversal", "success", -80_000)
    assert reversal["occurred_at"] == dt.datetime(2025, 2, 12, 18, 45, tzinfo=UTC)  # updated_at, not paid_at

    assert _row(frame, 10)["amount_minor"] is None  # "12,3O0"
    assert _row(frame, 11)["occurred_at"] is None  # paid_at "N/A"
    assert _row(frame, 12)["creator_id"] is None and _row(frame, 12)["product_id"] is None  # metadata ""
    assert _row(frame, 13)["buyer_ref"] is None  # masked email; the phone is not used as a buyer key


def test_buyer_ref_is_a_hash_and_no_contact_leaks() -> None:
    frame, _ = _read(SAMPLE)
    refs = frame["buyer_ref"].drop_nulls()
    assert refs.len() == 11 and refs.str.contains(r"^[0-9a-f]{64}$").all()
    assert _row(frame, 1)["buyer_ref"] != _row(frame, 3)["buyer_ref"]
    # Case and spacing of the email do not change the reference: it is hashed after normalising.
    visible = frame.drop("raw_record").select(pl.all().cast(pl.String).str.to_lowercase())
    for contact in ("ada.obi@example.com", "tunde@mail.example", "08031234567", "8031234567", "@"):
        assert not visible.select(pl.any_horizontal(pl.all().str.contains(contact, literal=True))).to_series().any()
    assert "Ada.Obi@Example.com" in str(_row(frame, 1)["raw_record"])


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    with pytest.raises(FileRejected, match="empty"):
        _read(empty)
    blank = tmp_path / "blank.ndjson"
    blank.write_text("\n\n")
    with pytest.raises(FileRejected, match="no webhook events"):
        _read(blank)


def test_other_format_is_rejected(tmp_path: Path) -> None:
    other = tmp_path / "other.ndjson"
    other.write_text('{"paymentID":"TR0011","trxID":"9A1","amount":"500.00"}\n')
    with pytest.raises(FileRejected, match=r"not a Paystack webhook file: required column\(s\) missing: event"):
        _read(other)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    text = SAMPLE.read_text()
    truncated = tmp_path / "truncated.ndjson"
    truncated.write_text(text[: len(text) - 60])
    with pytest.raises(FileRejected, match="not valid JSON"):
        _read(truncated)


def test_round_trip(tmp_path: Path) -> None:
    truth = pl.concat(
        truth_chunks(
            REGION,
            make_registry(11),
            start=dt.date(2025, 3, 1),
            days=3,
            rows=3000,
            seed=11,
            dirt=DirtMix().scaled(3),
        )
    )
    path = tmp_path / "paystack.ndjson"
    write(path, iter([truth]), REGION, np.random.default_rng(5))
    frame, ignored = _read(path, batch_rows=500)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert frame.height + ignored == len(lines)
    assert frame.height == truth.height and frame["source_row"].is_unique().all()

    expected = truth.unique(["txn_no", "event_type", "status"], keep="first").with_columns(
        transaction_id=pl.lit("T") + pl.col("txn_no").cast(pl.String).str.zfill(12)
    )
    got = frame.unique(["transaction_id", "event_type", "status"], keep="first")
    joined = expected.join(got, on=["transaction_id", "event_type", "status"], how="left", suffix="_got")
    assert joined["source_row"].null_count() == 0 and joined.height == got.height

    clean = joined.filter(pl.col("corruption").is_null())
    for column in ("amount_minor", "creator_id", "product_id"):
        assert (clean[column] == clean[f"{column}_got"]).all(), column
    seconds = (pl.col("occurred_at").dt.truncate("1s") == pl.col("occurred_at_got").dt.truncate("1s")).all()
    assert clean.select(seconds).item()
    assert (clean["fee_minor"] == clean["fee_minor_got"]).filter(clean["event_type"] == "sale").all()

    damaged = {kind: joined.filter(pl.col("corruption") == kind) for kind in ("bad_amount", "bad_time")}
    damaged["missing_reference"] = joined.filter(pl.col("corruption") == "missing_reference")
    assert all(part.height > 0 for part in damaged.values())
    assert damaged["bad_amount"]["amount_minor_got"].null_count() == damaged["bad_amount"].height
    assert damaged["bad_time"]["occurred_at_got"].null_count() == damaged["bad_time"].height
    assert damaged["missing_reference"]["creator_id_got"].null_count() == damaged["missing_reference"].height
