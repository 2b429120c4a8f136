"""Corrections, once per store, to rows that an older kanda stored under a mapping rule fixed since, and records and
columns it did not keep yet (`batch_rails`, `event_ref`).

A rail's mapping fix changes what new files load, but a store keeps what older files loaded, and no file is read
twice (its content hash is in the ledger). Where the stored row itself shows what the fix would have given, the
row is corrected in place, once, when a writer next opens the store: the correction is recorded in
`store_upgrades` with the rows it changed, every day of every payment it touched is marked changed
(`dirty_days`), and the last build is forgotten (`model_builds`), because the build's store version (the ledger
head) does not move when rows change in place. The next region run then rebuilds the models whole and publishes
the days whose figures moved.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb
import polars as pl

from kanda.regional.archive import archived_copy
from kanda.regional.ledger import BatchMoney, batch_money, record_upgrade
from kanda.regional.schema import sale_events_ddl
from kanda.settings import Settings
from quality.contract import REFUND_MINUTE_SQL, REPEATABLE_EVENT, event_ref_expr, event_ref_value
from regions import all_regions, get_region
from regions.corrections import (
    FLUTTERWAVE_SOURCE,
    GUMROAD_SOURCE,
    MTN_SOURCE,
    SALE_ONLY_FEE_SOURCES,
    YOCO_PAYLOAD_AHEAD,
    YOCO_SOURCE,
    at_yoco_event_time,
    mtn_request_key,
)
from regions.rails import FileRejected, fees_by_rail, get_adapter, running_total_rails
from regions.rails.base import RAIL_REF, ReadContext

log = logging.getLogger(__name__)


#: A correction of a store's rows; `Settings` for what lies beside the store (the region's archived files).
Correction = Callable[[duckdb.DuckDBPyConnection, Settings], int]


@dataclass(frozen=True)
class StoreUpgrade:
    """One correction; `kanda.regional.store.open_store` runs each a store has not had, in a transaction of its own,
    and records it in `store_upgrades` with the rows `apply` says it changed."""

    name: str
    apply: Correction


def _sale_only_fees(con: duckdb.DuckDBPyConnection, sources: tuple[str, ...] = SALE_ONLY_FEE_SOURCES) -> int:
    """Fee 0 (so net = amount) on the `sources` stored events and quarantined rows' parsed fields that repeated a
    fee. A rail fixed after a store first ran this correction gets a correction of its own name for its rows."""
    names = list(sources)
    repeated = "source IN (SELECT unnest(?::VARCHAR[])) AND event_type <> 'sale' AND fee_minor <> 0"
    payments = f"SELECT transaction_id FROM sale_events WHERE {repeated}"
    con.execute(
        "INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events"
        f" WHERE source IN (SELECT unnest(?::VARCHAR[])) AND transaction_id IN ({payments})",
        [names, names],
    )
    (events,) = con.execute(
        f"UPDATE sale_events SET fee_minor = 0, net_minor = amount_minor WHERE {repeated}", [names]
    ).fetchall()[0]
    # A quarantined row is loaded later from its parsed fields (a steward's fix, a held row's release); the
    # correction is `regions.corrections.without_repeated_fee`, written in SQL.
    (quarantined,) = con.execute(
        "UPDATE quarantine SET parsed = json_merge_patch(parsed,"
        " json_object('fee_minor', 0, 'net_minor', parsed->'$.amount_minor'))"
        " WHERE source IN (SELECT unnest(?::VARCHAR[])) AND parsed->>'$.event_type' <> 'sale'"
        " AND TRY_CAST(parsed->>'$.fee_minor' AS BIGINT) <> 0",
        [names],
    ).fetchall()[0]
    if events:
        con.execute("DELETE FROM model_builds")
    return events + quarantined


def _batch_rails(con: duckdb.DuckDBPyConnection) -> int:
    """Each stored batch's rails and their fees answer (`batch_rails`), for the batches loaded before kanda kept it:
    the rails' answers as their readers give them now, the best knowledge there is (the same answer the rollups
    gave those events until then)."""
    rails = fees_by_rail()
    (added,) = con.execute(
        "INSERT INTO batch_rails"
        " SELECT e.batch_id, e.source, coalesce(r.fees_stated, false)"
        " FROM (SELECT DISTINCT batch_id, source FROM sale_events) AS e"
        " LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS source, unnest(?::BOOLEAN[]) AS fees_stated) AS r USING (source)"
        " WHERE (e.batch_id, e.source) NOT IN (SELECT (batch_id, source) FROM batch_rails)",
        [list(rails), list(rails.values())],
    ).fetchall()[0]
    if added:
        con.execute("DELETE FROM model_builds")
    return added


def _event_refs(con: duckdb.DuckDBPyConnection) -> int:
    """`event_ref` for the events stored before the contract had it, so that a payment's second refund is an event
    of its own: the table is rebuilt (DuckDB cannot change a virtual column's definition), each event given the
    reference its rail's reader gives now (`quality.contract.event_ref_expr`): a refund's minute, and on a
    running-total rail (`running_total_rails`) the total the one refund or reversal an older kanda kept per payment
    was first exported with, which is its amount. A rail that names its own refund ids (`fields.event_ref`) did
    not keep them in older stores: their refunds take the minute too. Returns the events whose `event_id` gained
    the reference."""
    (has,) = con.execute(
        "SELECT count(*) FROM duckdb_columns()"
        " WHERE schema_name = 'main' AND table_name = 'sale_events' AND column_name = 'event_ref'"
    ).fetchall()[0]
    if has:
        return 0
    con.execute(f"ALTER TABLE sale_events RENAME TO {_BEFORE_EVENT_REF}")
    con.execute(sale_events_ddl())
    con.execute(
        "INSERT INTO sale_events BY NAME SELECT * EXCLUDE (event_id),"
        " CASE WHEN event_type = 'sale' THEN 0"
        "   WHEN source IN (SELECT unnest(?::VARCHAR[])) THEN abs(amount_minor)"
        f"   WHEN event_type = '{REPEATABLE_EVENT}' THEN {REFUND_MINUTE_SQL}"
        "   ELSE 0 END AS event_ref"
        f" FROM {_BEFORE_EVENT_REF}",
        [sorted(running_total_rails())],
    )
    con.execute(f"DROP TABLE {_BEFORE_EVENT_REF}")
    (changed,) = con.execute("SELECT count(*) FROM sale_events WHERE event_ref <> 0").fetchall()[0]
    con.execute("DELETE FROM model_builds")
    return changed


def _yoco_event_times(con: duckdb.DuckDBPyConnection) -> int:
    """Yoco events and quarantined rows timed by the payload's time, moved to the event's
    (`regions.corrections.YOCO_PAYLOAD_AHEAD`): their local days, and a refund's minute, with them. The days they
    leave and the days they reach are both changed."""
    hours = YOCO_PAYLOAD_AHEAD // dt.timedelta(hours=1)
    moved = 0
    for (code,) in con.execute(
        "SELECT DISTINCT region FROM sale_events WHERE source = $1"
        " UNION SELECT DISTINCT region FROM quarantine WHERE source = $1",
        [YOCO_SOURCE],
    ).fetchall():
        zone = all_regions()[code].zone if code in all_regions() else "UTC"
        yoco = "source = $source AND region = $region"
        args = {"source": YOCO_SOURCE, "region": code}
        when = f"occurred_at - INTERVAL {hours} HOUR"
        con.execute(f"INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events WHERE {yoco}", args)
        (events,) = con.execute(
            f"UPDATE sale_events SET occurred_at = {when}, local_date = CAST(timezone($zone, {when}) AS DATE),"
            f" event_ref = CASE WHEN event_type = '{REPEATABLE_EVENT}' AND event_ref <> 0"
            f"   THEN {REFUND_MINUTE_SQL.replace('occurred_at', f'({when})')} ELSE event_ref END"
            f" WHERE {yoco}",
            {**args, "zone": zone},
        ).fetchall()[0]
        con.execute(f"INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events WHERE {yoco}", args)
        # A quarantined row is loaded later from its parsed fields (a steward's fix, a held row's release): the
        # same correction, `regions.corrections.at_yoco_event_time`, in Python over the few such rows.
        rows = con.execute(f"SELECT quarantine_id, parsed FROM quarantine WHERE {yoco}", args).fetchall()
        for quarantine_id, parsed in rows:
            fixed = at_yoco_event_time(json.loads(parsed), zone, partial(event_ref_value, REPEATABLE_EVENT))
            con.execute(
                "UPDATE quarantine SET parsed = $parsed, local_date = TRY_CAST($day AS DATE)"
                f" WHERE quarantine_id = $id AND {yoco}",
                {"parsed": json.dumps(fixed), "day": fixed.get("local_date"), "id": quarantine_id, **args},
            )
        moved += events + len(rows)
    if moved:
        con.execute("DELETE FROM model_builds")
    return moved


def _read_again(con: duckdb.DuckDBPyConnection, settings: Settings, source: str, *columns: pl.Expr) -> pl.DataFrame:
    """What the rail's current reader makes of the stored `source` events' records: `columns` by batch, source row
    and event type, read from each batch's file kept in the region's `processed/` archive (the copy whose content
    hash the ledger holds). A loaded event keeps no raw record; a batch whose file is no longer kept is left out."""
    batches = con.execute(
        "SELECT DISTINCT e.region, e.batch_id, l.file_name, l.content_hash FROM sale_events AS e"
        " JOIN ledger AS l ON l.batch_id = e.batch_id AND l.kind = 'file' WHERE e.source = ?",
        [source],
    ).fetchall()
    frames = []
    for region, batch_id, file_name, digest in batches:
        path = archived_copy(settings, region, batch_id, file_name, digest) if file_name and digest else None
        if path is None:
            continue
        context = ReadContext(region=get_region(region), salt=settings.buyer_salt)
        try:
            chunks = [
                chunk.frame.select(pl.lit(batch_id).alias("batch_id"), "source_row", "event_type", *columns)
                for chunk in get_adapter(source).read(path, context)
            ]
        except FileRejected as rejected:  # the current reader refuses it: its events stay as stored, never the store
            log.warning("%s is not read again (%s): its %s events keep what was stored", path, rejected, source)
            continue
        frames.extend(chunks)
    if frames:
        return pl.concat(frames)
    read = {"source_row": pl.Int64, "event_type": pl.String, "transaction_id": pl.String, "amount_minor": pl.Int64,
            "fee_minor": pl.Int64, "occurred_at": pl.Datetime("us", "UTC"), RAIL_REF: pl.String}  # fmt: skip
    return pl.DataFrame(schema=read).select(pl.lit("").alias("batch_id"), "source_row", "event_type", *columns)


def _sale_fees_read_again(con: duckdb.DuckDBPyConnection, settings: Settings, source: str) -> int:
    """The `source` sales whose fee the rail's spec reads otherwise now: the fee and net as the rail reads the
    archived record now. A record the current reader finds contradictory (its fee unreadable) keeps what was stored.

    Flutterwave: an older spec booked the whole `app_fee` where the customer bore part or all of it (`charged_amount`
    above `amount`). Gumroad: an older spec left out the affiliate's commission (`Affiliate commission`), which the
    seller pays out of the sale (`gumroad_affiliate_commissions`), and a later one the processor's fee of a sale paid
    into the seller's own PayPal or Stripe account (`PayPal/Stripe Fee Amount`, `gumroad_processor_fees`)."""
    fees = _read_again(con, settings, source, pl.col("fee_minor"), pl.col("amount_minor"))
    con.register("fees_read_again", fees)
    matched = (
        "e.source = ? AND e.event_type = 'sale' AND f.event_type = 'sale' AND f.batch_id = e.batch_id"
        " AND f.source_row = e.source_row AND f.amount_minor = e.amount_minor"
        " AND f.fee_minor IS NOT NULL AND f.fee_minor <> e.fee_minor"
    )
    con.execute(
        "INSERT INTO dirty_days SELECT DISTINCT e.local_date FROM sale_events AS e, fees_read_again AS f"
        f" WHERE {matched}",
        [source],
    )
    (changed,) = con.execute(
        "UPDATE sale_events AS e SET fee_minor = f.fee_minor, net_minor = e.amount_minor - f.fee_minor"
        f" FROM fees_read_again AS f WHERE {matched}",
        [source],
    ).fetchall()[0]
    con.unregister("fees_read_again")
    if changed:
        con.execute("DELETE FROM model_builds")
    return changed


def _mtn_request_keys(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """MTN MoMo Collection events an older spec keyed by `externalId`, keyed as the fixed spec reads their records
    (`regions.corrections.mtn_request_key`), or a record delivered again would load beside its old self.

    A loaded event keeps no raw record, so its file is read again from the region's `processed/` archive (the one
    whose content hash the ledger holds). Money going back whose record names no request (an older poller's) takes
    the request its order id was the key of, where that order had one request; otherwise it keeps its key. Events
    whose file is no longer archived keep theirs, and the upgrade says how many in the log."""
    found = _read_again(con, settings, MTN_SOURCE, pl.col("transaction_id").alias("key"))
    con.register("mtn_keys", found)
    # old key -> new key of every stored event whose record was read again; an order's one request from its sale
    con.execute(
        "CREATE TEMP TABLE mtn_rekeyed AS SELECT e.rowid AS event_row, e.transaction_id AS old_key, k.key"
        " FROM sale_events AS e JOIN mtn_keys AS k USING (batch_id, source_row, event_type)"
        " WHERE e.source = ? AND k.key IS NOT NULL",
        [MTN_SOURCE],
    )
    con.execute(
        "INSERT INTO mtn_rekeyed SELECT e.rowid, e.transaction_id, o.key FROM sale_events AS e"
        " JOIN (SELECT r.old_key, any_value(r.key) AS key FROM mtn_rekeyed AS r JOIN sale_events AS s"
        "       ON s.rowid = r.event_row AND s.event_type = 'sale' GROUP BY r.old_key"
        "       HAVING count(DISTINCT r.key) = 1) AS o ON o.old_key = e.transaction_id"
        " WHERE e.source = ? AND e.event_type <> 'sale' AND e.rowid NOT IN (SELECT event_row FROM mtn_rekeyed)",
        [MTN_SOURCE],
    )
    con.unregister("mtn_keys")
    changed = con.execute("SELECT event_row FROM mtn_rekeyed WHERE key <> old_key").fetchall()
    con.execute(
        "INSERT INTO dirty_days SELECT DISTINCT e.local_date FROM sale_events AS e"
        " JOIN mtn_rekeyed AS r ON r.event_row = e.rowid WHERE r.key <> r.old_key"
    )
    con.execute(
        "UPDATE sale_events SET transaction_id = r.key FROM mtn_rekeyed AS r"
        " WHERE sale_events.rowid = r.event_row AND r.key <> r.old_key"
    )
    (left,) = con.execute(
        "SELECT count(*) FROM sale_events WHERE source = ? AND rowid NOT IN (SELECT event_row FROM mtn_rekeyed)",
        [MTN_SOURCE],
    ).fetchall()[0]
    if left:
        log.warning(
            "%d MTN MoMo events keep their order id: their files are no longer in processed/, so the request each"
            " was cannot be read again; a record of them delivered again would load beside them",
            left,
        )
    quarantined = _mtn_quarantine_keys(con)
    con.execute("DROP TABLE mtn_rekeyed")
    if changed or quarantined:
        con.execute("DELETE FROM model_builds")
    return len(changed) + quarantined


def _mtn_quarantine_keys(con: duckdb.DuckDBPyConnection) -> int:
    """Quarantined MTN rows keyed as the fixed spec reads their raw record (a steward's fix loads from `parsed`).
    Only the record decides, as in the review database's same correction (`kanda.review.db`), whose items are what
    a fix is loaded from: a refund whose record names no request keeps its key there and here."""
    rows = con.execute(
        "SELECT quarantine_id, transaction_id, raw_record, parsed FROM quarantine WHERE source = ?", [MTN_SOURCE]
    ).fetchall()
    changed = 0
    for quarantine_id, old_key, raw, parsed in rows:
        fields = json.loads(parsed)
        key = mtn_request_key(fields.get("event_type"), json.loads(raw)) or old_key
        if key != old_key:
            con.execute(
                "UPDATE quarantine SET transaction_id = ?, parsed = ? WHERE quarantine_id = ?",
                [key, json.dumps({**fields, "transaction_id": key}), quarantine_id],
            )
            changed += 1
    return changed


#: The Razorpay rail, whose refunds an older spec told apart by their minute instead of their own id.
RAZORPAY_SOURCE = "razorpay_webhook"
#: The bKash rail, whose refunds an older spec told apart by their minute instead of their refundTrxID.
BKASH_SOURCE = "bkash_execute"
#: The Chapa rail, whose refunds and reversals an older spec dated by the charge's `created_at`.
CHAPA_SOURCE = "chapa"
#: The MTN MoMo merchant portal export (GH), whose refunds an older spec told apart by their minute instead of their
#: own Transaction Id.
MOMO_EXPORT_SOURCE = "momo_export"


def _refund_ids(con: duckdb.DuckDBPyConnection, settings: Settings, *, source: str) -> int:
    """Refunds of `source` an older spec told apart by their minute, keyed by the refund's own id as the spec reads
    them now (`fields.event_ref`), or a refund of an older store delivered again would load beside its old self:
    its money taken back twice. Read from each batch's archived file, as the MTN correction reads its files; a
    refund whose file is no longer kept keeps its minute. Money and days are unchanged: no day is republished."""
    (refunds,) = con.execute(
        "SELECT count(*) FROM sale_events WHERE source = ? AND event_type = ?", [source, REPEATABLE_EVENT]
    ).fetchall()[0]
    if not refunds:  # most stores: nothing to read again
        return 0
    found = _read_again(con, settings, source, event_ref_expr(RAIL_REF).alias("event_ref"))
    con.register("rail_refund_refs", found.filter(pl.col("event_type") == REPEATABLE_EVENT))
    (changed,) = con.execute(
        "UPDATE sale_events AS e SET event_ref = r.event_ref FROM rail_refund_refs AS r"
        " WHERE e.source = ? AND e.event_type = r.event_type AND e.batch_id = r.batch_id"
        " AND e.source_row = r.source_row AND r.event_ref IS NOT NULL AND e.event_ref <> r.event_ref",
        [source],
    ).fetchall()[0]
    con.unregister("rail_refund_refs")
    if changed:
        con.execute("DELETE FROM model_builds")
    return changed


def _money_back_times_read_again(con: duckdb.DuckDBPyConnection, settings: Settings, source: str) -> int:
    """The `source` refunds, reversals and chargebacks whose time the rail's spec reads otherwise now, moved to the
    time the rail reads from the archived record now, with their local day and a refund's minute (its `event_ref`,
    so that the same document delivered again is still a duplicate). The day each leaves and the day it reaches
    are both changed; a record whose time the current reader cannot read keeps what was stored.

    Chapa: an older spec dated money going back by `created_at`, which on a refund restating its transaction is
    the charge's time; the spec reads `updated_at` now (`regions/rails/chapa/spec.yaml`). A quarantined row keeps
    its parsed time: its raw record holds only the fields the older spec read, not `updated_at`."""
    times = _read_again(con, settings, source, pl.col("occurred_at").alias("read_at"))
    con.register("times_read_again", times.filter(pl.col("event_type") != "sale"))
    matched = (
        "e.source = $source AND e.event_type <> 'sale' AND t.event_type = e.event_type AND t.batch_id = e.batch_id"
        " AND t.source_row = e.source_row AND t.read_at IS NOT NULL AND t.read_at <> e.occurred_at"
    )
    args = {"source": source}
    day = "CAST(timezone((SELECT zone FROM region_info), t.read_at) AS DATE)"
    for left_or_reached in ("e.local_date", day):
        con.execute(
            f"INSERT INTO dirty_days SELECT DISTINCT {left_or_reached}"
            f" FROM sale_events AS e, times_read_again AS t WHERE {matched}",
            args,
        )
    minute = REFUND_MINUTE_SQL.replace("occurred_at", "t.read_at")
    (changed,) = con.execute(
        f"UPDATE sale_events AS e SET occurred_at = t.read_at, local_date = {day},"
        f" event_ref = CASE WHEN e.event_type = '{REPEATABLE_EVENT}' AND e.event_ref <> 0 THEN {minute}"
        "   ELSE e.event_ref END"
        f" FROM times_read_again AS t WHERE {matched}",
        args,
    ).fetchall()[0]
    con.unregister("times_read_again")
    if changed:
        con.execute("DELETE FROM model_builds")
    return changed


def _quarantine_days_by_arrival(con: duckdb.DuckDBPyConnection) -> int:
    """Rows quarantined for their time counted on the day they arrived, as `quality.boundary.to_quarantine` now
    dates them: the day a broken time named (a 2014 typo) showed a quarantine rate of 1.0 while the day the row
    came in under-reported its own. Both days are changed."""
    for_time = "local_date IS NOT NULL AND list_contains(json_extract_string(reasons, '$[*].column'), 'occurred_at')"
    arrival = "CAST(timezone((SELECT zone FROM region_info), quarantined_at) AS DATE)"
    con.execute(f"INSERT INTO dirty_days SELECT DISTINCT local_date FROM quarantine WHERE {for_time}")
    con.execute(f"INSERT INTO dirty_days SELECT DISTINCT {arrival} FROM quarantine WHERE {for_time}")
    (changed,) = con.execute(f"UPDATE quarantine SET local_date = NULL WHERE {for_time}").fetchall()[0]
    if changed:
        con.execute("DELETE FROM model_builds")
    return changed


def _batch_money(con: duckdb.DuckDBPyConnection) -> int:
    """The money of each batch loaded before the ledger recorded it (`kanda.regional.ledger.BatchMoney`), as its
    events hold it now, in one ledger row of kind `upgrade`: from this open on, an event of those batches changed
    in place is caught as any other. What was changed before it cannot be told; later upgrades restate it as they
    restate every batch's. Returns the batches recorded."""
    missing = con.execute(
        "SELECT batch_id FROM ledger WHERE kind <> 'upgrade' AND batch_id NOT IN (SELECT batch_id FROM batch_money)"
        " ORDER BY seq"
    ).fetchall()
    if not missing:
        return 0
    held = batch_money(con)
    money = [held.get(batch_id) or BatchMoney.empty(batch_id) for (batch_id,) in missing]
    record_upgrade(con, "batch_money", money)
    return len(money)


_BEFORE_EVENT_REF = "kanda_sale_events_before_event_ref"


def _store_only(correct: Callable[[duckdb.DuckDBPyConnection], int]) -> Correction:
    """A correction that needs nothing but the store."""
    return lambda con, _settings: correct(con)


UPGRADES = [
    StoreUpgrade("sale_only_fees", _store_only(_sale_only_fees)),
    StoreUpgrade("batch_rails", _store_only(_batch_rails)),
    StoreUpgrade("event_refs", _store_only(_event_refs)),
    StoreUpgrade("yoco_event_times", _store_only(_yoco_event_times)),
    StoreUpgrade("mtn_request_keys", _mtn_request_keys),
    StoreUpgrade("flutterwave_borne_fees", partial(_sale_fees_read_again, source=FLUTTERWAVE_SOURCE)),
    StoreUpgrade("quarantine_days_by_arrival", _store_only(_quarantine_days_by_arrival)),
    StoreUpgrade("razorpay_refund_ids", partial(_refund_ids, source=RAZORPAY_SOURCE)),
    StoreUpgrade("gumroad_affiliate_commissions", partial(_sale_fees_read_again, source=GUMROAD_SOURCE)),
    StoreUpgrade("bkash_refund_ids", partial(_refund_ids, source=BKASH_SOURCE)),
    StoreUpgrade("flutterwave_sale_only_fees", _store_only(partial(_sale_only_fees, sources=(FLUTTERWAVE_SOURCE,)))),
    StoreUpgrade("momo_export_refund_ids", partial(_refund_ids, source=MOMO_EXPORT_SOURCE)),
    StoreUpgrade("yoco_refund_ids", partial(_refund_ids, source=YOCO_SOURCE)),
    StoreUpgrade("chapa_money_back_times", partial(_money_back_times_read_again, source=CHAPA_SOURCE)),
    StoreUpgrade("gumroad_processor_fees", partial(_sale_fees_read_again, source=GUMROAD_SOURCE)),
    # after every correction above (each restates the money it changes): those before it had none to restate
    StoreUpgrade("batch_money", _store_only(_batch_money)),
]
