"""A store loaded by an older kanda, whose Paystack spec booked a reversal's repeated fee a second time, is corrected
the first time a writer opens it, once, and the corrected days are rebuilt and marked for publishing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from kanda.checks.store_checks import ledger_chain, ledger_money
from kanda.regional import ledger
from kanda.regional.ingest import ingest_files
from kanda.regional.models import build_models, ensure_built
from kanda.regional.schema import sale_events_ddl
from kanda.regional.store import SCHEMA_SQL, open_store
from kanda.settings import Settings
from quality.contract import EVENT_ID_SQL
from regions import get_region
from regions.corrections import repeats_a_sale_fee
from regions.synthetic.core import make_registry
from tests.support.builders import paystack_event

SAMPLE = Path(__file__).parents[2] / "regions" / "rails" / "paystack" / "samples" / "webhooks.ndjson"
#: The sample's reversed charge (its sale added here): sold for 80,000 kobo with a 1,200 fee on 2025-02-10, reversed on
#: 2025-02-12.
REVERSED, SALE_FEE = "PSK-0005", 1_200
SALE_DAY, REVERSAL_DAY = dt.date(2025, 2, 10), dt.date(2025, 2, 12)
#: The reversed payment's sale, which the sample leaves to an earlier file.
SALE = paystack_event(
    5,
    reference=REVERSED,
    amount=80_000,
    fees=SALE_FEE,
    paid_at="2025-02-10T14:00:00.000Z",
    metadata={"kanda_ref": "NG-C0005.NG-P00017"},
)


@contextmanager
def as_an_older_kanda_left_it(
    settings: Settings, region: str, upgrade: str, *, published: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The region's store opened as a plain DuckDB file (no upgrade runs) with `upgrade` not yet applied, for the
    test to rewrite rows as an older kanda stored them; on leaving, the models are built and, when `published`, no
    day waits to be published, as that kanda left its store."""
    with duckdb.connect(str(settings.store_path(region))) as con:
        con.execute("DELETE FROM store_upgrades WHERE name = ?", [upgrade])
        yield con
        sealed_as_loaded(con)
        build_models(con)
        if published:
            con.execute("DELETE FROM dirty_days")


def sealed_as_loaded(con: duckdb.DuckDBPyConnection, *, money: bool = True) -> None:
    """The ledger as the older kanda wrote it for the rows the test rewrote: each batch's money (`batch_money`) what
    its events held as that kanda stored them, hashed into the chain with the ledger's own hash function. Without
    `money`, as a kanda from before the ledger recorded money left it: no `batch_money`, rows hashed without."""
    rows = con.execute(
        "SELECT seq, batch_id, region, kind, file_name, content_hash, rows_read, ignored, rows_in, loaded,"
        " quarantined, duplicates, started_at, finished_at FROM ledger ORDER BY seq"
    ).fetchall()
    con.execute("DROP TABLE batch_money")
    if money:
        con.execute(SCHEMA_SQL)
    prev = ledger.GENESIS
    for seq, batch_id, region, kind, file_name, content_hash, *counts, started, finished in rows:
        held = ledger.batch_money(con, batch_id).get(batch_id) or ledger.BatchMoney.empty(batch_id)
        entry = ledger.LedgerEntry(
            batch_id, region, kind, file_name, content_hash, ledger.BatchCounts(*counts), started, finished,
            [held] if money else None,
        )  # fmt: skip
        if money:
            con.execute(
                "INSERT INTO batch_money VALUES (?, ?, ?, ?, ?, ?, ?)",
                [seq, batch_id, held.events, held.amount_minor, held.fee_minor, held.net_minor, held.digest],
            )
        row_hash = ledger._row_hash(prev, seq, entry)
        con.execute("UPDATE ledger SET prev_hash = ?, row_hash = ? WHERE seq = ?", [prev, row_hash, seq])
        prev = row_hash


def assert_money_kept(settings: Settings, region: str) -> None:
    """`kanda verify`'s ledger checks pass after the upgrade: the chain holds, and every batch's events hold the
    money the ledger recorded, restated where the upgrade changed them."""
    with open_store(settings, region, read_only=True) as con:
        for check in (ledger_chain(con, get_region(region)), ledger_money(con, get_region(region))):
            assert check.passed, check.message
        assert ledger_money(con, get_region(region)).metadata["unchecked"] == 0


def older_store(settings: Settings, tmp_path: Path) -> tuple[str, int]:
    """The NG store as the older spec left it: the reversal carries the sale's fee, a quarantined refund's parsed
    fields carry a fee too, the models were built and every day was published (none waits). Returns that
    quarantine id and the fees the built rollups hold for the reversal's day."""
    make_registry(seed=11).write(settings.registry_dir)  # the sample's creators are onboarded
    landed = tmp_path / "webhooks.ndjson"
    shutil.copy(SAMPLE, landed)
    with landed.open("a") as out:
        out.write(json.dumps(SALE) + "\n")
    (result,) = ingest_files(settings, "NG", [landed]).files
    assert result.status == "loaded", result.reason
    with duckdb.connect(str(settings.store_path("NG"))) as con:  # as the older kanda, which had no upgrades
        con.execute("DROP TABLE store_upgrades")
        con.execute(
            "UPDATE sale_events SET fee_minor = ?, net_minor = amount_minor - ?"
            " WHERE transaction_id = ? AND event_type = 'reversal'",
            [SALE_FEE, SALE_FEE, REVERSED],
        )
        (qid,) = con.execute("SELECT min(quarantine_id) FROM quarantine").fetchall()[0]
        con.execute(
            "UPDATE quarantine SET parsed = json_merge_patch(parsed, ?) WHERE quarantine_id = ?",
            [
                json.dumps({"event_type": "refund", "amount_minor": -40_000, "fee_minor": 600, "net_minor": -40_600}),
                qid,
            ],
        )
        build_models(con)
        con.execute("DELETE FROM dirty_days")
        fees = _reversal_day_fees(con)
        sales_fees = con.execute(
            "SELECT sum(fee_minor) FROM sale_events"
            " WHERE local_date = ? AND event_type = 'sale' AND status = 'success'",
            [REVERSAL_DAY],
        ).fetchall()[0][0]
        assert fees == sales_fees + SALE_FEE  # the repeated fee is in the built rollups
        con.execute("DROP TABLE batch_rails")  # kept since: which rails stated fees, per batch
        _without_event_ref(con)  # added since: a payment's second refund is an event of its own
        sealed_as_loaded(con, money=False)  # recorded since: each batch's money, hashed into the ledger
    return qid, fees


#: `event_id` before `event_ref`: one event per payment, type and status.
OLDER_EVENT_ID = "transaction_id || ':' || event_type || ':' || status"


def _without_event_ref(con: duckdb.DuckDBPyConnection) -> None:
    """`sale_events` as an older kanda made it: no `event_ref`, and the event id of its three parts."""
    con.execute("ALTER TABLE sale_events RENAME TO newer_sale_events")
    older = sale_events_ddl().replace("    event_ref BIGINT NOT NULL,\n", "").replace(EVENT_ID_SQL, OLDER_EVENT_ID)
    assert "event_ref" not in older
    con.execute(older)
    con.execute("INSERT INTO sale_events BY NAME SELECT * EXCLUDE (event_id, event_ref) FROM newer_sale_events")
    con.execute("DROP TABLE newer_sale_events")


def _reversal_day_fees(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT fees_minor FROM region_daily WHERE local_date = ?", [REVERSAL_DAY]).fetchall()[0][0]


def test_a_repeated_fee_in_an_older_store_is_corrected_once_and_its_days_republished(
    settings: Settings, tmp_path: Path
):
    qid, fees_before = older_store(settings, tmp_path)

    with open_store(settings, "NG") as con:
        reversal = con.execute(
            "SELECT amount_minor, fee_minor, net_minor FROM sale_events WHERE transaction_id = ?"
            " AND event_type = 'reversal'",
            [REVERSED],
        ).fetchall()
        assert reversal == [(-80_000, 0, -80_000)]
        sale = con.execute(
            "SELECT fee_minor FROM sale_events WHERE transaction_id = ? AND event_type = 'sale'", [REVERSED]
        ).fetchall()
        assert sale == [(SALE_FEE,)]  # the sale keeps its fee
        parsed = json.loads(con.execute("SELECT parsed FROM quarantine WHERE quarantine_id = ?", [qid]).fetchone()[0])
        assert (parsed["fee_minor"], parsed["net_minor"]) == (0, -40_000)
        assert con.execute("SELECT name, rows_changed FROM store_upgrades").fetchall() == [
            ("sale_only_fees", 2),
            ("batch_rails", 1),
            ("event_refs", 1),  # the sample's refund (a payment is reversed at most once: its reversal keeps 0)
            ("yoco_event_times", 0),  # no Yoco rows in Nigeria's store
            ("mtn_request_keys", 0),
            ("flutterwave_borne_fees", 0),
            ("quarantine_days_by_arrival", 0),
            ("razorpay_refund_ids", 0),  # no Razorpay refunds in Nigeria's store
            ("gumroad_affiliate_commissions", 0),
            ("bkash_refund_ids", 0),  # no bKash refunds in Nigeria's store
            ("flutterwave_sale_only_fees", 0),  # no Flutterwave rows in Nigeria's store
            ("momo_export_refund_ids", 0),  # no MoMo export refunds in Nigeria's store
            ("yoco_refund_ids", 0),  # no Yoco refunds in Nigeria's store
            ("chapa_money_back_times", 0),  # no Chapa rows in Nigeria's store
            ("gumroad_processor_fees", 0),  # no Gumroad rows in Nigeria's store
            ("batch_money", 1),  # the one batch's money, as corrected
        ]
        # a sale or a reversal keeps its id; a refund is told apart by its minute, as a reader now tells it
        refs = con.execute(
            "SELECT event_type, event_ref = CASE WHEN event_type = 'refund' THEN epoch_us(occurred_at) // 60000000"
            " ELSE 0 END,"
            " event_id = transaction_id || ':' || event_type || ':' || status"
            "   || CASE WHEN event_type = 'refund' THEN ':' || (epoch_us(occurred_at) // 60000000) ELSE '' END"
            " FROM sale_events"
        ).fetchall()
        assert {kind for kind, _, _ in refs} >= {"sale", "reversal", "refund"} and all(ok and s for _, ok, s in refs)
        # the batch loaded before `batch_rails` takes its rail's answer as its reader gives it now
        assert con.execute("SELECT source, fees_stated FROM batch_rails").fetchall() == [("paystack_webhook", True)]
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert {SALE_DAY, REVERSAL_DAY} <= dirty  # every day of the payment goes out again
        # the build is not taken for current any more: it is redone, and the rollups lose the second fee
        build = ensure_built(con)
        assert build.built and build.full
        assert _reversal_day_fees(con) == fees_before - SALE_FEE

    with open_store(settings, "NG") as con:  # once: a second open changes nothing and records nothing
        assert con.execute("SELECT count(*) FROM store_upgrades").fetchall() == [(16,)]
        assert not ensure_built(con).built
    assert_money_kept(settings, "NG")


def test_only_money_going_back_on_the_corrected_rails_counts_as_a_repeated_fee():
    assert repeats_a_sale_fee("paystack_webhook", "reversal", 1_200)
    assert repeats_a_sale_fee("chapa", "refund", 50)
    assert repeats_a_sale_fee("flutterwave", "reversal", 175)
    assert not repeats_a_sale_fee("paystack_webhook", "sale", 1_200)
    assert not repeats_a_sale_fee("paystack_webhook", "refund", 0)
    assert not repeats_a_sale_fee("razorpay_webhook", "refund", 300)  # Razorpay's refunds never repeated it
    assert not repeats_a_sale_fee("chapa", None, 50)


def test_a_reader_first_to_open_an_older_store_finds_it_upgraded(settings: Settings, tmp_path: Path):
    """A read-only open (`kanda expectations`, `kanda status`) right after kanda was upgraded sees the tables and
    corrections every query expects, not the older store's shape."""
    older_store(settings, tmp_path)
    with open_store(settings, "NG", read_only=True) as con:
        assert [name for (name,) in con.execute("SELECT name FROM store_upgrades").fetchall()] == [
            "sale_only_fees",
            "batch_rails",
            "event_refs",
            "yoco_event_times",
            "mtn_request_keys",
            "flutterwave_borne_fees",
            "quarantine_days_by_arrival",
            "razorpay_refund_ids",
            "gumroad_affiliate_commissions",
            "bkash_refund_ids",
            "flutterwave_sale_only_fees",
            "momo_export_refund_ids",
            "yoco_refund_ids",
            "chapa_money_back_times",
            "gumroad_processor_fees",
            "batch_money",
        ]
        assert con.execute("SELECT source, fees_stated FROM batch_rails").fetchall() == [("paystack_webhook", True)]
        reversal = "SELECT fee_minor FROM sale_events WHERE transaction_id = ? AND event_type = 'reversal'"
        assert con.execute(reversal, [REVERSED]).fetchall() == [(0,)]
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            con.execute("DELETE FROM dirty_days")  # still a reader


def test_yoco_events_an_older_spec_timed_by_the_payload_move_to_the_events_time(settings: Settings, tmp_path: Path):
    """An older Yoco spec read the payload's `createdDate`, South African wall time marked `Z`, as UTC: every event
    two hours late, a sale after 22:00 on the next local day, and a refund's minute two hours off, so the same
    refund delivered again after the fix would load a second time. The first writer to open the store moves them
    (and a quarantined row's parsed fields), marks both days changed, and the redelivery is a duplicate."""
    from tests.support.files import make_files

    make_files(settings, regions=["ZA"], rows=50)
    sale_at, refund_at = "2026-10-05T20:30:01Z", "2026-10-06T08:00:01Z"
    events = [
        {"createdDate": sale_at, "id": "evt_1", "type": "payment.succeeded", "payload": {"amount": 900,
         "currency": "ZAR", "metadata": {"checkoutId": "ch_y1", "kanda_ref": "ZA-C0001.ZA-P00001"}}},
        {"createdDate": refund_at, "id": "evt_2", "type": "refund.succeeded", "payload": {"amount": 900,
         "currency": "ZAR", "metadata": {"checkoutId": "ch_y1", "kanda_ref": "ZA-C0001.ZA-P00001"}}},
        {"createdDate": sale_at, "id": "evt_3", "type": "payment.succeeded", "payload": {"amount": "9.00",
         "currency": "ZAR", "metadata": {"checkoutId": "ch_y2", "kanda_ref": "ZA-C0001.ZA-P00001"}}},
    ]  # fmt: skip
    landed = tmp_path / "webhooks.ndjson"
    landed.write_text("".join(json.dumps(e) + "\n" for e in events))
    (result,) = ingest_files(settings, "ZA", [landed]).files
    assert (result.loaded, result.quarantined) == (2, 1), result
    late = "occurred_at + INTERVAL 2 HOUR"
    with duckdb.connect(str(settings.store_path("ZA"))) as con:  # as the older spec stored them: two hours late
        con.execute("DELETE FROM store_upgrades WHERE name = 'yoco_event_times'")
        con.execute(
            f"UPDATE sale_events SET occurred_at = {late}, local_date = CAST(timezone('Africa/Johannesburg', {late})"
            " AS DATE), event_ref = CASE WHEN event_ref <> 0 THEN event_ref + 120 ELSE 0 END"
        )
        (qid, parsed) = con.execute("SELECT quarantine_id, parsed FROM quarantine").fetchone()
        older = {**json.loads(parsed), "occurred_at": "2026-10-05T22:30:01+00:00", "local_date": "2026-10-06"}
        con.execute("UPDATE quarantine SET parsed = ?, local_date = '2026-10-06'", [json.dumps(older)])
        sealed_as_loaded(con)
        build_models(con)
        con.execute("DELETE FROM dirty_days")
        assert con.execute("SELECT local_date FROM sale_events WHERE event_type = 'sale'").fetchall() == [
            (dt.date(2026, 10, 6),)
        ]
    with open_store(settings, "ZA") as con:
        stored = con.execute("SELECT event_type, occurred_at, local_date FROM sale_events ORDER BY 1 DESC").fetchall()
        assert [(kind, when.astimezone(dt.UTC), day) for kind, when, day in stored] == [
            ("sale", dt.datetime(2026, 10, 5, 20, 30, 1, tzinfo=dt.UTC), dt.date(2026, 10, 5)),
            ("refund", dt.datetime(2026, 10, 6, 8, 0, 1, tzinfo=dt.UTC), dt.date(2026, 10, 6)),
        ]
        parsed = json.loads(con.execute("SELECT parsed FROM quarantine WHERE quarantine_id = ?", [qid]).fetchone()[0])
        assert (parsed["occurred_at"][:19], parsed["local_date"]) == ("2026-10-05T20:30:01", "2026-10-05")
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert {dt.date(2026, 10, 5), dt.date(2026, 10, 6)} <= dirty
    assert_money_kept(settings, "ZA")
    redelivered = tmp_path / "again.ndjson"
    redelivered.write_text(json.dumps(events[1]) + "\n")
    (again,) = ingest_files(settings, "ZA", [redelivered]).files
    assert (again.loaded, again.duplicates) == (0, 1), again


def mtn(reference: str, order: str, kind: str, status: str, polled_at: str, **more: str) -> dict:
    """One MTN MoMo Collection record of Benin (XOF) as our poller logs it."""
    return {"referenceId": reference, "kind": kind, "externalId": order, "amount": "5000", "currency": "XOF",
            "payeeNote": "kanda BJ-C0001/BJ-P00001", "status": status, "polled_at": polled_at, **more}  # fmt: skip


def test_mtn_records_an_older_spec_keyed_by_order_are_keyed_by_request_from_the_archived_file(
    settings: Settings, tmp_path: Path
):
    """An older MTN spec keyed every record by `externalId` (the order), which a retried push repeats. Re-keyed by
    request only in new files, a record of an older store delivered again would load beside its old self: the sale
    counted twice. The first writer to open the store reads each file again from `processed/` and keys its events
    as the fixed spec does; a refund an older poller logged without `referenceIdToRefund` takes its order's one
    request, and a quarantined row's key is read from its raw record."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["BJ"], rows=20)
    records = [
        mtn("req-a", "ORD-1", "requesttopay", "SUCCESSFUL", "2026-10-05T09:00:00Z"),
        mtn("req-b", "ORD-2", "requesttopay", "SUCCESSFUL", "2026-10-05T09:30:00Z"),
        mtn("ref-1", "ORD-1", "refund", "SUCCESSFUL", "2026-10-06T10:00:00Z"),  # names no request: quarantined now
        {**mtn("req-c", "ORD-3", "requesttopay", "SUCCESSFUL", "2026-10-05T11:00:00Z"), "currency": "GHS"},
    ]
    landed = settings.landing("BJ") / "momo_poll.ndjson"
    landed.write_text("".join(json.dumps(r) + "\n" for r in records))
    ingest_landing(settings, "BJ")
    assert (settings.landing("BJ") / "processed" / "momo_poll.ndjson").is_file()
    ours = "source_file = 'momo_poll.ndjson'"
    # as the older spec stored them: by order
    with as_an_older_kanda_left_it(settings, "BJ", "mtn_request_keys") as con:
        con.execute(f"UPDATE sale_events SET transaction_id = 'ORD-' || (source_row::VARCHAR) WHERE {ours}")
        # the refund loaded then, keyed by its order
        con.execute(
            "INSERT INTO sale_events BY NAME SELECT * EXCLUDE (event_id) REPLACE ('refund' AS event_type,"
            " 3 AS source_row, -amount_minor AS amount_minor, -amount_minor AS net_minor, 0 AS fee_minor,"
            " 29333940 AS event_ref, occurred_at + INTERVAL 25 HOUR AS occurred_at, DATE '2026-10-06' AS local_date)"
            " FROM sale_events"
            f" WHERE {ours} AND transaction_id = 'ORD-1'"
        )
        con.execute(f"DELETE FROM quarantine WHERE {ours} AND source_row = 3")
        (qid, parsed) = con.execute(f"SELECT quarantine_id, parsed FROM quarantine WHERE {ours}").fetchone()
        older = json.dumps({**json.loads(parsed), "transaction_id": "ORD-3"})
        con.execute("UPDATE quarantine SET transaction_id = 'ORD-3', parsed = ? WHERE quarantine_id = ?", [older, qid])
    with open_store(settings, "BJ") as con:
        stored = con.execute(
            f"SELECT source_row, event_type, transaction_id FROM sale_events WHERE {ours} ORDER BY source_row"
        ).fetchall()
        assert stored == [(1, "sale", "req-a"), (2, "sale", "req-b"), (3, "refund", "req-a")]
        row = con.execute("SELECT transaction_id, parsed FROM quarantine WHERE quarantine_id = ?", [qid]).fetchone()
        assert (row[0], json.loads(row[1])["transaction_id"]) == ("req-c", "req-c")
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert {dt.date(2026, 10, 5), dt.date(2026, 10, 6)} <= dirty
        assert con.execute("SELECT rows_changed FROM store_upgrades WHERE name = 'mtn_request_keys'").fetchall() == [
            (4,)
        ]
    assert_money_kept(settings, "BJ")
    again = tmp_path / "again.ndjson"
    again.write_text(json.dumps(records[0]) + "\n")
    (redelivered,) = ingest_files(settings, "BJ", [again]).files
    assert (redelivered.loaded, redelivered.duplicates) == (0, 1), redelivered


def test_flutterwave_sales_an_older_spec_charged_the_customers_fee_to_are_corrected_from_the_archived_file(
    settings: Settings,
):
    """Where the customer bore Flutterwave's fee (`charged_amount` = amount + fee), an older spec booked the whole
    `app_fee` as the seller's: the net short by the fee. The first writer to open the store reads the archived
    file again and books the fee the rail reads now; a sale the seller bore the fee of keeps it."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["CM"], rows=20)
    data = {"currency": "XAF", "app_fee": 175, "merchant_fee": 0, "status": "successful", "payment_type": "card",
            "created_at": "2026-10-05T09:00:00.000Z", "customer": {"email": "b@mail.example"}}  # fmt: skip
    lines = [
        {"event": "charge.completed", "data": {**data, "id": 91, "amount": 5000, "charged_amount": 5175}},
        {"event": "charge.completed", "data": {**data, "id": 92, "amount": 5000, "charged_amount": 5000}},
    ]
    landed = settings.landing("CM") / "hooks.ndjson"
    landed.write_text(
        "".join(json.dumps({**x, "meta_data": {"kanda_ref": "CM-C0001.CM-P00001"}}) + "\n" for x in lines)
    )
    ingest_landing(settings, "CM")
    ours = "source_file = 'hooks.ndjson'"
    # as the older spec booked them: the whole app_fee
    with as_an_older_kanda_left_it(settings, "CM", "flutterwave_borne_fees") as con:
        con.execute(f"UPDATE sale_events SET fee_minor = 175, net_minor = amount_minor - 175 WHERE {ours}")
    with open_store(settings, "CM") as con:
        fees = f"SELECT transaction_id, fee_minor, net_minor FROM sale_events WHERE {ours} ORDER BY 1"
        assert con.execute(fees).fetchall() == [("91", 0, 5000), ("92", 175, 4825)]
        assert con.execute("SELECT local_date FROM dirty_days").fetchall() == [(dt.date(2026, 10, 5),)]
        assert ensure_built(con).built
    assert_money_kept(settings, "CM")


def test_flutterwave_money_going_back_an_older_spec_booked_the_charges_fee_on_is_corrected_once(settings: Settings):
    """An older Flutterwave spec read `app_fee` on refunds and lost chargebacks too, which our receiver builds from
    the charge and so can repeat its fee: the creator's net lost the fee twice. A store that had its `sale_only_fees`
    correction before Flutterwave was among those rails gets one of its own: the refund's fee is 0, the sale keeps
    its fee, and both days are rebuilt and republished."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["CM"], rows=20)
    data = {"id": 93, "amount": 5000, "charged_amount": 5000, "app_fee": 175, "currency": "XAF",
            "status": "successful", "payment_type": "card", "customer": {"email": "b@mail.example"}}  # fmt: skip
    lines = [
        {"event": "charge.completed", "data": {**data, "created_at": "2026-10-05T09:00:00.000Z"}},
        {"event": "refund.completed", "data": {**data, "created_at": "2026-10-06T09:00:00.000Z"}},
    ]
    landed = settings.landing("CM") / "hooks.ndjson"
    landed.write_text(
        "".join(json.dumps({**x, "meta_data": {"kanda_ref": "CM-C0001.CM-P00001"}}) + "\n" for x in lines)
    )
    ingest_landing(settings, "CM")
    ours = "source_file = 'hooks.ndjson'"
    # as the older spec booked it: the fee again
    with as_an_older_kanda_left_it(settings, "CM", "flutterwave_sale_only_fees") as con:
        con.execute(f"UPDATE sale_events SET fee_minor = 175, net_minor = amount_minor - 175 WHERE {ours}")
    with open_store(settings, "CM") as con:
        fees = f"SELECT event_type, fee_minor, net_minor FROM sale_events WHERE {ours} ORDER BY occurred_at"
        assert con.execute(fees).fetchall() == [("sale", 175, 4825), ("refund", 0, -5000)]
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert dirty == {dt.date(2026, 10, 5), dt.date(2026, 10, 6)}
        assert ensure_built(con).built
        assert con.execute(
            "SELECT rows_changed FROM store_upgrades WHERE name = 'flutterwave_sale_only_fees'"
        ).fetchall() == [(1,)]
    assert_money_kept(settings, "CM")


@pytest.mark.parametrize(
    ("upgrade", "extra_head", "with_cost", "without_cost"),
    [
        # the affiliate's commission, TZS 2,000.00
        pytest.param("gumroad_affiliate_commissions", "Affiliate commission (TZS)", "2000.0", "", id="commission"),
        # a Stripe Connect sale's processor fee, TZS 2,000.00
        pytest.param(
            "gumroad_processor_fees", "Stripe Fee Amount,Stripe Fee Currency", "2000.0,TZS", ",", id="processor_fee"
        ),
    ],
)
def test_gumroad_sales_an_older_spec_left_a_cost_out_of_are_corrected_from_the_archived_file(
    settings: Settings, upgrade: str, extra_head: str, with_cost: str, without_cost: str
):
    """Gumroad credits the seller the Sale Price less Fees less the affiliate's commission, and a sale paid into the
    seller's own Stripe or PayPal account also cost them the processor's fee, which `Fees` leaves out; older specs
    took Fees alone, so the creator's net was that cost too high. The first writer to open the store reads the
    archived file again and books the cost as part of the fee; a sale without one keeps what it had."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["TZ"], rows=20)
    head = (
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),"
        f"Net Total (TZS),{extra_head}"
    )
    item, when = "[TZ-C0001.TZ-P00001] Course", "2026-10-05,2026-10-05 09:00:00 UTC"
    landed = settings.landing("TZ") / "sales.csv"
    sale = f"{item},{when},20000.0,300.0,19700.0"
    landed.write_text(f"{head}\nCOST1,{sale},{with_cost}\nNOCOST1,{sale},{without_cost}\n")
    ingest_landing(settings, "TZ")
    ours = "source_file = 'sales.csv'"
    # as the older spec booked them: Fees only
    with as_an_older_kanda_left_it(settings, "TZ", upgrade) as con:
        con.execute(f"UPDATE sale_events SET fee_minor = 30000, net_minor = amount_minor - 30000 WHERE {ours}")
    with open_store(settings, "TZ") as con:
        fees = f"SELECT transaction_id, fee_minor, net_minor FROM sale_events WHERE {ours} ORDER BY 1"
        assert con.execute(fees).fetchall() == [("COST1", 230_000, 1_770_000), ("NOCOST1", 30_000, 1_970_000)]
        assert con.execute("SELECT local_date FROM dirty_days").fetchall() == [(dt.date(2026, 10, 5),)]
        assert con.execute("SELECT rows_changed FROM store_upgrades WHERE name = ?", [upgrade]).fetchall() == [(1,)]
        assert ensure_built(con).built
    assert_money_kept(settings, "TZ")


@pytest.mark.parametrize(
    ("region", "upgrade", "sample", "lines"),
    [
        # INR 499.00 captured, then refunded
        pytest.param("IN", "razorpay_refund_ids", "razorpay_webhook/samples/webhooks_in.ndjson", (0, 4), id="razorpay"),
        # BDT 500.00 completed, then refunded (by its refundTrxID now)
        pytest.param("BD", "bkash_refund_ids", "bkash/samples/execute_bd.jsonl", (0, 7), id="bkash"),
        # ZAR 150.00 paid, then refunded (by its own refund id now)
        pytest.param("ZA", "yoco_refund_ids", "yoco/samples/webhooks_za.ndjson", (0, 4), id="yoco"),
    ],
)
def test_webhook_refunds_an_older_spec_told_apart_by_their_minute_are_keyed_by_their_id_from_the_archived_file(
    settings: Settings, region: str, upgrade: str, sample: str, lines: tuple[int, int]
):
    """An older spec told a payment's refunds apart by their minute; the spec keys them by the refund's own id now
    (Razorpay's `rfnd_...`, bKash's refundTrxID, Yoco's `rfd_...`). Left as stored, a refund of an older store
    delivered again would load beside its old self and take its money back twice. The first writer to open the
    store reads the archived file again and keys each stored refund as the spec does now, so the redelivery is a
    duplicate."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=[region], rows=20)
    records = (Path(__file__).parents[2] / "regions/rails" / sample).read_text().splitlines()
    sale, refund = records[lines[0]], records[lines[1]]
    suffix = Path(sample).suffix
    landed = settings.landing(region) / f"webhooks{suffix}"
    landed.write_text(f"{sale}\n{refund}\n")
    ingest_landing(settings, region)
    ours = f"source_file = '{landed.name}' AND event_type = 'refund'"
    # as the older spec keyed it: by its minute
    with as_an_older_kanda_left_it(settings, region, upgrade, published=False) as con:
        con.execute(f"UPDATE sale_events SET event_ref = epoch_us(occurred_at) // 60000000 WHERE {ours}")
    with open_store(settings, region) as con:
        changed = "SELECT rows_changed FROM store_upgrades WHERE name = ?"
        assert con.execute(changed, [upgrade]).fetchall() == [(1,)]
        assert con.execute(
            f"SELECT event_ref <> epoch_us(occurred_at) // 60000000 FROM sale_events WHERE {ours}"
        ).fetchall() == [(True,)]
    assert_money_kept(settings, region)
    again = settings.home / f"again{suffix}"
    again.write_text(refund + "\n")
    (redelivered,) = ingest_files(settings, region, [again]).files
    assert (redelivered.loaded, redelivered.duplicates) == (0, 1), redelivered


def test_momo_export_refunds_an_older_spec_told_apart_by_their_minute_are_keyed_by_their_transaction_id(
    settings: Settings, tmp_path: Path
):
    """As Razorpay's: a refund row of Ghana's MoMo export is keyed by its own Transaction Id now. Left keyed by the
    minute, the refund in the next (overlapping) export would load beside its old self and take its money back
    twice."""
    import xlsxwriter

    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["GH"], rows=20)
    header = ["Date", "Transaction Id", "Type", "Status", "Amount", "Currency", "External Id", "Payer Party Id",
              "Reference Transaction Id"]  # fmt: skip
    rows = [
        ["2025-02-11 10:00:00", "3600000401", "PAYMENT", "SUCCESSFUL", "100.00", "GHS", "GH-C0001.GH-P00001.x", "", ""],
        ["2025-02-12 09:00:00", "7200000401", "REFUND", "SUCCESSFUL", "40.00", "GHS", "GH-C0001.GH-P00001.x", "",
         "3600000401"],
    ]  # fmt: skip

    def workbook(path: Path, lines: list[list[str]]) -> Path:
        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        for index, cells in enumerate([header, *lines]):
            sheet.write_row(index, 0, cells)
        book.close()
        return path

    workbook(settings.landing("GH") / "export.xlsx", rows)
    ingest_landing(settings, "GH")
    ours = "source_file = 'export.xlsx' AND event_type = 'refund'"
    # as the older spec keyed it: by its minute
    with as_an_older_kanda_left_it(settings, "GH", "momo_export_refund_ids", published=False) as con:
        con.execute(f"UPDATE sale_events SET event_ref = epoch_us(occurred_at) // 60000000 WHERE {ours}")
    with open_store(settings, "GH") as con:
        assert con.execute(
            "SELECT rows_changed FROM store_upgrades WHERE name = 'momo_export_refund_ids'"
        ).fetchall() == [(1,)]
    assert_money_kept(settings, "GH")
    (redelivered,) = ingest_files(settings, "GH", [workbook(tmp_path / "overlap.xlsx", rows[1:])]).files
    assert (redelivered.loaded, redelivered.duplicates) == (0, 1), redelivered


def test_chapa_refunds_an_older_spec_dated_by_the_charge_move_to_when_the_transaction_changed(
    settings: Settings, tmp_path: Path
):
    """An older Chapa spec dated a refund by its document's `created_at`, which on a refund restating its transaction
    is the charge's: the refund sat on the sale's day, and under the charge's minute, so the same refund delivered
    again after the fix (dated by `updated_at`) would load a second time. The first writer to open the store reads
    the archived file again and moves the refund to its time and day; both days are changed, the redelivery is a
    duplicate."""
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["ET"], rows=20)
    records = (Path(__file__).parents[2] / "regions/rails/chapa/samples/webhooks_et.ndjson").read_text().splitlines()
    sale = json.loads(records[0])  # ETB 1,250.00 paid on 5 October (09:00 in Addis Ababa)
    refund = json.loads(records[4]) | {"created_at": sale["created_at"], "updated_at": "2026-10-07T09:00:00.000000Z"}
    landed = settings.landing("ET") / "webhooks.ndjson"
    landed.write_text(f"{json.dumps(sale)}\n{json.dumps(refund)}\n")
    ingest_landing(settings, "ET")
    ours = "source_file = 'webhooks.ndjson' AND event_type = 'refund'"
    charged = "TIMESTAMPTZ '2026-10-05 06:00:00+00'"
    # as the older spec dated it: at the charge's time, on the sale's day, under the charge's minute
    with as_an_older_kanda_left_it(settings, "ET", "chapa_money_back_times") as con:
        con.execute(
            f"UPDATE sale_events SET occurred_at = {charged}, local_date = DATE '2026-10-05',"
            f" event_ref = epoch_us({charged}) // 60000000 WHERE {ours}"
        )
    with open_store(settings, "ET") as con:
        changed = "SELECT rows_changed FROM store_upgrades WHERE name = 'chapa_money_back_times'"
        assert con.execute(changed).fetchall() == [(1,)]
        (when, day, fresh) = con.execute(
            f"SELECT occurred_at, local_date, event_ref = epoch_us(occurred_at) // 60000000 FROM sale_events"
            f" WHERE {ours}"
        ).fetchone()
        assert (when.astimezone(dt.UTC), day, fresh) == (
            dt.datetime(2026, 10, 7, 9, tzinfo=dt.UTC),
            dt.date(2026, 10, 7),
            True,
        )
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert {dt.date(2026, 10, 5), dt.date(2026, 10, 7)} <= dirty
        assert not con.execute("SELECT count(*) FROM model_builds").fetchone()[0]
    assert_money_kept(settings, "ET")
    again = tmp_path / "again.ndjson"
    again.write_text(json.dumps(refund) + "\n")
    (redelivered,) = ingest_files(settings, "ET", [again]).files
    assert (redelivered.loaded, redelivered.duplicates) == (0, 1), redelivered


def test_a_row_an_older_kanda_quarantined_for_its_time_moves_to_the_day_it_arrived(settings: Settings, tmp_path: Path):
    """An older kanda counted a row quarantined for its time on the day that time named (a 2014 typo): the first
    writer to open the store counts it on the day it arrived, and both days are built and published again."""
    from tests.support.files import ingest_written

    header = "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance"
    line = 'SBA3000001,2014-10-06 10:00:00,Pay Bill Online from 0712345678 Acc. KE-C0001.KE-P00001,Completed,"1.00",,0'
    report = ingest_written(settings, "KE", tmp_path / "typo.csv", f"{header}\n{line}\n")
    assert report.quarantined == 1, report
    # as the older kanda dated it
    with as_an_older_kanda_left_it(settings, "KE", "quarantine_days_by_arrival") as con:
        con.execute("UPDATE quarantine SET local_date = DATE '2014-10-06'")
    with open_store(settings, "KE") as con:
        (day, arrived) = con.execute(
            "SELECT local_date, CAST(timezone('Africa/Nairobi', quarantined_at) AS DATE) FROM quarantine"
        ).fetchone()
        assert day is None
        dirty = {d for (d,) in con.execute("SELECT local_date FROM dirty_days").fetchall()}
        assert dirty == {dt.date(2014, 10, 6), arrived}
    assert_money_kept(settings, "KE")


def test_an_archived_file_the_current_reader_refuses_leaves_its_events_and_the_store_opens(
    settings: Settings, tmp_path: Path
):
    """A correction that reads kept files again must not make the store unopenable: a file the current reader
    refuses (a rail tightened since) leaves its events as stored, and the upgrade is done."""
    from kanda.regional.archive import file_hash
    from kanda.regional.ingest import ingest_landing
    from tests.support.files import make_files

    make_files(settings, regions=["BJ"], rows=20)
    landed = settings.landing("BJ") / "momo_poll.ndjson"
    landed.write_text(json.dumps(mtn("req-a", "ORD-1", "requesttopay", "SUCCESSFUL", "2026-10-05T09:00:00Z")) + "\n")
    ingest_landing(settings, "BJ")
    kept = settings.landing("BJ") / "processed" / "momo_poll.ndjson"
    kept.write_text("this is not a JSON document\n")
    with duckdb.connect(str(settings.store_path("BJ"))) as con:  # as an older spec stored it, from a file so read
        con.execute("DELETE FROM store_upgrades WHERE name = 'mtn_request_keys'")
        con.execute("UPDATE sale_events SET transaction_id = 'ORD-1' WHERE source_file = 'momo_poll.ndjson'")
        con.execute("UPDATE ledger SET content_hash = ? WHERE file_name = 'momo_poll.ndjson'", [file_hash(kept)])
    with open_store(settings, "BJ") as con:
        stored = "SELECT transaction_id FROM sale_events WHERE source_file = 'momo_poll.ndjson'"
        assert con.execute(stored).fetchall() == [("ORD-1",)]
        assert con.execute("SELECT count(*) FROM store_upgrades WHERE name = 'mtn_request_keys'").fetchall() == [(1,)]
