"""Paystack webhook adapter: a hand-written log with the rail's dirt, file-level rejects, and a writer round trip."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from kanda.settings import Settings
from regions import get_region
from regions.rails import get_adapter
from regions.rails.base import ADAPTER_SCHEMA, DEFAULT_BATCH_ROWS
from regions.rails.paystack.writer import write
from tests.support.builders import paystack_event
from tests.support.files import ingest_written
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_no_contact_leaks,
    assert_rejected,
    assert_round_trip,
    assert_same_but_source_row,
    match_events,
    read_all,
    row,
    truth_frame,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "paystack" / "samples" / "webhooks.ndjson"
REGION = get_region("NG")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/paystack/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)
UTC = dt.UTC


def test_sample_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION, batch_rows=4)
    assert list(frame.columns) == [*ADAPTER_SCHEMA, "raw_record"]
    assert ignored == 2  # transfer.success and subscription.create; the blank line is not a document
    assert frame["source_row"].to_list() == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]

    first = row(frame, 1)
    assert first["transaction_id"] == "PSK-0001"
    assert (first["event_type"], first["status"]) == ("sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (500_000, 7_500, "NGN")
    assert first["occurred_at"] == dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=UTC)
    assert (first["creator_id"], first["product_id"], first["channel"]) == ("NG-C0001", "NG-P00001", "card")
    # A duplicate delivery maps to the identical row (only source_row differs).
    assert_same_but_source_row(row(frame, 2), first)

    pending, paid = row(frame, 3), row(frame, 4)  # "ongoing" then success; amount as a string; metadata as text
    assert (pending["status"], pending["occurred_at"]) == ("pending", dt.datetime(2025, 2, 11, 23, 30, 5, tzinfo=UTC))
    assert (pending["fee_minor"], pending["creator_id"], pending["product_id"]) == (0, "NG-C0002", "NG-P00005")
    assert (paid["status"], paid["amount_minor"], paid["fee_minor"]) == ("success", 250_000, 3_750)
    assert paid["transaction_id"] == pending["transaction_id"] == "PSK-0002"

    abandoned = row(frame, 5)
    assert (abandoned["event_type"], abandoned["status"]) == ("sale", "failed")
    assert abandoned["occurred_at"] == dt.datetime(2025, 2, 12, 8, 0, tzinfo=UTC)

    sale, refund = row(frame, 7), row(frame, 8)
    assert sale["occurred_at"] == dt.datetime(2025, 2, 12, 9, 15, 30, 500_000, tzinfo=UTC)
    assert (refund["transaction_id"], refund["event_type"], refund["status"]) == ("PSK-0004", "refund", "success")
    assert (refund["amount_minor"], refund["fee_minor"]) == (-1_234_567, 0)
    assert refund["occurred_at"] == dt.datetime(2025, 2, 13, 12, 0, tzinfo=UTC)
    assert refund["buyer_ref"] == sale["buyer_ref"]

    reversal = row(frame, 9)
    assert (reversal["event_type"], reversal["status"], reversal["amount_minor"]) == ("reversal", "success", -80_000)
    assert reversal["fee_minor"] == 0  # the re-sent transaction's `fees` (1200) is the sale's, booked on the sale
    assert reversal["occurred_at"] == dt.datetime(2025, 2, 12, 18, 45, tzinfo=UTC)  # updated_at, not paid_at

    assert row(frame, 10)["amount_minor"] is None  # "12,3O0"
    assert row(frame, 11)["occurred_at"] is None  # paid_at "N/A"
    assert row(frame, 12)["creator_id"] is None and row(frame, 12)["product_id"] is None  # metadata ""
    assert row(frame, 13)["buyer_ref"] is None  # masked email; the phone is not used as a buyer key


def test_buyer_ref_is_a_hash_and_no_contact_leaks() -> None:
    frame, _ = read_all(ADAPTER, SAMPLE, REGION)
    refs = frame["buyer_ref"].drop_nulls()
    assert refs.len() == 11 and refs.str.contains(r"^[0-9a-f]{64}$").all()
    assert row(frame, 1)["buyer_ref"] != row(frame, 3)["buyer_ref"]
    # Case and spacing of the email do not change the reference: it is hashed after normalising.
    contacts = ("ada.obi@example.com", "tunde@mail.example", "08031234567", "8031234567", "@")
    assert_no_contact_leaks(frame, contacts, lowercase=True)
    assert "Ada.Obi@Example.com" in str(row(frame, 1)["raw_record"])


def test_a_test_mode_event_is_ignored_not_loaded(tmp_path: Path) -> None:
    """One receiver URL registered for test and live mode gets test payments too (`data.domain` "test"): loaded,
    each was a sale that moved no money. It is counted as ignored; the same event from the live domain loads."""
    live = SAMPLE.read_text().splitlines()[0]
    assert '"domain":"live"' in live
    path = tmp_path / "webhooks.ndjson"
    for domain, loaded, ignored in (("test", 0, 1), ("live", 1, 0)):
        path.write_text(live.replace('"domain":"live"', f'"domain":"{domain}"') + "\n")
        frame, skipped = read_all(ADAPTER, path, REGION)
        assert (frame.height, skipped) == (loaded, ignored), domain


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "empty.ndjson", "empty", content=b"")
    assert_rejected(ADAPTER, REGION, tmp_path / "blank.ndjson", "only blank lines", content="\n\n")


def test_other_format_is_rejected(tmp_path: Path) -> None:
    assert_rejected(
        ADAPTER,
        REGION,
        tmp_path / "other.ndjson",
        r"none of the required fields is there; NG \(Nigeria\) expects Paystack webhook events",
        content='{"paymentID":"TR0011","trxID":"9A1","amount":"500.00"}\n',
    )


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    text = SAMPLE.read_text()
    assert_rejected(ADAPTER, REGION, tmp_path / "truncated.ndjson", "not valid JSON", content=text[: len(text) - 60])


def test_round_trip(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11)
    path = tmp_path / "paystack.ndjson"
    write(path, iter([truth]), REGION, np.random.default_rng(5))
    frame, ignored = read_all(ADAPTER, path, REGION, batch_rows=500)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert_lines_accounted(frame, ignored, lines=len(lines), truth=truth)

    both = match_events(truth, frame, pl.lit("T") + pl.col("txn_no").cast(pl.String).str.zfill(12))
    assert_round_trip(both)
    # The adapter gives refund events no fee (fee 0), so fees are compared on sales.
    clean_sales = both.filter(pl.col("corruption").is_null() & (pl.col("event_type") == "sale"))
    assert clean_sales["got_fee_minor"].eq_missing(clean_sales["fee_minor"]).all()


def test_a_log_that_opens_with_events_without_an_amount_is_read_the_same_at_any_chunk_size(tmp_path: Path) -> None:
    """Paystack also posts customer and dedicated-account events, whose `data` is a customer, not a transaction,
    and has no `amount`. Whether a file is the rail's feed at all was decided on its first chunk: a log opening with
    a megabyte of such events was refused as another rail's when read in small chunks and loaded when read in the
    ingest's. It is decided on the first 100,000 records now, whatever the chunk size."""
    assignment = {
        "event": "dedicatedaccount.assign.success",
        "data": {
            "customer": {"id": 100110, "email": "buyer@mail.example", "customer_code": "CUS_hcekca0j0bbg2m4"},
            "dedicated_account": {"bank": {"name": "Wema Bank"}, "account_number": "9930000737", "active": True},
            "identification": {"status": "success"},
        },
    }
    lines = [json.dumps(assignment)] * 5_000  # about 1.4 MB, more than the smallest block
    lines += [json.dumps(paystack_event(n)) for n in range(3)]
    path = tmp_path / "webhooks.ndjson"
    path.write_text("\n".join(lines) + "\n")
    for batch_rows in (500, DEFAULT_BATCH_ROWS):
        frame, ignored = read_all(ADAPTER, path, REGION, batch_rows=batch_rows)
        assert (frame["transaction_id"].to_list(), ignored) == (["ps_000000", "ps_000001", "ps_000002"], 5_000)


def test_a_fee_the_customer_bore_is_neither_the_creators_sale_nor_their_fee(settings: Settings) -> None:
    """Where the customer bears Paystack's fee (a dashboard setting, `bearer`), `amount` is what the customer paid,
    the price plus the fee, and `requested_amount` the price: Paystack's own verify sample has amount 40333 =
    requested_amount 30050 + fees 10283. Read from `amount`, every such sale showed the creator 10283 kobo of sales
    they never made and a fee they never paid (the net hid it). The creator's day shows the price, no fee, and the
    same net; a charge whose merchant bears the fee (the two amounts equal, or no `requested_amount`) is as before."""
    from kanda.flow import build
    from kanda.regional.store import open_store

    day = {"paid_at": "2025-06-05T10:00:00.000Z"}
    lines = [
        paystack_event(1, amount=40333, requested_amount=30050, fees=10283, **day),  # the customer bore the fee
        paystack_event(2, amount=10000, requested_amount=10000, fees=50, **day),  # the merchant bore it
        paystack_event(3, amount=10000, fees=50, **day),  # an older payload without requested_amount
        paystack_event(4, amount=40333, requested_amount=30050, fees=100, **day),  # contradicts itself
    ]
    path = settings.home / "webhooks.ndjson"
    report = ingest_written(settings, "NG", path, "".join(json.dumps(x) + "\n" for x in lines))
    assert (report.loaded, report.quarantined) == (3, 1), report
    build(settings, "NG")
    query = "SELECT gross_minor, fees_minor, net_minor FROM creator_daily WHERE creator_id = 'NG-C0001'"
    with open_store(settings, "NG", read_only=True) as con:
        assert con.execute(query).fetchall() == [(30050 + 10000 + 10000, 50 + 50, 30050 + 9950 + 9950)]
        (quarantined,) = con.execute("SELECT transaction_id FROM quarantine").fetchall()
    assert quarantined == ("ps_000004",)  # a customer's share above the whole fee: the fee is unreadable


def test_a_refund_as_paystack_sends_it_is_quarantined(settings: Settings) -> None:
    """Paystack's refund events carry no time and no `metadata` (its documented `refund.processed` and
    `refund.needs-attention`): each is quarantined for a steward, naming what is missing, never loaded at a made-up
    time and never dropped. The creator and product are not among what is missing: they are the refunded sale's."""
    from kanda.regional.store import open_store

    customer = {"first_name": "Damilola", "last_name": "Kwabena", "email": "damilola@email.com"}
    refund = {"status": "processed", "transaction_reference": "ps_000001", "refund_reference": "132013318360",
              "amount": "5000", "currency": "NGN", "processor": "mpgs_zen", "customer": customer,
              "integration": 412829, "domain": "live"}  # fmt: skip
    attention = refund | {"status": "needs-attention", "refund_reference": "TRF_7jn17u9vkqm91efk", "amount": 5306}
    lines = [
        paystack_event(1),
        {"event": "refund.processed", "data": refund},
        {"event": "refund.needs-attention", "data": attention},
    ]
    path = settings.home / "webhooks.ndjson"
    report = ingest_written(settings, "NG", path, "".join(json.dumps(x) + "\n" for x in lines))
    assert (report.loaded, report.quarantined, report.ignored) == (1, 2, 0), report
    with open_store(settings, "NG", read_only=True) as con:
        rows = con.execute("SELECT source_row, reasons FROM quarantine ORDER BY source_row").fetchall()
    columns = {row: {r["column"] for r in json.loads(reasons)} for row, reasons in rows}
    assert columns[2] == {"occurred_at"} and columns[3] == {"occurred_at", "status"}


def dispute(n: int, event: str, resolution: str | None, refund_amount: int, **extra: object) -> dict:
    """A Paystack dispute webhook in the shape of Paystack's own sample (doc-code-snippets
    src/doc/payments/webhooks/events/charge-dispute-*.json): the disputed charge is `data.transaction`, whose
    `metadata` is "" there, and a resolved dispute's charge is `reversed`."""
    resolved = event == "charge.dispute.resolve"
    transaction = paystack_event(n, status="reversed" if resolved else "success", metadata="")["data"]
    data = {"id": 358900 + n, "refund_amount": refund_amount, "currency": "NGN",
            "status": "resolved" if resolved else "awaiting-merchant-feedback", "resolution": resolution,
            "domain": "live", "transaction": transaction, "transaction_reference": None, "category": "chargeback",
            "customer": {"email": "buyer@mail.example"}, "dueAt": "2025-06-06T18:00:00.000Z",
            "resolvedAt": "2025-06-06T14:00:02.000Z" if resolved else None,
            "created_at": "2025-06-06T09:46:57.000Z", "updated_at": "2025-06-06T15:30:00.000Z"}  # fmt: skip
    return {"event": event, "data": data | extra}


def test_a_dispute_lost_is_quarantined_for_a_steward_and_one_won_is_ignored(settings: Settings) -> None:
    """A dispute resolved against the merchant (`auto-accepted` when they do not answer in time, or
    `merchant-accepted`) takes `refund_amount` back from their payouts to the customer. It was ignored: the sale
    stayed counted whole and nothing flagged the money gone. Paystack documents no refund event that must follow it
    (its dispute sample's charge is `reversed`; refund objects may name a `dispute`), so it is neither dropped nor
    booked (a refund event for the same money would take it back twice): it is quarantined as the payment's reversal
    of `refund_amount` at `resolvedAt`, its status for a steward to give once no refund books the same money. A
    dispute opened, reminded of or declined moved no money: ignored (counted)."""
    from kanda.regional.store import open_store

    lines = [
        paystack_event(1),
        paystack_event(2),
        paystack_event(3),
        dispute(1, "charge.dispute.create", None, 500000),
        dispute(1, "charge.dispute.remind", None, 500000),
        dispute(1, "charge.dispute.resolve", "auto-accepted", 500000),  # Paystack's sample resolution
        dispute(2, "charge.dispute.resolve", "merchant-accepted", 120000),  # a partial one
        dispute(3, "charge.dispute.resolve", "declined", 500000),  # the merchant kept the money
    ]
    path = settings.home / "webhooks.ndjson"
    report = ingest_written(settings, "NG", path, "".join(json.dumps(x) + "\n" for x in lines))
    assert (report.loaded, report.quarantined, report.ignored) == (3, 2, 3), report
    with open_store(settings, "NG", read_only=True) as con:
        rows = con.execute("SELECT transaction_id, parsed, reasons FROM quarantine ORDER BY 1").fetchall()
    assert [txn for txn, _, _ in rows] == ["ps_000001", "ps_000002"]
    for (_, parsed, reasons), amount in zip(rows, (-500000, -120000), strict=True):
        event = json.loads(parsed)
        assert (event["event_type"], event["amount_minor"], event["fee_minor"]) == ("reversal", amount, 0)
        assert (event["creator_id"], event["product_id"]) == ("NG-C0001", "NG-P00001")  # the disputed sale's
        assert event["occurred_at"] == "2025-06-06T14:00:02+00:00"  # resolvedAt
        assert [(r["rule"], r["column"]) for r in json.loads(reasons)] == [("missing_or_unreadable", "status")]


def test_a_successful_charge_whose_fees_are_null_is_quarantined_not_loaded_with_no_fee(settings: Settings) -> None:
    """Paystack states its fee on a successful charge, but its own documented payloads send `"fees": null` there too
    (the `charge.success` webhook sample and the USSD one in PaystackOSS/doc-code-snippets, on NGN 100 and NGN 1,500
    card and USSD payments that Paystack charges a fee on). Read as 0, such a sale loaded with no fee and the creator's
    net showed the whole price: a plausible wrong figure nothing flagged. It is quarantined for its fee now (a steward
    reads the fee off the dashboard); a pending charge's null fee is still 0 (no fee is taken before payment), and
    a stated fee of 0 is a fee of 0."""
    from kanda.regional.store import open_store

    lines = [
        paystack_event(1, fees=None),  # a success without its fee
        paystack_event(2, fees=""),  # the same, as an empty string
        paystack_event(3, event="charge.pending", status="pending", fees=None),
        paystack_event(4, fees=0),  # a stated 0
        paystack_event(5),  # a stated fee
    ]
    path = settings.home / "webhooks.ndjson"
    report = ingest_written(settings, "NG", path, "".join(json.dumps(x) + "\n" for x in lines))
    assert (report.loaded, report.quarantined) == (3, 2), report
    with open_store(settings, "NG", read_only=True) as con:
        loaded = con.execute("SELECT transaction_id, status, fee_minor FROM sale_events ORDER BY 1").fetchall()
        rows = con.execute("SELECT transaction_id, reasons FROM quarantine ORDER BY 1").fetchall()
    assert loaded == [("ps_000003", "pending", 0), ("ps_000004", "success", 0), ("ps_000005", "success", 7500)]
    reasons = {txn: {(r["rule"], r["column"]) for r in json.loads(why)} for txn, why in rows}
    assert reasons == {txn: {("missing_or_unreadable", "fee_minor")} for txn in ("ps_000001", "ps_000002")}


def test_a_buyers_contact_in_the_channel_field_is_quarantined_never_published(settings: Settings) -> None:
    """`channel` is the rail's own field, published as it is in `rollups.channel_daily`: a buyer's e-mail address
    or phone number there (a relayed webhook, a shifted export) would leave the region. Such a row is quarantined,
    naming the channel rule; real channel names, in any case, load."""
    from kanda.central.publish import publish_region
    from kanda.central.query import run_query
    from kanda.regional.store import open_store

    lines = [
        paystack_event(1, channel="card"),
        paystack_event(2, channel="Bank_Transfer"),
        paystack_event(3, channel="mobile money"),
        paystack_event(4, channel="Jane.Doe@Example.com"),
        paystack_event(5, channel="+2348031234567"),
        paystack_event(6, channel="08031234567"),
    ]
    path = settings.home / "webhooks.ndjson"
    report = ingest_written(settings, "NG", path, "".join(json.dumps(x) + "\n" for x in lines))
    assert (report.loaded, report.quarantined) == (3, 3), report
    with open_store(settings, "NG", read_only=True) as con:
        rows = con.execute("SELECT source_row, reasons FROM quarantine ORDER BY source_row").fetchall()
    assert [r for r, _ in rows] == [4, 5, 6]
    broken = [{(x["column"], x["rule"]) for x in json.loads(reasons)} for _, reasons in rows]
    assert broken == [{("channel", "str_matches")}] * 3

    publish_region(settings, "NG")
    published = run_query(settings, "SELECT DISTINCT channel FROM rollups.channel_daily ORDER BY 1").to_pylist()
    assert [r["channel"] for r in published] == ["bank_transfer", "card", "mobile money"]
