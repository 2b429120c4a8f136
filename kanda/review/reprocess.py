"""Approved fixes back into the regional store, through the ingestion path, exactly once.

A fixed (or waived) row is loaded the way a held row is released (`kanda.regional.ingest.release_held`): under the
region's writer lock, as one `StagedBatch` of kind `fix` that goes through the same contract, hold rule and duplicate
rule
as a file, balances in the ledger like any batch, and marks its quarantine rows `released` (with the batch id) in
the same transaction. The ledger stays a true account: the file batch counted the row as quarantined, the fix batch
counts it in again as loaded (or as a duplicate, or quarantined anew if it fails after all).

Exactly once: the store is the source of truth. Before loading, the quarantine rows of the approved items are
read; a row already `released` (a crash after the store commit and before the review database was updated, or an
automatic release of a held row) is not loaded again, its item is only marked. Rejections are recorded in the
store (`status = 'rejected'`) by the same run, so `kanda quarantine` shows them. Publishing the changed days is
the region flow's next step (`kanda.flow`); until then they stay dirty, so a crash in between loses nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import duckdb
import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, and_, or_, select, update

from kanda.regional.batch import SECOND_REFUND, StagedBatch, clear_staging, dirty_quarantine_days
from kanda.regional.ingest import sync_registry
from kanda.regional.store import open_store, registered, transaction
from kanda.review import db
from kanda.review.db import write_audit
from kanda.review.enqueue import RELEASED_BY_SQL, mark_released
from kanda.review.revalidate import Candidate, contract_frame, edited_row
from kanda.settings import Settings
from quality.boundary import Split, split_by_contract
from quality.contract import EVENT_ID_PARTS
from regions import get_region

ACTOR = "system:reprocess"


@dataclass
class ReprocessResult:
    region: str
    batch_id: str | None = None
    #: item ids per outcome: loaded into sale_events, a duplicate of a stored event, quarantined again
    loaded: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)
    #: items whose row was already in the events (automatic release, or a run cut short): only marked
    already_loaded: list[int] = field(default_factory=list)
    rejected_recorded: list[int] = field(default_factory=list)
    #: fixed items whose row an automatic release loaded as it arrived, before their edits reached the store: the
    #: stored event lacks the steward's edits (a creator onboarded meanwhile under the id the row named)
    released_unedited: list[int] = field(default_factory=list)
    #: items whose quarantine row is not in the store (a store rebuilt from scratch): left as they are
    missing: list[int] = field(default_factory=list)
    publish_id: str | None = None  # filled by the region flow when it published the fixes

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.duplicates or self.quarantined or self.already_loaded or self.rejected_recorded)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def pending_items(settings: Settings, region: str) -> list[int]:
    """Items a reprocess run would act on: approved fixes and waivers, and rejections not yet in the store."""
    code = get_region(region).code
    with db.engine_for(settings.app_db_url).connect() as con:
        return list(con.execute(select(db.items.c.id).where(*_pending(code)).order_by(db.items.c.id)).scalars())


def decided_rows(settings: Settings, region: str) -> list[str]:
    """Quarantine ids of rows a steward has decided (fixed, waived or rejected) whose decision has not reached the
    store. Ingestion keeps such a held row held (`kanda.regional.ingest.release_held`), so that onboarding the
    creator the row named does not load it as it arrived over a fix that gave it another creator, or over its
    rejection; and a file's copy of any of them that now passes (its creator onboarded, its time no longer ahead)
    is a duplicate of the decided record, not loaded as it came (`StagedBatch`). The reprocess run applies the
    decision."""
    code = get_region(region).code
    c = db.items.c
    with db.engine_for(settings.app_db_url).connect() as con:
        return list(con.execute(select(c.quarantine_id).where(*_pending(code))).scalars())


def _pending(code: str):
    c = db.items.c
    return (
        c.region == code,
        or_(c.status.in_(["fixed", "waived"]), and_(c.status == "rejected", c.applied_at.is_(None))),
    )


def load_approved_fixes(settings: Settings, region: str, *, actor: str = ACTOR) -> ReprocessResult:
    """Load the region's approved fixes, record its rejections, mark the items. Idempotent.

    `actor` is who the audit rows name: a steward who ran `kanda review reprocess --actor NAME`, or the system."""
    code = get_region(region).code
    result = ReprocessResult(code)
    engine = db.engine_for(settings.app_db_url)
    with engine.connect() as con:
        items = list(con.execute(select(db.items).where(*_pending(code)).order_by(db.items.c.id)).mappings())
        second = _approved_as_second_refunds(con, [row["id"] for row in items if row["status"] == "fixed"])
    if not items:
        return result
    by_qid = {row["quarantine_id"]: row for row in items}
    with open_store(settings, code) as store:
        state = _store_state(store, list(by_qid))
        to_load, to_reject, already = [], [], {}
        for qid, row in by_qid.items():
            if qid not in state:
                result.missing.append(row["id"])
                continue
            status, batch, kind, again = state[qid]
            if status == "released":
                # loaded already: by a run cut short, or released by ingestion (also before a rejection got here)
                already[qid] = (batch, kind, again)
            elif row["status"] == "rejected":
                to_reject.append(qid)  # if the store says rejected already, a run was cut short: finish its side
            elif status in {"open", "held"}:
                to_load.append(row)
        outcomes: dict[str, str] = {}
        if to_load:
            clear_staging(settings.home, code)  # under the writer lock: whatever is there was left by a crash
            sync_registry(store, settings, get_region(code))
            result.batch_id, outcomes = _load_fixes(store, settings, code, to_load, second)
        if to_reject:
            with registered(store, "kanda_review_rejected", pa.table({"quarantine_id": to_reject})), transaction(store):
                store.execute(
                    "UPDATE quarantine SET status = 'rejected' WHERE status IN ('open', 'held')"
                    " AND quarantine_id IN (SELECT quarantine_id FROM kanda_review_rejected)"
                )
    with engine.begin() as con:
        _mark_loaded(con, [by_qid[r["quarantine_id"]] for r in to_load], outcomes, result, actor)
        mark_released(con, already, also_rejected=True)
        # a fix quarantined again by a run cut short did not reach the figures: said as such, not "already loaded"
        result.already_loaded = sorted(by_qid[q]["id"] for q, (_, kind, again) in already.items() if not again)
        result.quarantined += sorted(by_qid[q]["id"] for q, (_, kind, again) in already.items() if again)
        result.released_unedited = sorted(
            by_qid[q]["id"]
            for q, (_, kind, _again) in already.items()
            if kind == "release" and by_qid[q]["status"] == "fixed"
        )
        now = db.now()
        for qid in to_reject:
            row = by_qid[qid]
            changed = con.execute(
                update(db.items)
                .where(db.items.c.id == row["id"], db.items.c.status == "rejected", db.items.c.applied_at.is_(None))
                .values(applied_at=now, updated_at=now)
            ).rowcount
            if changed:
                result.rejected_recorded.append(row["id"])
                reason = "marked rejected in the store"
                _audit(con, actor, row["id"], "record_rejection", "rejected", "rejected", None, reason)
    return result


def _store_state(store: duckdb.DuckDBPyConnection, qids: list[str]) -> dict[str, tuple]:
    with registered(store, "kanda_review_items", pa.table({"quarantine_id": pa.array(qids, pa.string())})):
        rows = store.execute(
            f"SELECT q.quarantine_id, q.status, q.released_batch, {RELEASED_BY_SQL} FROM quarantine AS q"
            " LEFT JOIN ledger AS l ON l.batch_id = q.released_batch"
            " WHERE q.quarantine_id IN (SELECT quarantine_id FROM kanda_review_items)"
        ).fetchall()
    return {qid: (status, batch, kind, again) for qid, status, batch, kind, again in rows}


def _approved_as_second_refunds(con: Connection, item_ids: list[int]) -> set[int]:
    """The items whose latest approval decided, over the notice shown, that their typed time counts a second refund.

    The fix batch would otherwise quarantine such a refund again as `repeat_other_time` and the steward answer the
    same question twice; their approval, kept in its audit row, is the answer."""
    if not item_ids:
        return set()
    audit = db.audit.c
    rows = con.execute(
        select(audit.item_id, audit.after)
        .where(audit.item_id.in_(item_ids), audit.action == "approve")
        .order_by(audit.item_id, audit.id)
    ).all()
    latest = {item_id: after or {} for item_id, after in rows}
    return {item_id for item_id, after in latest.items() if after.get(SECOND_REFUND) is True}


def _load_fixes(
    store: duckdb.DuckDBPyConnection, settings: Settings, code: str, rows: list, second: Collection[int] = ()
) -> tuple[str, dict[str, str]]:
    """One balanced `fix` batch of the edited rows; returns its id and each quarantine row's outcome.

    Rows in `second` (item ids) were approved as a second refund of their payment: their raw record says so, and the
    batch loads them beside the refund of the same amount at another minute (`kanda.regional.batch`)."""
    region = get_region(code)
    batch_id = f"{code}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-fix"
    canonical = []
    for row in rows:
        fixed, _ = edited_row(Candidate(code, row["parsed"], dict(row["edits"] or {})))
        canonical.append({**fixed, "batch_id": batch_id})
    qids = [row["quarantine_id"] for row in rows]
    # The fix batch's "raw record" names the quarantine row it fixes (how outcomes find it), and keeps that row's
    # own raw record: a fix quarantined again goes back to the queue with the file's text, not a bare id.
    originals = [json.dumps(row.get("raw_record") or {}, ensure_ascii=False, default=str) for row in rows]
    frame = contract_frame(canonical).with_columns(
        raw_record=pl.struct(
            pl.Series("quarantine_id", qids, dtype=pl.String),
            pl.Series("original", originals, dtype=pl.String),
            pl.Series(SECOND_REFUND, [row.get("id") in second for row in rows], dtype=pl.Boolean),
        )
    )
    waived = {row["quarantine_id"] for row in rows if row["status"] == "waived"}
    known = store.sql(f"SELECT creator_id FROM creators WHERE region = '{code}'").pl()["creator_id"]
    batch = StagedBatch(settings.home, region, batch_id, known, split=_accepting_warnings(waived))
    batch.add(frame)
    fixed_ids = pa.table({"quarantine_id": pa.array(qids, pa.string())})

    def mark_fixed(con: duckdb.DuckDBPyConnection) -> None:
        with registered(con, "kanda_review_fixed", fixed_ids):
            marked = con.execute(
                "UPDATE quarantine SET status = 'released', released_at = ?, released_batch = ?"
                " WHERE status IN ('open', 'held') AND quarantine_id IN (SELECT quarantine_id FROM kanda_review_fixed)",
                [dt.datetime.now(dt.UTC), batch_id],
            ).fetchall()[0][0]
            if marked != len(qids):
                raise RuntimeError(f"{code}: {len(qids) - marked} fixed row(s) left quarantine meanwhile; retry")
            dirty_quarantine_days(con, region, "kanda_review_fixed")

    batch.commit(store, kind="fix", file_name=None, content_hash=None, also=mark_fixed)
    return batch_id, _outcomes(store, batch_id, qids, frame)


#: What identifies a fixed row's event among the fix batch's stored events: its line and the event's parts. Two
#: events of one line (a sale and its refund) share the line, so the line alone cannot tell them apart; a line has
#: one event of each type, and `event_ref` is left out because a running total's is settled on load.
_OUTCOME_KEY = ["source_file", "source_row", *EVENT_ID_PARTS[:3]]


def _outcomes(store: duckdb.DuckDBPyConnection, batch_id: str, qids: list[str], frame: pl.DataFrame) -> dict[str, str]:
    """Each fixed quarantine row's outcome in the fix batch: loaded, quarantined again, or a duplicate.

    A row quarantined again is found by its own quarantine id, which the batch carried as its raw record; a loaded
    row by its event as the batch staged it (edits applied); anything else was counted as a duplicate.
    """
    # counted, not a set: a steward's edit can give two events of one line the same parts (a refund made a sale),
    # and then the batch stores one of them; the first staged is the one loaded, the next a duplicate
    stored = Counter(
        store.execute(f"SELECT {', '.join(_OUTCOME_KEY)} FROM sale_events WHERE batch_id = ?", [batch_id]).fetchall()
    )
    again = {
        json.loads(raw)["quarantine_id"]
        for (raw,) in store.execute("SELECT raw_record FROM quarantine WHERE batch_id = ?", [batch_id]).fetchall()
    }
    outcomes = {}
    for qid, key in zip(qids, frame.select(_OUTCOME_KEY).iter_rows(), strict=True):
        if qid in again:
            outcomes[qid] = "quarantined"
        elif stored[key] > 0:
            stored[key] -= 1
            outcomes[qid] = "loaded"
        else:
            outcomes[qid] = "duplicate"
    return outcomes


def _accepting_warnings(waived: set[str]) -> Callable[[pl.DataFrame], Split]:
    """The contract check, except that waived rows failing only warning-level rules are accepted as they are."""

    def split(frame: pl.DataFrame) -> Split:
        result = split_by_contract(frame)
        if not waived or result.quarantine.is_empty():
            return result
        accepted = []
        for raw, reasons in result.quarantine.select("raw_record", "reasons").iter_rows():
            qid = json.loads(raw)["quarantine_id"]
            if qid in waived and all(r.get("severity") == "warning" for r in json.loads(reasons)):
                accepted.append(qid)
        if not accepted:
            return result
        is_accepted = pl.col("raw_record").struct.field("quarantine_id").is_in(accepted)
        still = result.quarantine.filter(
            ~pl.col("raw_record")
            .str.json_decode(pl.Struct({"quarantine_id": pl.String}))
            .struct.field("quarantine_id")
            .is_in(accepted)
        )
        return Split(pl.concat([result.valid, frame.filter(is_accepted)]), still)

    return split


def _mark_loaded(con, rows: list, outcomes: dict[str, str], result: ReprocessResult, actor: str) -> None:
    now = db.now()
    for row in rows:
        outcome = outcomes.get(row["quarantine_id"], "loaded")
        changed = con.execute(
            update(db.items)
            .where(db.items.c.id == row["id"], db.items.c.status == row["status"])
            .values(status="reprocessed", applied_batch=result.batch_id, applied_at=now, updated_at=now)
        ).rowcount
        if not changed:
            continue
        {"loaded": result.loaded, "duplicate": result.duplicates, "quarantined": result.quarantined}[outcome].append(
            row["id"]
        )
        reason = {
            "loaded": f"loaded by batch {result.batch_id}",
            "duplicate": f"the event was already stored: counted as a duplicate in batch {result.batch_id}",
            "quarantined": f"failed the contract on load and was quarantined again in batch {result.batch_id}",
        }[outcome]
        _audit(
            con,
            actor,
            row["id"],
            "reprocess",
            row["status"],
            "reprocessed",
            {"batch": result.batch_id, "outcome": outcome},
            reason,
        )


def _audit(
    con, actor: str, item_id: int, action: str, before: str, after: str, extra: dict | None, reason: str
) -> None:
    write_audit(
        con,
        [
            {
                "item_id": item_id,
                "actor": actor,
                "action": action,
                "at": db.now(),
                "before": {"status": before},
                "after": {"status": after, **(extra or {})},
                "reason": reason,
            }
        ],
    )
