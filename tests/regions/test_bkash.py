"""bKash execute responses (BD, `bkash_execute`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from regions.rails import get_adapter
from regions.rails.bkash.writer import write
from tests.support.files import ingest_written
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


def _record(**fields: object) -> str:
    return json.dumps(fields, ensure_ascii=False) + "\n"


#: A completed payment as execute answers it (bKash's sandbox sample's shape).
EXECUTE = {
    "statusCode": "0000",
    "statusMessage": "Successful",
    "paymentID": "TR0011ON1565154754797",
    "payerReference": "01770618575",
    "customerMsisdn": "01770618575",
    "trxID": "6H7801QFYM",
    "amount": "500",
    "transactionStatus": "Completed",
    "paymentExecuteTime": "2025-06-05T23:31:24:581 GMT+0600",
    "currency": "BDT",
    "intent": "sale",
    "merchantInvoiceNumber": "BD-C0001.BD-P00001.n1",
}


def test_bkashs_refund_answer_is_a_refund_timed_by_its_completed_time(tmp_path: Path) -> None:
    """bKash's refund answer says transactionStatus "Completed" (the refund's status): read by the vocabulary it was
    a sale of +500. Logged with the payment's paymentID it was quarantined for a missing time, and a steward who gave
    it one loaded a second sale that repeated the payment's (a duplicate): the refund vanished. It is a refund of
    -500 on the day completedTime states; without a paymentID it stays quarantined, as a refund."""
    refund = {
        "completedTime": "2025-06-07T10:00:00:000 GMT+0600",
        "transactionStatus": "Completed",
        "originalTrxID": "6H7801QFYM",
        "refundTrxID": "7A2B3C4D5E",
        "amount": "500.00",
        "currency": "BDT",
        "charge": "0.00",
    }
    frame, ignored = read_written(
        ADAPTER,
        REGION,
        tmp_path / "refund.jsonl",
        _record(**EXECUTE)
        + _record(paymentID=EXECUTE["paymentID"], merchantInvoiceNumber=EXECUTE["merchantInvoiceNumber"], **refund)
        + _record(**refund),
    )
    assert ignored == 0
    split = through_contract(frame, REGION)
    loaded = split.valid.select("source_row", "event_type", "status", "amount_minor", "occurred_at").rows()
    assert loaded == [
        (1, "sale", "success", 50000, utc(2025, 6, 5, 17, 31, 24, 581000)),
        (2, "refund", "success", -50000, utc(2025, 6, 7, 4)),
    ]
    (parsed,) = split.quarantine.filter(pl.col("source_row") == 3)["parsed"].to_list()
    assert {k: json.loads(parsed)[k] for k in ("event_type", "amount_minor")} == {
        "event_type": "refund",
        "amount_minor": -50000,
    }
    assert ("missing_or_unreadable", "transaction_id") in quarantine_rules(split, 3)


def test_bkashs_v2_refund_answer_is_quarantined_not_ignored_as_an_error_body(tmp_path: Path) -> None:
    """The v2 refund API spells its ids originalTrxId / refundTrxId: matched by the v1 spellings only, its answer
    was ignored like an error body and the money going back vanished while every count balanced."""
    v2 = {
        "originalTrxId": "6H7801QFYM",
        "refundTrxId": "7A2B3C4D5E",
        "refundTransactionStatus": "Completed",
        "originalTrxAmount": "500.00",
        "refundAmount": "200.00",
        "currency": "BDT",
        "completedTime": "2025-06-07T10:00:00:000 GMT+0600",
    }
    frame, ignored = read_written(
        ADAPTER,
        REGION,
        tmp_path / "refund.jsonl",
        _record(**EXECUTE) + _record(statusCode="2056", statusMessage="Invalid Payment State") + _record(**v2),
    )
    assert ignored == 1  # the error body only
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1]
    assert ("missing_or_unreadable", "transaction_id") in quarantine_rules(split, 3)
    (raw,) = [json.loads(r) for r in split.quarantine.filter(pl.col("source_row") == 3)["raw_record"]]
    assert raw["refundTrxId"] == "7A2B3C4D5E" and raw["refundAmount"] == "200.00"


def test_create_execute_and_query_of_one_payment_are_one_sale(settings: Settings, tmp_path: Path) -> None:
    """Create, execute and query answers of one paymentID: the create is the payment pending (timed by its
    paymentCreateTime, it has no execute time) and the query repeats the execute, naming the invoice
    `merchantInvoice`. Both used to be quarantined (no time; no reference) instead of a pending event and a
    duplicate."""
    create = {
        "statusCode": "0000",
        "statusMessage": "Successful",
        "paymentID": EXECUTE["paymentID"],
        "bkashURL": "https://sandbox.payment.bkash.com/redirect/tokenized/?paymentID=TR0011ON1565154754797",
        "amount": "500",
        "intent": "sale",
        "currency": "BDT",
        "paymentCreateTime": "2025-06-05T23:26:49:676 GMT+0600",
        "transactionStatus": "Initiated",
        "merchantInvoiceNumber": EXECUTE["merchantInvoiceNumber"],
    }
    query = {
        "paymentID": EXECUTE["paymentID"],
        "mode": "0011",
        "paymentCreateTime": create["paymentCreateTime"],
        "paymentExecuteTime": EXECUTE["paymentExecuteTime"],
        "amount": "500",
        "currency": "BDT",
        "intent": "sale",
        "merchantInvoice": EXECUTE["merchantInvoiceNumber"],
        "trxID": EXECUTE["trxID"],
        "transactionStatus": "Completed",
        "verificationStatus": "Complete",
        "statusCode": "0000",
        "statusMessage": "Successful",
        "payerReference": "01770618575",
    }
    report = ingest_written(
        settings, "BD", tmp_path / "bd.jsonl", _record(**create) + _record(**EXECUTE) + _record(**query)
    )
    assert (report.loaded, report.quarantined, report.duplicates) == (2, 0, 1)
    with open_store(settings, "BD", read_only=True) as con:
        events = con.execute("SELECT status, amount_minor, local_date FROM sale_events ORDER BY occurred_at").fetchall()
    assert events == [("pending", 50000, dt.date(2025, 6, 5)), ("success", 50000, dt.date(2025, 6, 5))]


def test_two_partial_refunds_of_one_amount_within_a_minute_are_two_refunds(settings: Settings, tmp_path: Path) -> None:
    """bKash refunds a payment in parts, each refund with its own refundTrxID. Told apart by their minute, a second
    refund of BDT 200.00 completed within the minute of the first was counted a duplicate: the creator's net kept
    BDT 200.00 that had gone back to the buyer. A redelivery of a refund (same refundTrxID) stays a duplicate."""
    from kanda.flow import build

    def refund(refund_trx: str, second: int) -> dict:
        return {
            "paymentID": EXECUTE["paymentID"],
            "merchantInvoiceNumber": EXECUTE["merchantInvoiceNumber"],
            "completedTime": f"2025-06-07T10:00:{second:02d}:000 GMT+0600",
            "transactionStatus": "Completed",
            "originalTrxID": EXECUTE["trxID"],
            "refundTrxID": refund_trx,
            "amount": "200.00",
            "currency": "BDT",
            "charge": "0.00",
        }

    lines = [EXECUTE, refund("7A2B3C4D5E", 10), refund("7A2B3C4D5F", 40), refund("7A2B3C4D5E", 10)]
    report = ingest_written(settings, "BD", tmp_path / "bd.jsonl", "".join(_record(**r) for r in lines))
    assert (report.loaded, report.duplicates, report.quarantined) == (3, 1, 0), report
    build(settings, "BD")
    query = "SELECT current_state, gross_minor, refunded_minor FROM fct_sales WHERE transaction_id = ?"
    with open_store(settings, "BD", read_only=True) as con:
        assert con.execute(query, [EXECUTE["paymentID"]]).fetchall() == [("partially_refunded", 50000, 40000)]
