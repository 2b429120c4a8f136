"""Told while editing: a refund whose time a steward types, when the region's store already counts a refund of the
same payment and amount at another minute (the question `repeat_other_time` asks).

A refund that its rail tells apart only by its minute (no refund id) is identified by the time typed for it. A time
typed for a refund the rail has already delivered at its real minute is therefore not recognised as that refund:
the fix batch quarantines it as `repeat_other_time` when it loads (`kanda.regional.batch`), a reprocess later, and
until then the steward had been told nothing. Said here, with the stored refund's time, the steward can answer
while the record is open: reject it if it is the same refund, approve it if the payment was refunded twice.

A notice, not a refusal: two real refunds of one payment for the same amount exist (a partial refund given twice),
and only the steward can tell them from one refund timed twice; the store read is a snapshot too (the rail may
deliver its refund after the check), so the batch's judgement when the fix loads stays the one that decides.

The store is a DuckDB file that one process may open read-write: it is read as `kanda.review.enqueue` reads it
(read-only, under the region's lock), only for rows that need it (a refund told apart by its minute whose time the
edits set), once per region, and closed before the answer is built. A store that a run holds (an ingest holds it for
minutes) is not waited for beyond `STORE_WAIT_SECONDS`: the notice then says the check could not be made now.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pyarrow as pa

from kanda.regional.store import StoreBusy, open_store, registered, store_exists
from kanda.review.notation import RailContext
from kanda.review.revalidate import Candidate, Rule, edited_row
from kanda.settings import Settings
from quality.boundary import REPEAT_OTHER_TIME
from quality.contract import REFUND_MINUTE_SQL, REPEATABLE_EVENT, event_ref_value
from regions import get_region

#: The severity of a notice: said to the steward, never in the way of a decision (`Revalidation.ok` ignores it).
NOTICE = "notice"
#: How long a check waits for a region's store that a run holds: a form must answer, and the fix batch checks again.
STORE_WAIT_SECONDS = 2.0
#: The column a notice names: the typed time, when it makes the record a refund beside one already counted (what an
#: approval then decides: a second refund), or the store, when it could not be read (nothing was decided about it).
TIMED_COLUMN, STORE_COLUMN = "occurred_at", "store"
#: What two refunds of a payment must share to be one refund timed twice (as the fix batch compares them).
_KEY = ("transaction_id", "status", "amount_minor", "currency")
_ASKED = "kanda_review_refund_times"


def refund_time_notices(settings: Settings, candidates: Sequence[Candidate]) -> list[list[Rule]]:
    """For each candidate, the notices of `REPEAT_OTHER_TIME` its edits raise (most have none)."""
    asked: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for index, candidate in enumerate(candidates):
        row = _timed_refund(candidate)
        if row is not None:
            asked[candidate.region].append((index, row))
    notices: list[list[Rule]] = [[] for _ in candidates]
    for region, rows in asked.items():
        try:
            found = _stored_times(settings, region, rows)
        except StoreBusy as exc:
            for index, _ in rows:
                notices[index].append(Rule(REPEAT_OTHER_TIME, STORE_COLUMN, _busy(exc), NOTICE))
            continue
        for index, row in rows:
            if found.get(index):
                sentence = _sentence(region, row, found[index])
                notices[index].append(Rule(REPEAT_OTHER_TIME, TIMED_COLUMN, sentence, NOTICE))
    return notices


def counts_a_second_refund(notices: Sequence[Rule]) -> bool:
    """Whether the notices say the typed time counts a refund beside one already counted (not only that the store
    could not be read): approving such a record, once it was shown, decides that it is a second refund."""
    return any(n.rule == REPEAT_OTHER_TIME and n.column == TIMED_COLUMN for n in notices)


def _timed_refund(candidate: Candidate) -> dict | None:
    """The edited row if the edits set the time of a refund told apart by its minute, with the money to compare."""
    if not (candidate.edits.get("occurred_at") or "").strip():
        return None
    row, errors = edited_row(candidate)
    when = row.get("occurred_at")
    if errors or row.get("event_type") != REPEATABLE_EVENT or when is None:
        return None
    if row.get("event_ref") != event_ref_value(REPEATABLE_EVENT, when):  # the rail's own refund id names it
        return None
    return row if all(row.get(c) is not None for c in _KEY) else None


def _stored_times(settings: Settings, region: str, rows: list[tuple[int, dict]]) -> dict[int, list[dt.datetime]]:
    """Each asked row's stored refunds of the same payment, status, amount and currency at another minute; none for
    a row whose own event is stored (a duplicate on load, or a repeat with other money: other rules)."""
    code = get_region(region).code
    if not store_exists(settings, code):
        return {}
    table = pa.table(
        {
            "idx": pa.array([i for i, _ in rows], pa.int64()),
            "event_id": pa.array([r["event_id"] for _, r in rows], pa.string()),
            "event_ref": pa.array([r["event_ref"] for _, r in rows], pa.int64()),
            "transaction_id": pa.array([r["transaction_id"] for _, r in rows], pa.string()),
            "status": pa.array([r["status"] for _, r in rows], pa.string()),
            "amount_minor": pa.array([r["amount_minor"] for _, r in rows], pa.int64()),
            "currency": pa.array([r["currency"] for _, r in rows], pa.string()),
        }
    )
    minute = REFUND_MINUTE_SQL.replace("occurred_at", "e.occurred_at")
    with (
        open_store(settings, code, read_only=True, wait_seconds=STORE_WAIT_SECONDS) as store,
        registered(store, _ASKED, table),
    ):
        pairs = store.execute(
            f"SELECT a.idx, e.occurred_at FROM {_ASKED} AS a JOIN sale_events AS e USING ({', '.join(_KEY)})"
            f" WHERE e.event_type = '{REPEATABLE_EVENT}' AND e.event_ref = {minute} AND e.event_ref <> a.event_ref"
            " AND NOT EXISTS (SELECT 1 FROM sale_events AS d WHERE d.event_id = a.event_id)"
            " ORDER BY a.idx, e.occurred_at"
        ).fetchall()
    found: dict[int, list[dt.datetime]] = defaultdict(list)
    for index, when in pairs:
        found[index].append(when)
    return found


def _sentence(region: str, row: dict, stored: list[dt.datetime]) -> str:
    """The notice in the steward's words: what is already counted, when, and what each decision does."""
    config = get_region(region)
    zone = ZoneInfo(config.zone)
    amount = f"{row['currency']} {RailContext.of(region, {}).major_text(abs(row['amount_minor']))}"
    times = ", ".join(f"{w:%Y-%m-%d %H:%M} UTC ({w.astimezone(zone):%H:%M} {zone.key} time)" for w in _utc(stored))
    return (
        f"A refund of payment {row['transaction_id']} for the same amount ({amount}) is already counted, at {times}."
        " The time typed here makes this record another refund. If it is the same refund, reject this record: the"
        " refund stays counted once. If the payment was refunded twice, approve it: it is counted as a second refund."
    )


def _busy(exc: StoreBusy) -> str:
    return (
        f"Could not check whether a refund of this payment for the same amount is already counted at another time"
        f" ({exc}). The check is made again when the fix loads; check the record again once that run is over."
    )


def _utc(times: list[dt.datetime]) -> list[dt.datetime]:
    return [w.astimezone(dt.UTC) for w in times]
