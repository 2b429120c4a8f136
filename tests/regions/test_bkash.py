"""bKash execute responses (BD, `bkash_execute`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from regions import get_region
from regions.rails import get_adapter
from regions.rails.bkash.writer import write
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
SAMPLE = RAILS / "bkash" / "samples" / "execute_bd.jsonl"
REGION = get_region("BD")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/bkash/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 1  # the error body without a paymentID
    assert frame["source_row"].to_list() == [1, *range(3, 14)]
    # "1,00,000.00" is lakh grouping; "৪৫৬.৫০" is Bengali digits.
    assert frame["amount_minor"].to_list() == [
        50000,
        10000000,
        10000000,
        45650,
        250000,
        30000,
        -50000,
        -10000000,
        None,
        75000,
        75000,
        75000,
    ]
    assert frame["event_type"].to_list() == ["sale"] * 6 + ["refund", "reversal"] + ["sale"] * 4
    assert frame["status"].to_list() == [
        "success",
        "pending",
        "success",
        "success",
        "failed",
        "failed",
        "success",
        "success",
        "success",
        "success",
        "success",
        None,
    ]
    # "...:000 GMT+0600" is Asia/Dhaka wall time: six hours ahead of UTC.
    assert frame["occurred_at"].to_list() == [
        utc(2024, 1, 1, 6, 5),
        utc(2023, 12, 31, 18, 30),
        utc(2023, 12, 31, 18, 31, 15, 250000),
        utc(2024, 1, 2, 12),
        utc(2024, 1, 2, 13),
        utc(2024, 1, 2, 19),
        utc(2024, 1, 2, 23, 59, 59, 999000),
        utc(2024, 1, 4, 4),
        utc(2024, 1, 4, 5),
        None,
        utc(2024, 1, 4, 17, 59),
        utc(2024, 1, 5),
    ]
    assert frame["creator_id"].to_list() == [
        "BD-C0001",
        "BD-C0002",
        "BD-C0002",
        "BD-C0003",
        "BD-C0003",
        "BD-C0004",
        "BD-C0001",
        "BD-C0002",
        "BD-C0005",
        "BD-C0005",
        None,
        "BD-C0006",
    ]
    assert frame["product_id"][1] == "BD-P00005"
    ids = frame["transaction_id"].to_list()
    assert ids[0] == ids[6] == "TR0011ON1565154754797" and ids[1] == ids[2] == ids[7]
    assert set(frame["fee_minor"]) == {0} and set(frame["currency"]) == {"BDT"}
    refs = frame["buyer_ref"]
    assert refs[3] is None  # masked MSISDN
    assert refs[0] == refs[6] and refs[1] == refs[2] == refs[7]  # 8801812... and 01812... are one buyer
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv()
    assert "1770618575" not in plain and "1812345678" not in plain
    assert frame["raw_record"].struct.field("amount")[3] == "৪৫৬.৫০"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ('{"event": "charge.success", "data": {"id": 1}}\n', "none of the required fields is there"),
        ('{"paymentID": "TR1", "transactionStatus": "Completed"}\n{"paymentID": "TR2", "amo', "truncated or corrupt"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.jsonl", reason, content=content)


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "execute.jsonl"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert_lines_accounted(frame, ignored, lines=len(path.read_text(encoding="utf-8").splitlines()), truth=truth)
    assert ignored == 3  # one error body per chunk
    both = side_by_side(truth, frame)
    assert_round_trip(both)
    assert (both["got_fee_minor"] == 0).all()


def test_bkashs_own_refund_response_is_quarantined_not_ignored_as_an_error_body(tmp_path: Path) -> None:
    """bKash's refund API answers without a paymentID; ignored like an error body, the money going back vanished
    while every count balanced. Quarantined, a steward sees it (and its refundTrxID) in the review queue."""
    from tests.support.roundtrip import quarantine_rules, through_contract

    path = tmp_path / "refund.jsonl"
    path.write_text(
        SAMPLE.read_text().splitlines()[0] + "\n"
        '{"statusCode":"2056","statusMessage":"Invalid Payment State"}\n'
        '{"completedTime":"2024-01-03T10:00:00:000 GMT+0600","transactionStatus":"Completed",'
        '"originalTrxID":"6H7801QFYM","refundTrxID":"7A2B3C4D5E","amount":"500.00","currency":"BDT","charge":"0.00"}\n'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1  # the error body only
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1]
    assert ("missing_or_unreadable", "transaction_id") in quarantine_rules(split, 3)
