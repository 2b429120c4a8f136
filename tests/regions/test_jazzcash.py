"""JazzCash IPN records (PK, `jazzcash_ipn`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from regions import get_region
from regions.rails import get_adapter
from regions.rails.jazzcash.writer import write
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_rejected,
    assert_round_trip,
    quarantine_rules,
    read_all,
    read_written,
    side_by_side,
    through_contract,
    truth_frame,
    utc,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "jazzcash" / "samples" / "ipn_pk.jsonl"
REGION = get_region("PK")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/jazzcash/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 1  # the listener health ping; the blank line is not a record
    assert frame["source_row"].to_list() == [1, 2, *range(4, 14)]
    assert frame["amount_minor"].to_list() == [
        150000,
        150000,
        2500050,
        2500050,
        99900,
        50000,
        -150000,
        -2500050,
        None,
        70000,
        70000,
        70000,
    ]
    assert frame["event_type"].to_list() == ["sale"] * 6 + ["refund", "reversal"] + ["sale"] * 4
    assert frame["status"].to_list() == [
        "success",
        "success",
        "pending",
        "success",
        "failed",
        "failed",
        "success",
        "success",
        "success",
        "success",
        "pending",
        None,
    ]
    # Asia/Karachi is UTC+5 all year.
    assert frame["occurred_at"].to_list() == [
        utc(2024, 3, 1, 5, 15),
        utc(2024, 3, 1, 5, 15),
        utc(2024, 3, 1, 23),
        utc(2024, 3, 2, 0, 15),
        utc(2024, 3, 2, 4, 9, 9),
        utc(2024, 3, 2, 5),
        utc(2024, 3, 2, 19, 5),
        utc(2024, 3, 3, 7),
        utc(2024, 3, 3, 6, 11, 11),
        None,
        utc(2024, 3, 3, 8, 13, 13),
        utc(2024, 3, 3, 9, 14, 14),
    ]
    assert frame["creator_id"].to_list() == [
        "PK-C0001",
        "PK-C0001",
        "PK-C0002",
        "PK-C0002",
        "PK-C0003",
        "PK-C0003",
        "PK-C0001",
        "PK-C0002",
        "PK-C0004",
        "PK-C0004",
        None,
        "PK-C0005",
    ]
    assert frame["product_id"][2] == "PK-P00006"
    assert frame["transaction_id"].to_list()[:4] == ["T20240301101500"] * 2 + ["T20240301230000"] * 2
    assert frame["transaction_id"][6] == "T20240301101500" and frame["transaction_id"][7] == "T20240301230000"
    assert frame["channel"].to_list()[:6] == ["mwallet", "mwallet", "otc", "otc", "mpay", "mwallet"]
    assert frame["channel"][6] is None
    assert set(frame["fee_minor"]) == {0} and set(frame["currency"]) == {"PKR"}
    refs = frame["buyer_ref"]
    assert refs[4] is None and refs[10] is None  # masked and Excel-mangled phones
    assert refs[0] == refs[6] and refs[2] == refs[3] == refs[7]  # +92 300..., 92300... are one buyer
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv()
    assert "3011234567" not in plain and "3001234567" not in plain
    assert frame["raw_record"].struct.field("ppmpf_1")[0] == "03011234567"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ('{"event": "charge.success", "data": {"id": 1}}\n', "another rail's feed"),
        ('{"pp_TxnRefNo": "T1", "pp_Amount": "100"}\n{"pp_TxnRefNo": "T2", "pp_Am', "truncated or corrupt"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.jsonl", reason, content=content)


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "ipn.jsonl"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert_lines_accounted(frame, ignored, lines=len(path.read_text(encoding="utf-8").splitlines()), truth=truth)
    assert ignored == 3  # one health ping per chunk
    both = side_by_side(truth, frame)
    assert_round_trip(both)
    assert (both["got_fee_minor"] == 0).all()


def _ipn(ref: str, **fields: object) -> str:
    record = {
        "pp_Version": "2.0",
        "pp_TxnType": "MWALLET",
        "pp_TxnRefNo": ref,
        "pp_Amount": "100000",
        "pp_TxnCurrency": "PKR",
        "pp_TxnDateTime": "20251124131402",
        "pp_BillReference": "PK-C0001.PK-P00001",
    } | fields
    return json.dumps(record) + "\n"


def test_a_status_inquirys_answer_is_read_by_the_payments_code_not_the_inquirys(tmp_path: Path) -> None:
    """JazzCash's Status Inquiry answers "000" in pp_ResponseCode when the inquiry itself worked; the payment's code
    is pp_PaymentResponseCode. Read by pp_ResponseCode, a payment still pending, or cancelled by the customer, was
    loaded as a PKR 1,000 sale."""
    inquiry = {"pp_ResponseCode": "000", "pp_ResponseMessage": "Thank you for using JazzCash. Your operation was "
               "processed successfully."}  # fmt: skip
    frame, _ = read_written(
        ADAPTER,
        REGION,
        tmp_path / "ipn.jsonl",
        _ipn("T1", **inquiry, pp_PaymentResponseCode="121", pp_Status="Completed")
        + _ipn("T2", **inquiry, pp_PaymentResponseCode="157", pp_Status="Pending")
        + _ipn("T3", **inquiry, pp_PaymentResponseCode="112", pp_Status="Failed")
        + _ipn("T4", **inquiry, pp_PaymentResponseCode="", pp_Status="Pending")
        + _ipn("T5", **inquiry, pp_Status="Completed"),
    )
    split = through_contract(frame, REGION)
    loaded = split.valid.select("transaction_id", "status", "amount_minor").rows()
    assert loaded == [("T1", "success", 100000), ("T2", "pending", 100000), ("T3", "failed", 100000)]
    # an answer naming no payment code states no result: a steward sees it, nothing is guessed
    assert ("missing_or_unreadable", "status") in quarantine_rules(split, 4)
    assert ("missing_or_unreadable", "status") in quarantine_rules(split, 5)
    assert frame["raw_record"].struct.field("pp_PaymentResponseCode")[1] == "157"


def test_codes_saying_money_went_back_are_quarantined_not_read_as_a_failed_sale(tmp_path: Path) -> None:
    """121 loaded the sale; a later record for the same payment with 131 ("Transaction is Refunded") or 122
    ("Reversed") was read as a failed attempt, so the sale kept counting and the money that went back never showed.
    Such codes go to a steward; 210 ("Authorization pending") is pending, not failed."""
    frame, _ = read_written(
        ADAPTER,
        REGION,
        tmp_path / "ipn.jsonl",
        _ipn("T1", pp_ResponseCode="121")
        + _ipn("T1", pp_ResponseCode="131", pp_TxnDateTime="20251125090000")
        + _ipn("T2", pp_ResponseCode="121")
        + _ipn("T2", pp_ResponseCode="122", pp_TxnDateTime="20251125090000")
        + _ipn("T3", pp_ResponseCode="210")
        + _ipn("T4", pp_ResponseCode="199"),
    )
    split = through_contract(frame, REGION)
    loaded = split.valid.select("transaction_id", "status").rows()
    assert loaded == [("T1", "success"), ("T2", "success"), ("T3", "pending"), ("T4", "failed")]
    for line in (2, 4):
        assert ("missing_or_unreadable", "status") in quarantine_rules(split, line)
