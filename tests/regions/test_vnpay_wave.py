"""VNPAY and Wave Checkout read against their published formats: what a record says about money, not what one of
its fields alone seems to say.

VNPAY reports a payment's outcome twice: `vnp_ResponseCode` (the result of the request) and
`vnp_TransactionStatus` (the transaction's state at VNPAY); its own IPN demo books a payment only when both are
"00". The refund API answers a refund request with the refund's state, usually "05" (VNPAY is processing it).
Wave sends a portal test event and a failed payment attempt on a session that stays open.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from kanda.settings import Settings
from regions import get_region
from regions.rails import get_adapter
from tests.support.files import ingest_written
from tests.support.roundtrip import quarantine_rules, read_written, through_contract, utc

#: An IPN as VNPAY sends it (query parameters, logged as one JSON object), with the `vnp_TransactionType` our
#: receiver adds.
IPN = {
    "vnp_Amount": "10000000",
    "vnp_BankCode": "NCB",
    "vnp_BankTranNo": "VNP14271027",
    "vnp_CardType": "ATM",
    "vnp_OrderInfo": "Thanh toan VN-C0001.VN-P00001",
    "vnp_PayDate": "20261005160000",
    "vnp_ResponseCode": "00",
    "vnp_TmnCode": "KANDA001",
    "vnp_TransactionNo": "14271027",
    "vnp_TransactionStatus": "00",
    "vnp_TxnRef": "VN100001",
    "vnp_SecureHash": "3f1c0d",
    "vnp_TransactionType": "01",
}

#: The refund API's answer (vnp_Command=refund) in the shape VNPAY returns it: `vnp_PayDate` is the refund's own
#: time, `vnp_Amount` the refund's amount x100, `vnp_TransactionStatus` "05" while VNPAY processes it.
REFUND = {
    "vnp_ResponseId": "fa14474280ea49b9b5987308e35ccb06",
    "vnp_Command": "refund",
    "vnp_ResponseCode": "00",
    "vnp_Message": "Refund success",
    "vnp_TmnCode": "KANDA001",
    "vnp_TxnRef": "VN100001",
    "vnp_Amount": "4000000",
    "vnp_OrderInfo": "Hoan tien VN-C0001.VN-P00001",
    "vnp_BankCode": "NCB",
    "vnp_PayDate": "20261006184331",
    "vnp_TransactionNo": "14271050",
    "vnp_TransactionType": "03",
    "vnp_TransactionStatus": "05",
    "vnp_SecureHash": "6ceafc",
}


def _records(code: str, path: Path, *records: dict) -> tuple[pl.DataFrame, int]:
    """JSON-lines `records` written to `path` and read by the rail of region `code`."""
    region = get_region(code)
    content = "".join(json.dumps(r) + "\n" for r in records)
    return read_written(get_adapter(region.source_format), region, path, content)


def _vn(tmp_path: Path, *records: dict) -> tuple[pl.DataFrame, int]:
    return _records("VN", tmp_path / "ipn.ndjson", *records)


@pytest.mark.parametrize(
    ("response_code", "meaning"),
    [
        pytest.param("07", "money taken, held as suspected fraud until the merchant accepts it", id="07-suspicious"),
        pytest.param("24", "the customer cancelled", id="24-cancelled"),
        pytest.param("51", "insufficient balance", id="51-no-funds"),
    ],
)
def test_a_vnpay_payment_is_a_sale_only_when_both_codes_say_so(tmp_path: Path, response_code: str, meaning: str):
    """vnp_TransactionStatus "00" beside a vnp_ResponseCode that is not "00" was loaded as a successful sale of
    VND 100,000: the status alone was read. VNPAY's own IPN code books a payment only when both are "00"; a record
    whose two codes disagree is quarantined for a person to check, never counted as money."""
    disagreeing = IPN | {"vnp_ResponseCode": response_code}
    frame, _ = _vn(tmp_path, IPN, disagreeing)
    split = through_contract(frame, get_region("VN"))
    assert split.valid["source_row"].to_list() == [1]  # the IPN whose codes agree
    assert split.valid.row(0, named=True)["status"] == "success"
    assert ("missing_or_unreadable", "status") in quarantine_rules(split, 2), meaning


def test_a_suspicious_vnpay_payment_is_quarantined_whatever_its_transaction_status(tmp_path: Path):
    """Response code "07" means VNPAY took the money but holds the payment as suspected fraud: the merchant accepts
    or refuses it in VNPAY's portal. Until then it is neither a sale nor a failed attempt."""
    frame, _ = _vn(tmp_path, *[IPN | {"vnp_ResponseCode": "07", "vnp_TransactionStatus": ts} for ts in ("00", "07")])
    split = through_contract(frame, get_region("VN"))
    assert split.valid.is_empty() and split.quarantine.height == 2


def test_a_failed_vnpay_attempt_is_failed_and_moves_no_money(tmp_path: Path):
    cancelled = IPN | {"vnp_ResponseCode": "24", "vnp_TransactionStatus": "02", "vnp_TransactionNo": "0"}
    frame, _ = _vn(tmp_path, cancelled)
    (row,) = through_contract(frame, get_region("VN")).valid.iter_rows(named=True)
    assert (row["event_type"], row["status"], row["amount_minor"]) == ("sale", "failed", 100_000)


@pytest.mark.parametrize(
    ("transaction_status", "status"),
    [
        pytest.param("05", "pending", id="05-vnpay-processing"),
        pytest.param("06", "pending", id="06-sent-to-bank"),
        pytest.param("09", "failed", id="09-refund-refused"),
        pytest.param("00", "success", id="00-refunded"),
    ],
)
def test_a_vnpay_refund_answer_loads_as_the_refund_state_it_reports(
    tmp_path: Path, transaction_status: str, status: str
):
    """The refund API answers "05" (VNPAY is processing the refund) or "06" (sent to the bank): every real refund
    answer was quarantined as an unreadable status. It is a pending refund of its own amount (a partial refund
    of VND 40,000 here, x100 like every VNPAY amount) at its own time, linked to the payment by vnp_TxnRef;
    only a refund reported done ("00") takes money off the sale."""
    frame, _ = _vn(tmp_path, IPN, REFUND | {"vnp_TransactionStatus": transaction_status})
    split = through_contract(frame, get_region("VN"))
    assert split.quarantine.is_empty()
    sale, refund = split.valid.sort("source_row").iter_rows(named=True)
    assert refund["transaction_id"] == sale["transaction_id"] == "VN100001"
    assert (refund["event_type"], refund["status"], refund["amount_minor"]) == ("refund", status, -40_000)
    assert refund["occurred_at"] == utc(2026, 10, 6, 11, 43, 31)  # 18:43:31 in Vietnam (GMT+7)


def test_a_refused_vnpay_refund_request_is_never_a_refund(tmp_path: Path):
    """A refund request VNPAY refuses ("95": the payment did not succeed at VNPAY; "94": a refund of it is already
    being processed) carries no refund state: it is quarantined, never booked as money going back."""
    refused = [REFUND | {"vnp_ResponseCode": code, "vnp_TransactionStatus": ""} for code in ("94", "95")]
    frame, _ = _vn(tmp_path, *refused)
    split = through_contract(frame, get_region("VN"))
    assert split.valid.is_empty() and split.quarantine.height == 2


# -------------------------------------------------------------------------------------------------------- Wave
SESSION = {
    "id": "cos-1a2b3c",
    "amount": "1000",
    "checkout_status": "complete",
    "client_reference": "SN-C0001.SN-P00001",
    "currency": "XOF",
    "payment_status": "succeeded",
    "transaction_id": "TCN4Y4ZC3FM",
    "when_created": "2026-10-05T08:59:01Z",
    "when_completed": "2026-10-05T09:00:00Z",
}


def _sn(tmp_path: Path, *events: dict) -> tuple[pl.DataFrame, int]:
    return _records("SN", tmp_path / "wave.ndjson", *events)


def test_wave_portal_test_event_is_ignored_not_quarantined(tmp_path: Path):
    """The business portal's webhook test sends `test.test_event`: no payment stands behind it. It was quarantined
    as an unknown event type, a row no steward can fix; it is ignored (counted) like the other non-checkout events."""
    test_event = {"id": "AE_sn_test1", "type": "test.test_event", "data": SESSION | {"id": "cos-test"}}
    completed = {"id": "AE_sn_1", "type": "checkout.session.completed", "data": SESSION}
    frame, ignored = _sn(tmp_path, test_event, completed)
    assert (frame.height, ignored) == (1, 1)
    assert through_contract(frame, get_region("SN")).valid["source_row"].to_list() == [2]


@pytest.mark.parametrize("payment_status", ["processing", "cancelled"])
def test_a_failed_wave_payment_attempt_is_failed_whatever_the_open_session_says(tmp_path: Path, payment_status: str):
    """`checkout.session.payment_failed` reports a failed attempt; the session may stay open for another try, its
    payment still `processing`. That attempt was loaded as a pending sale; it is a failed one."""
    failed = {
        "id": "AE_sn_2",
        "type": "checkout.session.payment_failed",
        "data": SESSION
        | {
            "payment_status": payment_status,
            "last_payment_error": {"code": "insufficient-funds", "message": "Solde insuffisant"},
        },
    }
    frame, _ = _sn(tmp_path, failed)
    (row,) = through_contract(frame, get_region("SN")).valid.iter_rows(named=True)
    assert (row["event_type"], row["status"]) == ("sale", "failed")


def test_a_failed_attempt_on_an_open_wave_session_is_a_failed_sale_at_the_session_s_creation(tmp_path: Path):
    """Wave leaves `when_completed` out of a session still open for another attempt, and its failed attempts were
    quarantined for a missing time: a buyer who gave up never counted as a failed payment. The session's creation
    is the time; a later success of the same session is the payment's latest status."""
    open_session = {k: v for k, v in SESSION.items() if k not in ("when_completed", "transaction_id")}
    failed = {
        "id": "AE_sn_4",
        "type": "checkout.session.payment_failed",
        "data": open_session | {"checkout_status": "open", "payment_status": "processing"},
    }
    completed = {"id": "AE_sn_5", "type": "checkout.session.completed", "data": SESSION}
    frame, _ = _sn(tmp_path, failed, completed)
    split = through_contract(frame, get_region("SN"))
    assert split.quarantine.is_empty()
    rows = split.valid.sort("source_row").select("transaction_id", "status", "occurred_at", "amount_minor").rows()
    assert rows == [
        ("cos-1a2b3c", "failed", dt.datetime(2026, 10, 5, 8, 59, 1, tzinfo=dt.UTC), 1000),
        ("cos-1a2b3c", "success", dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC), 1000),
    ]


def test_a_wave_session_reported_failed_but_paid_is_quarantined(tmp_path: Path):
    """A payment_failed event whose session says `succeeded` contradicts itself: neither a sale nor a failure."""
    odd = {"id": "AE_sn_3", "type": "checkout.session.payment_failed", "data": SESSION}
    frame, _ = _sn(tmp_path, odd)
    split = through_contract(frame, get_region("SN"))
    assert split.valid.is_empty() and ("missing_or_unreadable", "status") in quarantine_rules(split, 1)


def test_vnpay_ipn_retries_are_one_payment_and_only_a_finished_refund_takes_money_back(settings: Settings):
    """VNPAY calls the IPN again until we answer RspCode "00": three deliveries are one sale, two duplicates. The
    refund API's "05" answer is a pending refund; the sale is whole until a record reports the refund done."""
    from kanda.flow import build
    from kanda.regional.store import open_store

    pending = REFUND | {"vnp_OrderInfo": "Hoan tien VN-C0001.VN-P00001"}
    done = pending | {"vnp_TransactionStatus": "00"}
    lines = [IPN, IPN, IPN, pending]
    path = settings.home / "ipn.ndjson"
    report = ingest_written(settings, "VN", path, "".join(json.dumps(r) + "\n" for r in lines))
    assert (report.loaded, report.duplicates, report.quarantined) == (2, 2, 0), report
    build(settings, "VN")
    query = "SELECT current_state, gross_minor, refunded_minor FROM fct_sales WHERE transaction_id = 'VN100001'"
    with open_store(settings, "VN", read_only=True) as con:
        assert con.execute(query).fetchall() == [("success", 100_000, 0)]
    later = ingest_written(settings, "VN", settings.home / "querydr.ndjson", json.dumps(done) + "\n")
    assert later.loaded == 1, later
    build(settings, "VN")
    with open_store(settings, "VN", read_only=True) as con:
        assert con.execute(query).fetchall() == [("partially_refunded", 100_000, 40_000)]


@pytest.mark.parametrize(
    ("order_info", "named"),
    [
        ("Thanh toan VN-C0001.VN-P00001", ("VN-C0001", "VN-P00001")),
        ("Thanh toan VN-C0001.VN-P00001 lan 2", ("VN-C0001", "VN-P00001")),
        ("Thanh toan VN-C0001.VN-P000012", (None, None)),
        ("Thanh toan XVN-C0001.VN-P00001", (None, None)),
    ],
)
def test_a_vnpay_order_info_names_whole_ids_or_none(tmp_path: Path, order_info: str, named: tuple) -> None:
    """The reference is found inside free text: an id one digit longer was cut down to a product it is not, and its
    sale loaded under that product with nothing to flag it. It names none now, so the row is quarantined."""
    frame, _ = _vn(tmp_path, IPN | {"vnp_OrderInfo": order_info})
    assert frame.select("creator_id", "product_id").row(0) == named
