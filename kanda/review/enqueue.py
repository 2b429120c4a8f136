"""Filling the review queue from the regional stores, once per quarantined row, and keeping it in step.

Every row in a region's `quarantine` table becomes one review item, keyed by its `quarantine_id`, so enqueueing
again (after every ingestion, from the CLI, the demo and Dagster) adds only what is new. The store is read
read-only under its lock; the review database is written in one transaction.

The same pass notices rows that left quarantine without a steward: held `unknown_creator` rows released by
ingestion once their creator was onboarded (`kanda.regional.ingest.release_held`). Their items end `reprocessed`,
audited as released automatically, so no steward works on (or loads again) a row that is already in the events.

Raw buyer PII stays in its region: the raw record copied into the review database is masked (`kanda.review.pii`:
e-mail addresses, phone numbers, people's names). The store keeps the original; the parsed fields carry only the
salted buyer hash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import pyarrow as pa
from sqlalchemy import Connection, select, update

from kanda.regional.status import RegionFailure
from kanda.regional.store import open_store, registered, store_exists
from kanda.review import db
from kanda.review.db import write_audit
from kanda.review.pii import masked_record
from kanda.review.revalidate import severity_of
from kanda.settings import Settings
from regions import all_regions, get_region

log = logging.getLogger(__name__)

#: Review statuses that a release by ingestion overtakes (rejections are final).
_OVERTAKEN = ("new", "in_review", "fixed", "waived")
#: How a released quarantine row `q` left quarantine: the ledger kind of the batch that released it, and whether that
#: batch (a steward's fix) quarantined its event again: a fix batch names the row it fixes in the raw record of what
#: it quarantines. Read when the batch's own run did not record the outcome (cut short, or overtaken by another run).
RELEASED_BY_SQL = (
    "l.kind, EXISTS (SELECT 1 FROM quarantine AS again WHERE again.batch_id = q.released_batch"
    " AND json_extract_string(again.raw_record, '$.quarantine_id') = q.quarantine_id) AS again"
)


def enqueue_all(
    settings: Settings, regions: Iterable[str] | None = None, *, failed: list[RegionFailure] | None = None
) -> dict[str, int]:
    """Enqueue the regions (default: every region that has a store), each on its own; new items per region.

    A region whose store cannot be read (or is busy) is appended to `failed` with its cause and left out of the
    answer, and the other regions are still enqueued; without `failed`, the error is raised.
    """
    codes = [get_region(c).code for c in regions] if regions is not None else list(all_regions())
    added = {}
    for code in codes:
        if regions is None and not store_exists(settings, code):
            continue
        try:
            added[code] = enqueue_region(settings, code)
        except Exception as exc:
            if failed is None:
                raise
            # isolation: name this region and its cause, go on with the healthy ones
            failed.append(RegionFailure.of(code, exc))
            log.warning("%s: not enqueued: %s", code, failed[-1].cause)
    return added


def enqueue_region(settings: Settings, region: str) -> int:
    """Add the region's quarantined rows not yet in the queue; mark items released by ingestion. Returns new items."""
    code = get_region(region).code
    if not store_exists(settings, code):
        return 0
    engine = db.engine_for(settings.app_db_url)
    with engine.connect() as con:
        known = con.execute(select(db.items.c.quarantine_id, db.items.c.status).where(db.items.c.region == code)).all()
    known_ids = pa.table({"quarantine_id": pa.array([q for q, _ in known], pa.string())})
    waiting = pa.table({"quarantine_id": pa.array([q for q, s in known if s in _OVERTAKEN], pa.string())})
    with open_store(settings, code, read_only=True) as store:
        with registered(store, "kanda_review_known", known_ids):
            new_rows = store.execute(
                "SELECT q.quarantine_id, q.batch_id, q.source, q.source_file, q.source_row, q.transaction_id,"
                " q.creator_id, q.local_date, q.hold, q.raw_record, q.parsed, q.reasons, q.status,"
                " q.quarantined_at, q.released_batch, l.kind"
                " FROM quarantine AS q LEFT JOIN ledger AS l ON l.batch_id = q.released_batch"
                " WHERE q.quarantine_id NOT IN (SELECT quarantine_id FROM kanda_review_known)"
                # a line's events in their order (its quarantine ids: `row`, then `row.2`): a reprocess stages items
                # by id, and of two fixed events made alike the first staged is the one that loads
                " ORDER BY q.quarantined_at, q.source_file, q.source_row, q.quarantine_id"
            ).fetchall()
        with registered(store, "kanda_review_waiting", waiting):
            released = store.execute(
                f"SELECT q.quarantine_id, q.released_batch, {RELEASED_BY_SQL} FROM quarantine AS q"
                " LEFT JOIN ledger AS l ON l.batch_id = q.released_batch"
                " WHERE q.status = 'released' AND q.quarantine_id IN (SELECT quarantine_id FROM kanda_review_waiting)"
            ).fetchall()
    with engine.begin() as con:
        added = _insert_items(con, code, new_rows)
        mark_released(con, {q: (batch, kind, again) for q, batch, kind, again in released})
    return added


def _insert_items(con: Connection, region: str, rows: list[tuple]) -> int:
    if not rows:
        return 0
    now = db.now()
    calling_code = get_region(region).calling_code
    values, rules_of, released_of = [], {}, {}
    for (
        quarantine_id,
        batch_id,
        source,
        source_file,
        source_row,
        transaction_id,
        creator_id,
        local_date,
        hold,
        raw_record,
        parsed,
        reasons,
        store_status,
        quarantined_at,
        released_batch,
        kind,
    ) in rows:
        rules = [
            {**r, "severity": severity_of(r.get("rule", ""), r.get("severity"))} for r in json.loads(reasons or "[]")
        ]
        rules_of[quarantine_id] = rules
        parsed_fields = json.loads(parsed)
        status = {"released": "reprocessed", "rejected": "rejected"}.get(store_status, "new")
        if status != "new":
            released_of[quarantine_id] = (store_status, released_batch, kind)
        values.append(
            {
                "region": region,
                "quarantine_id": quarantine_id,
                "batch_id": batch_id,
                "source": source,
                "source_file": source_file,
                "source_row": source_row,
                "transaction_id": transaction_id,
                "creator_id": creator_id,
                "local_date": local_date,
                "hold": hold,
                "raw_record": masked_record(raw_record, calling_code),
                "parsed": parsed_fields,
                "product_id": parsed_fields.get("product_id"),
                "rules": rules,
                "status": status,
                "edits": {},
                "applied_batch": released_batch,
                "applied_at": now if status != "new" else None,
                "quarantined_at": quarantined_at,
                "enqueued_at": now,
                "updated_at": now,
            }
        )
    inserted = _insert_ignoring_duplicates(con, [_within_lengths(v) for v in values])
    rule_rows = [
        {"item_id": item_id, "rule": r.get("rule", ""), "column": r.get("column"), "severity": r["severity"]}
        for item_id, quarantine_id in inserted
        for r in rules_of[quarantine_id]
    ]
    if rule_rows:
        con.execute(db.item_rules.insert(), rule_rows)
    audit = []
    for item_id, quarantine_id in inserted:
        audit.append(
            {
                "item_id": item_id,
                "actor": "system:enqueue",
                "action": "enqueue",
                "at": now,
                "before": None,
                "after": {"status": "new", "rules": [r["rule"] for r in rules_of[quarantine_id]]},
                "reason": f"quarantined in batch {quarantine_id.rsplit(':', 1)[0]}",
            }
        )
        if quarantine_id in released_of:
            store_status, batch, kind = released_of[quarantine_id]
            audit.append(_release_audit(item_id, "new", store_status, batch, kind, now))
    write_audit(con, audit)
    return len(inserted)


def _within_lengths(row: dict) -> dict:
    """`row` with each text longer than its queue column cut to fit, marked with an ellipsis.

    PostgreSQL enforces a column's length and SQLite does not: one quarantined row with a 232-character receipt
    number (quarantined exactly because the contract caps ids at 128) failed the whole region's enqueue on
    PostgreSQL, every later ingest's too. These columns are copies for listing and search; the record's parsed
    fields, which a fix is checked and loaded from, keep the value whole.
    """
    for column in db.items.columns:
        length = getattr(column.type, "length", None)
        value = row.get(column.name)
        if length and isinstance(value, str) and len(value) > length:
            row[column.name] = value[: length - 1] + "\u2026"
    return row


def _insert_ignoring_duplicates(con: Connection, values: list[dict]) -> list[tuple[int, str]]:
    """Insert items, skipping any another process enqueued meanwhile; (id, quarantine_id) of those inserted."""
    dialect = con.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other engines: plain insert, conflicts surface as errors
        from sqlalchemy import insert as plain_insert

        return [
            tuple(r)
            for r in con.execute(plain_insert(db.items).returning(db.items.c.id, db.items.c.quarantine_id), values)
        ]
    statement = (
        insert(db.items)
        .on_conflict_do_nothing(index_elements=["quarantine_id"])
        .returning(db.items.c.id, db.items.c.quarantine_id)
    )
    inserted: list[tuple[int, str]] = []
    for start in range(0, len(values), 5_000):
        inserted.extend(tuple(r) for r in con.execute(statement, values[start : start + 5_000]))
    return inserted


def mark_released(
    con: Connection, released: dict[str, tuple[str | None, str | None, bool]], *, also_rejected: bool = False
) -> int:
    """Items whose store row was loaded (by an automatic release, or by a fix whose bookkeeping a crash or another
    run cut short) end `reprocessed`, with an audit row saying how: `released` maps quarantine ids to the releasing
    batch, its kind and whether it quarantined the row again (`RELEASED_BY_SQL`). Returns how many changed.

    `also_rejected`: a rejection that had not reached the store when ingestion released the row (the reprocess
    run, which records rejections, passes it): the row is in the events, so the item says so.
    """
    if not released:
        return 0
    now = db.now()
    statuses = [*_OVERTAKEN, "rejected"] if also_rejected else list(_OVERTAKEN)
    rows = con.execute(
        select(db.items.c.id, db.items.c.quarantine_id, db.items.c.status).where(
            db.items.c.quarantine_id.in_(list(released)),
            db.items.c.status.in_(statuses),
            db.items.c.applied_at.is_(None),
        )
    ).all()
    audit = []
    for item_id, quarantine_id, status in rows:
        batch, kind, again = released[quarantine_id]
        changed = con.execute(
            update(db.items)
            .where(db.items.c.id == item_id, db.items.c.status == status)
            .values(status="reprocessed", applied_batch=batch, applied_at=now, updated_at=now)
        ).rowcount
        if changed:
            audit.append(_release_audit(item_id, status, "released", batch, kind, now, again=again))
    write_audit(con, audit)
    return len(audit)


def _release_audit(
    item_id: int, before: str, store_status: str, batch: str | None, kind: str | None, now, *, again: bool = False
) -> dict:
    automatic = kind == "release"
    actor, action = ("system:ingest", "release") if automatic else ("system:reprocess", "reprocess")
    after: dict = {"status": "reprocessed", "batch": batch}
    if store_status == "rejected":
        actor, action, after = "system:enqueue", "reject", {"status": "rejected"}
        reason = "already marked rejected in the regional store"
    elif again and not automatic:
        # the fix did not reach the figures: it failed on load, and its row waits again as an item of its own
        after["outcome"] = "quarantined"
        reason = f"failed the contract on load and was quarantined again in batch {batch}"
    elif not automatic:
        reason = f"already loaded by batch {batch}"
    else:
        reason = f"released automatically: the creator was onboarded (batch {batch})" + {
            "rejected": ", before the rejection reached the store",
            "fixed": ", before the approved fix reached the store: the event is stored as it arrived,"
            " without the fix's edits",
        }.get(before, "")
    return {
        "item_id": item_id,
        "actor": actor,
        "action": action,
        "at": now,
        "before": {"status": before},
        "after": after,
        "reason": reason,
    }
