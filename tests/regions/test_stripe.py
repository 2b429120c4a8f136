"""Stripe payments export (EG, `stripe_payments`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from regions import get_region
from regions.rails.stripe.reader import ADAPTER
from regions.rails.stripe.writer import write
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_rejected,
    assert_round_trip,
    read_all,
    side_by_side,
    truth_frame,
    utc,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "stripe" / "samples" / "payments_eg.csv"
REGION = get_region("EG")


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 0  # the blank line is skipped by the CSV reader, not a record
    assert frame["source_row"].to_list() == list(range(1, 13))
    # Comma decimals, "." thousands; "100,001" has more decimals than EGP allows and is null.
    assert frame["amount_minor"].to_list() == [
        123450,
        25000,
        25000,
        300000,
        -123450,
        9999,
        -9999,
        None,
        10000,
        10000,
        10000,
        None,
    ]
    assert frame["fee_minor"].to_list() == [1852, 375, 375, 0, 0, 150, 0, 150, 150, 150, 150, 150]
    assert frame["event_type"].to_list() == ["sale"] * 4 + ["refund", "sale", "reversal"] + ["sale"] * 5
    assert frame["status"].to_list() == [
        "success",
        "pending",
        "success",
        "failed",
        "success",
        "success",
        "success",
        "success",
        "success",
        "success",
        None,
        "success",
    ]
    # UTC stays UTC: no Africa/Cairo shift, in winter (+2) or summer (+3).
    assert frame["occurred_at"].to_list()[:5] == [
        utc(2024, 3, 30, 22, 30),
        utc(2024, 7, 15, 23, 45, 10),
        utc(2024, 7, 15, 23, 46, 10),
        utc(2024, 10, 31, 21, 59, 59),
        utc(2024, 4, 1, 8),
    ]
    assert frame["occurred_at"][8] is None
    assert frame["creator_id"].to_list() == [
        "EG-C0001",
        "EG-C0002",
        "EG-C0002",
        "EG-C0003",
        "EG-C0001",
        "EG-C0004",
        "EG-C0004",
        "EG-C0005",
        "EG-C0005",
        None,
        "EG-C0005",
        "EG-C0005",
    ]
    assert frame["product_id"][0] == "EG-P00001"
    ids = frame["transaction_id"].to_list()
    assert ids[0] == ids[4] == "ch_3OaA1" and ids[5] == ids[6] == "ch_3OaA4"
    assert set(frame["currency"]) == {"EGP"}
    refs = frame["buyer_ref"]
    assert refs[3] is None and refs[5] is None  # empty and masked emails
    assert refs[0] == refs[4]
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv().lower()
    assert "example.com" not in plain and "mail.example" not in plain
    assert frame["raw_record"].struct.field("Amount")[0] == "1.234,50"


def test_comma_delimited_older_export(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "id,Created (UTC),Amount,Amount Refunded,Currency,Fee,Status,kanda_ref (metadata)\n"
        'ch_1,2023-01-02 03:04:05,"1,234.50",0.00,egp,18.52,Paid,EG-C0001.EG-P00002\n'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 0
    assert frame.select("amount_minor", "fee_minor", "occurred_at").row(0) == (123450, 1852, utc(2023, 1, 2, 3, 4, 5))
    assert frame["buyer_ref"][0] is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ("id;Amount;Status\nch_1;1,00;Paid\n", "Created"),
        ("id;Created date (UTC);Amount;Status\nch_1;2024-01-01 00:00:00;1,00;Paid\n", "required column"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.csv", reason, content=content)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    assert_rejected(ADAPTER, REGION, tmp_path / "cut.csv", "CSV", content=data[: data.index(b"ch_3OaA4") + 30])


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "export.csv"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert_lines_accounted(frame, ignored, lines=len(path.read_text(encoding="utf-8").splitlines()) - 1, truth=truth)
    assert ignored == 0
    both = side_by_side(truth, frame)
    assert_round_trip(both)
    assert both["got_fee_minor"].eq_missing(both["fee_minor"]).all()
