"""Gumroad-style purchase export (TZ, `platform_csv`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from regions import get_region
from regions.rails.gumroad.reader import ADAPTER
from regions.rails.gumroad.writer import write
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
SAMPLE = RAILS / "gumroad" / "samples" / "purchases_tz.csv"
REGION = get_region("TZ")


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 1  # the Totals row
    assert frame["source_row"].to_list() == list(range(1, 13))
    assert frame["amount_minor"].to_list() == [
        2500000,
        1200000,
        1200000,
        500000,
        -2500000,
        15000000,
        -15000000,
        None,
        1200000,
        800000,
        2500000,
        750050,
    ]
    assert frame["fee_minor"].to_list() == [37500, 18000, 18000, 0, 0, 225000, 0, 18000, 18000, 12000, 37500, 11250]
    assert frame["net_minor"].to_list()[:7] == [2462500, 1182000, 1182000, 500000, -2500000, 14775000, -15000000]
    assert frame["event_type"].to_list() == ["sale"] * 4 + ["refund", "sale", "reversal"] + ["sale"] * 5
    assert frame["status"].to_list() == ["success", "pending", "success", "failed"] + ["success"] * 8
    assert frame["occurred_at"].to_list() == [
        utc(2024, 3, 1, 9, 15, 30),
        utc(2024, 3, 1, 21, 59, 59),
        utc(2024, 3, 1, 22, 0, 59),
        utc(2024, 3, 2, 0, 30),
        utc(2024, 3, 2, 10),
        utc(2024, 3, 2, 13, 45, 10),
        utc(2024, 3, 3, 8),
        utc(2024, 3, 3, 11, 11, 11),
        None,
        utc(2024, 3, 3, 12),
        utc(2024, 3, 1, 9, 15, 30),
        utc(2024, 3, 3, 23, 59),
    ]
    assert frame["creator_id"].to_list() == [
        "TZ-C0001",
        "TZ-C0002",
        "TZ-C0002",
        "TZ-C0003",
        "TZ-C0001",
        "TZ-C0004",
        "TZ-C0004",
        "TZ-C0002",
        "TZ-C0002",
        None,
        "TZ-C0001",
        "TZ-C0005",
    ]
    assert frame["product_id"][0] == "TZ-P00001" and frame["product_id"][9] is None
    assert frame["transaction_id"][0] == frame["transaction_id"][4] == "Kj3aB9x0Qw"
    assert set(frame["currency"]) == {"TZS"}
    assert frame["channel"].to_list()[5:7] == ["paypal", "paypal"]
    refs = frame["buyer_ref"]
    assert refs[5] is None and refs[6] is None  # masked "****" email: no buyer reference
    assert refs[0] == refs[4] == refs[10]  # case and spaces do not split a buyer
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv().lower()
    assert "@example.com" not in plain and "mail.example" not in plain
    assert frame["raw_record"].struct.field("Your city")[0] == "Dar es Salaam, Kinondoni"


def test_dollar_headers_and_missing_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price ($),Fees ($),Net Total ($)\n"
        "A1,[TZ-C0001.TZ-P00002] x,2024-01-05,10:00:00,1000.00,15.00,985.00\n"
        "Totals,,,,1000.00,15.00,985.00\n"
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1
    assert frame.select("amount_minor", "fee_minor", "status", "event_type").row(0) == (100000, 1500, "success", "sale")
    assert frame["buyer_ref"][0] is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ("Receipt No,Completion Time,Paid In\nX,2024-01-01 10:00:00,100\n", "required column"),
        ("Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (USD),Fees (USD),Net Total (USD)\n", "USD"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.csv", reason, content=content)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    assert_rejected(ADAPTER, REGION, tmp_path / "cut.csv", "CSV", content=data[: data.index(b"Pp44Disp0t") + 40])


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "export.csv"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert_lines_accounted(frame, ignored, lines=len(path.read_text(encoding="utf-8").splitlines()) - 1, truth=truth)
    assert ignored == 1
    both = side_by_side(truth, frame)
    assert_round_trip(both)
    assert both["got_fee_minor"].eq_missing(both["fee_minor"]).all()
    assert (both["got_net_minor"] == both["amount_minor"] - both["fee_minor"]).fill_null(True).all()
