"""The steward review service: the one place where the queue is read and decisions are made.

The web pages (`kanda.review.web`), the CLI (`kanda review ...`) and the Dagster jobs call these functions and
nothing else, so the rules below hold for every client:

- **Scope and role are enforced here.** Every read is filtered to `actor.regions`; every change calls
  `actor.require_change(region)` (a viewer changes nothing; a Kenya steward cannot read or change a Nigeria
  record: `get_item` raises `PermissionDenied` for it exactly as for a change).
- **One status machine.** `new -> in_review -> fixed | waived | rejected`, then `fixed | waived -> reprocessed`
  (done by `kanda.review.reprocess`, actor `system:reprocess`; held rows released automatically when their creator
  is onboarded also end `reprocessed`, actor `system:ingest`). Editing moves `new` to `in_review`; approve, waive
  and reject are allowed from `new` or `in_review` only; `rejected` and `reprocessed` are final. Anything else
  raises `InvalidTransition` with a sentence saying why. Updates are compare-and-set on the status, so two
  stewards deciding the same record at once get one decision and one `InvalidTransition`.
- **Fixes meet the same contract.** `revalidate` applies edits to the parsed row and runs the ingestion contract
  (`kanda.review.revalidate`); `approve` refuses a row that does not pass (`FixInvalid`, carrying the verdict);
  `waive` accepts a row whose only broken rules are warning-level (`quality.contract.WARNING_RULES`). The verdict
  of an open record also carries notices that do not stop an approval (`Revalidation.notices`: a refund whose typed
  time makes it a second refund of a payment, `kanda.review.refund_times`); an approval keeps them in its audit row.
- **Every change is audited.** Each change appends to `review_audit` (who, what, when, before, after, why) in the
  same transaction as the change itself; the log cannot be updated or deleted.

Reading:
    `list_items(settings, actor, flt, limit, offset) -> list[ItemSummary]` (oldest first),
    `count_items(settings, actor, flt, group_by) -> dict[str, int]` (`group_by` one of `GROUPS`, or None for
    `{"all": n}`), `get_item(settings, actor, item_id) -> ItemDetail` (raw input, parsed fields, failing rules,
    the current edits and their verdict, the audit history).
Deciding:
    `revalidate(settings, actor, item_id, edits) -> Revalidation` (no state change), `save_edits(...)`,
    `approve(settings, actor, item_id, reason=None, edits=None)`, `waive(settings, actor, item_id, justification)`,
    `reject(settings, actor, item_id, reason)`, `bulk(settings, actor, flt, action, reason) -> BulkResult`.
Filling the queue (in `kanda.review.enqueue`, re-exported here): `enqueue_region(settings, region) -> int`,
    `enqueue_all(settings) -> dict[str, int]`.

Edits are `{column: text}` (see `EDITABLE_COLUMNS`); they are merged over the item's saved edits, a value equal to
the parsed one is not an edit, and an empty string clears a value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from sqlalchemy import Connection, Select, false, func, or_, select, update

from kanda.regional.batch import SECOND_REFUND
from kanda.review import db
from kanda.review.actor import Actor, PermissionDenied
from kanda.review.db import write_audit
from kanda.review.enqueue import enqueue_all, enqueue_region
from kanda.review.refund_times import counts_a_second_refund, refund_time_notices
from kanda.review.revalidate import (
    EDITABLE_COLUMNS,
    INT64_MAX,
    INT64_MIN,
    Candidate,
    Revalidation,
    Rule,
    as_text,
    known_creators,
    revalidate_rows,
    still_a_repeat,
)
from kanda.settings import Settings
from quality.boundary import REPEAT_OTHER_TIME

STATUSES = ("new", "in_review", "fixed", "waived", "rejected", "reprocessed")
#: Statuses in which a steward may still edit and decide.
OPEN = frozenset({"new", "in_review"})
#: Decided and waiting for the reprocess run (rejections wait only to be recorded in the store).
APPROVED = frozenset({"fixed", "waived"})
FINAL = frozenset({"rejected", "reprocessed"})
GROUPS = ("region", "status", "rule", "source_file", "creator_id", "assignee")
ACTIONS = ("approve", "waive", "reject")

__all__ = [
    "ACTIONS",
    "EDITABLE_COLUMNS",
    "GROUPS",
    "STATUSES",
    "UNASSIGNED",
    "AuditEntry",
    "BulkResult",
    "FixInvalid",
    "InvalidTransition",
    "ItemDetail",
    "ItemNotFound",
    "ItemSummary",
    "Revalidation",
    "ReviewFilter",
    "Rule",
    "approve",
    "assign",
    "bulk",
    "count_items",
    "enqueue_all",
    "enqueue_region",
    "get_item",
    "list_items",
    "neighbours",
    "reject",
    "revalidate",
    "save_edits",
    "waive",
]


class ReviewError(ValueError):
    """A review action that cannot be done as asked; the message says why."""


class InvalidTransition(ReviewError):
    """The item's status does not allow this action (or another steward changed it first)."""


class FixInvalid(ReviewError):
    """The edited row still breaks the contract; `revalidation.errors` lists what."""

    def __init__(self, message: str, revalidation: Revalidation) -> None:
        super().__init__(message)
        self.revalidation = revalidation


class ItemNotFound(LookupError):
    """No review item with that id."""


@dataclass(frozen=True)
class ReviewFilter:
    """What to show or act on; every field narrows (None: no restriction). Age is days since quarantined."""

    regions: frozenset[str] | None = None
    rules: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    source_file: str | None = None
    creator_id: str | None = None
    min_age_days: float | None = None
    max_age_days: float | None = None
    item_ids: frozenset[int] | None = None
    #: part of a transaction id, creator id or product id (case-insensitive)
    search: str | None = None
    #: an account name, or `UNASSIGNED` for items nobody has taken
    assignee: str | None = None


#: `ReviewFilter.assignee` value selecting items nobody has taken.
UNASSIGNED = ""


@dataclass
class ItemSummary:
    id: int
    region: str
    source_file: str
    source_row: int
    transaction_id: str | None
    creator_id: str | None
    local_date: dt.date | None
    status: str
    hold: str | None
    rules: list[Rule]
    edited: bool
    quarantined_at: dt.datetime
    updated_at: dt.datetime
    product_id: str | None = None
    assignee: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "region": self.region,
            "source_file": self.source_file,
            "source_row": self.source_row,
            "transaction_id": self.transaction_id,
            "creator_id": self.creator_id,
            "product_id": self.product_id,
            "assignee": self.assignee,
            "local_date": as_text(self.local_date),
            "status": self.status,
            "hold": self.hold,
            "rules": [r.as_dict() for r in self.rules],
            "edited": self.edited,
            "quarantined_at": as_text(self.quarantined_at),
            "updated_at": as_text(self.updated_at),
        }


@dataclass
class AuditEntry:
    id: int
    item_id: int
    actor: str
    action: str
    at: dt.datetime
    before: dict | None
    after: dict | None
    reason: str | None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "item_id": self.item_id,
            "actor": self.actor,
            "action": self.action,
            "at": as_text(self.at),
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


@dataclass
class ItemDetail(ItemSummary):
    quarantine_id: str = ""
    batch_id: str = ""
    raw_record: dict = field(default_factory=dict)
    parsed: dict = field(default_factory=dict)
    edits: dict[str, str] = field(default_factory=dict)
    #: the row with the saved edits applied, and the contract's verdict on it
    revalidation: Revalidation | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    applied_batch: str | None = None
    history: list[AuditEntry] = field(default_factory=list)

    @property
    def form_values(self) -> dict[str, str]:
        """Each editable column's current text (the edit if there is one, else the parsed value)."""
        return {c: self.edits.get(c, as_text(self.parsed.get(c)) or "") for c in EDITABLE_COLUMNS}

    def as_dict(self) -> dict:
        return {
            **super().as_dict(),
            "quarantine_id": self.quarantine_id,
            "batch_id": self.batch_id,
            "raw_record": self.raw_record,
            "parsed": self.parsed,
            "edits": self.edits,
            "revalidation": self.revalidation.as_dict() if self.revalidation else None,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
            "applied_batch": self.applied_batch,
            "history": [h.as_dict() for h in self.history],
        }


@dataclass
class BulkResult:
    action: str
    done: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "done": self.done,
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped],
        }


# ---------------------------------------------------------------------------------------------------- reading


def list_items(
    settings: Settings, actor: Actor, flt: ReviewFilter | None = None, limit: int = 50, offset: int = 0
) -> list[ItemSummary]:
    """Items the actor may see that match the filter, oldest first."""
    query = _filtered(select(db.items), actor, flt or ReviewFilter()).order_by(db.items.c.id).limit(limit)
    with db.engine_for(settings.app_db_url).connect() as con:
        return [_summary(row) for row in con.execute(query.offset(offset)).mappings()]


def count_items(
    settings: Settings, actor: Actor, flt: ReviewFilter | None = None, group_by: str | None = None
) -> dict[str, int]:
    """How many items match, in all (`{"all": n}`) or per value of `group_by` (region, status, rule, ...)."""
    flt = flt or ReviewFilter()
    with db.engine_for(settings.app_db_url).connect() as con:
        if group_by is None:
            query = _filtered(select(func.count()).select_from(db.items), actor, flt)
            return {"all": con.execute(query).scalar_one()}
        if group_by not in GROUPS:
            raise ReviewError(f"cannot group by {group_by!r}; choose one of {', '.join(GROUPS)}")
        if group_by == "rule":
            key = db.item_rules.c.rule
            base = select(key, func.count(func.distinct(db.items.c.id))).select_from(
                db.items.join(db.item_rules, db.item_rules.c.item_id == db.items.c.id)
            )
        else:
            key = db.items.c[group_by]
            base = select(key, func.count()).select_from(db.items)
        query = _filtered(base, actor, flt).group_by(key).order_by(key)
        return {("" if k is None else str(k)): n for k, n in con.execute(query).all()}


def get_item(settings: Settings, actor: Actor, item_id: int) -> ItemDetail:
    """Everything about one item, if the actor may see its region (else `PermissionDenied`)."""
    with db.engine_for(settings.app_db_url).connect() as con:
        row = _load(con, actor, item_id)
        history = [
            AuditEntry(**h)
            for h in con.execute(
                select(db.audit).where(db.audit.c.item_id == item_id).order_by(db.audit.c.id)
            ).mappings()
        ]
    detail = _detail(row, history)
    detail.revalidation = _revalidate(settings, [(row, dict(row["edits"] or {}))])[0]
    return detail


def revalidate(settings: Settings, actor: Actor, item_id: int, edits: dict[str, str]) -> Revalidation:
    """The contract's verdict on the item with `edits` applied over its saved edits. Changes nothing."""
    with db.engine_for(settings.app_db_url).connect() as con:
        row = _load(con, actor, item_id)
    return _revalidate(settings, [(row, _merged(row, edits))])[0]


def neighbours(
    settings: Settings, actor: Actor, flt: ReviewFilter | None, item_id: int
) -> tuple[int | None, int | None]:
    """The previous and next item of the filtered queue around `item_id` (in the queue's order, oldest first), so a
    steward can walk a filter record by record. The item itself need not match the filter any more (it was just
    decided): its neighbours are found by id."""
    flt = flt or ReviewFilter()
    c = db.items.c
    with db.engine_for(settings.app_db_url).connect() as con:
        before = con.execute(_filtered(select(func.max(c.id)), actor, flt).where(c.id < item_id)).scalar()
        after = con.execute(_filtered(select(func.min(c.id)), actor, flt).where(c.id > item_id)).scalar()
    return before, after


# --------------------------------------------------------------------------------------------------- deciding


def assign(
    settings: Settings, actor: Actor, item_id: int, assignee: str | None, *, seen: dt.datetime | None = None
) -> None:
    """Take an item (`assignee=actor.name`, "assign to me"), hand it back (None). Only a steward of the region, and
    only while the item is open: a decided item needs nobody. Taking one someone else holds is allowed (people go
    on leave) and audited with whose it was; two stewards taking it at once get one assignment and one
    `InvalidTransition`, as for decisions."""
    if assignee is not None and assignee != actor.name:
        raise PermissionDenied(f"{actor.name} may assign items to themselves only")
    with db.engine_for(settings.app_db_url).begin() as con:
        row = _load(con, actor, item_id)
        actor.require_change(row["region"])
        _require_open(row, "assign")
        _require_unchanged(row, seen)
        if row["assignee"] == assignee:
            return
        now = db.now()
        changed = con.execute(
            update(db.items)
            .where(
                db.items.c.id == item_id,
                db.items.c.status == row["status"],
                db.items.c.updated_at == row["updated_at"],
            )
            .values(assignee=assignee, updated_at=now)
        ).rowcount
        if changed != 1:
            raise InvalidTransition(f"item {item_id} was changed by someone else meanwhile; reload it")
        write_audit(
            con,
            [
                {
                    "item_id": item_id,
                    "actor": actor.name,
                    "action": "assign" if assignee else "unassign",
                    "at": now,
                    "before": {"status": row["status"], "assignee": row["assignee"]},
                    "after": {"status": row["status"], "assignee": assignee},
                    "reason": None,
                }
            ],
        )


def save_edits(
    settings: Settings, actor: Actor, item_id: int, edits: dict[str, str], *, seen: dt.datetime | None = None
) -> Revalidation:
    """Keep the steward's edits (even if the row is not valid yet: work in progress) and return the verdict."""
    with db.engine_for(settings.app_db_url).begin() as con:
        row = _load(con, actor, item_id)
        actor.require_change(row["region"])
        _require_open(row, "edit")
        _require_unchanged(row, seen)
        merged = _merged(row, edits)
        verdict = _revalidate(settings, [(row, merged)])[0]
        _transition(
            con,
            row,
            actor.name,
            "edit",
            "in_review",
            reason=None,
            values={"edits": merged},
            after_extra={"edits": merged, "errors": [e.as_dict() for e in verdict.errors]},
        )
    return verdict


def approve(
    settings: Settings,
    actor: Actor,
    item_id: int,
    reason: str | None = None,
    edits: dict[str, str] | None = None,
    *,
    seen: dt.datetime | None = None,
) -> Revalidation:
    """Approve the fix (saving `edits` first if given) if the edited row passes the contract; status `fixed`."""
    with db.engine_for(settings.app_db_url).begin() as con:
        row = _load(con, actor, item_id)
        actor.require_change(row["region"])
        _require_open(row, "approve")
        _require_unchanged(row, seen)
        merged = _merged(row, edits or {})
        verdict = _revalidate(settings, [(row, merged)])[0]
        if not verdict.ok:
            raise FixInvalid(f"item {item_id} still breaks the contract: {_describe(verdict)}", verdict)
        # Approved over the notice that its time counts a second refund, with that time saved before (so the record
        # showed the notice): the steward's answer, which the fix batch honours instead of asking it again. A time
        # typed into the approval itself was told only afterwards, and is asked again when the fix loads.
        second = counts_a_second_refund(verdict.notices) and merged.get("occurred_at") == dict(row["edits"] or {}).get(
            "occurred_at"
        )
        _transition(
            con,
            row,
            actor.name,
            "approve",
            "fixed",
            reason=reason,
            values={"edits": merged, "decided_by": actor.name, "decision_reason": reason},
            # what the steward was told and approved over (a refund counted a second time), kept with the decision
            after_extra={
                "edits": merged,
                **({"notices": [n.as_dict() for n in verdict.notices]} if verdict.notices else {}),
                **({SECOND_REFUND: True} if second else {}),
            },
        )
    return verdict


def waive(
    settings: Settings, actor: Actor, item_id: int, justification: str, *, seen: dt.datetime | None = None
) -> Revalidation:
    """Accept the row as it is (with its saved edits) despite warning-level rules; status `waived`."""
    if not (justification or "").strip():
        raise ReviewError("a waiver needs a justification")
    with db.engine_for(settings.app_db_url).begin() as con:
        row = _load(con, actor, item_id)
        actor.require_change(row["region"])
        _require_open(row, "waive")
        _require_unchanged(row, seen)
        verdict = _revalidate(settings, [(row, dict(row["edits"] or {}))])[0]
        problem = _not_waivable(verdict)
        if problem:
            raise FixInvalid(f"item {item_id}: {problem}", verdict)
        _transition(
            con,
            row,
            actor.name,
            "waive",
            "waived",
            reason=justification,
            values={"decided_by": actor.name, "decision_reason": justification},
            after_extra={"waived_rules": sorted({e.rule for e in verdict.errors})},
        )
    return verdict


def reject(settings: Settings, actor: Actor, item_id: int, reason: str, *, seen: dt.datetime | None = None) -> None:
    """Reject the record for good (it stays quarantined, marked rejected in its store at the next reprocess)."""
    if not (reason or "").strip():
        raise ReviewError("a rejection needs a reason")
    with db.engine_for(settings.app_db_url).begin() as con:
        row = _load(con, actor, item_id)
        actor.require_change(row["region"])
        _require_open(row, "reject")
        _require_unchanged(row, seen)
        _transition(
            con,
            row,
            actor.name,
            "reject",
            "rejected",
            reason=reason,
            values={"decided_by": actor.name, "decision_reason": reason},
        )


def bulk(settings: Settings, actor: Actor, flt: ReviewFilter, action: str, reason: str | None) -> BulkResult:
    """Apply one action to every item the filter selects within the actor's scope; say why any were skipped.

    Approvals and waivers re-validate all selected rows in one pass of the contract; each item is then changed
    with its own compare-and-set update and audit row, all in one transaction.
    """
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if actor.role != "steward":
        raise PermissionDenied(f"{actor.name} ({actor.role}) may not change records")
    if action in {"waive", "reject"} and not (reason or "").strip():
        raise ReviewError(f"a bulk {action} needs a {'justification' if action == 'waive' else 'reason'}")
    result = BulkResult(action)
    with db.engine_for(settings.app_db_url).begin() as con:
        rows = list(con.execute(_filtered(select(db.items), actor, flt).order_by(db.items.c.id)).mappings())
        candidates = []
        for row in rows:
            if not actor.can_change(row["region"]):
                result.skipped.append((row["id"], f"{actor.name} may not change {row['region']} records"))
            elif row["status"] not in OPEN:
                result.skipped.append((row["id"], f"status is {row['status']}"))
            else:
                candidates.append(row)
        verdicts: list[Revalidation | None] = [None] * len(candidates)
        if action != "reject":
            verdicts = list(_revalidate(settings, [(r, dict(r["edits"] or {})) for r in candidates]))
        for row, verdict in zip(candidates, verdicts, strict=True):
            if action == "approve" and verdict is not None and not verdict.ok:
                result.skipped.append((row["id"], f"still breaks the contract: {_describe(verdict)}"))
                continue
            if action == "waive" and verdict is not None and (problem := _not_waivable(verdict)):
                result.skipped.append((row["id"], problem))
                continue
            new_status = {"approve": "fixed", "waive": "waived", "reject": "rejected"}[action]
            try:
                _transition(
                    con,
                    row,
                    actor.name,
                    action,
                    new_status,
                    reason=reason,
                    values={"decided_by": actor.name, "decision_reason": reason},
                    after_extra={"bulk": True},
                )
            except InvalidTransition as exc:
                result.skipped.append((row["id"], str(exc)))
                continue
            result.done.append(row["id"])
    return result


# --------------------------------------------------------------------------------------------------- internals


def _filtered(query: Select, actor: Actor, flt: ReviewFilter) -> Select:
    """`query` restricted to the actor's regions and the filter."""
    c = db.items.c
    regions = actor.regions
    if flt.regions is not None:
        wanted = {r.upper() for r in flt.regions}
        regions = wanted if regions is None else wanted & regions
    if regions is not None:
        query = query.where(c.region.in_(sorted(regions)))
    if flt.statuses:
        query = query.where(c.status.in_(sorted(flt.statuses)))
    if flt.rules:
        query = query.where(
            c.id.in_(select(db.item_rules.c.item_id).where(db.item_rules.c.rule.in_(sorted(flt.rules))))
        )
    if flt.source_file:
        query = query.where(c.source_file == flt.source_file)
    if flt.creator_id:
        query = query.where(c.creator_id == flt.creator_id)
    if flt.item_ids is not None:  # an id no item can have selects nothing, like an id that does not exist
        query = query.where(c.id.in_(sorted(i for i in flt.item_ids if _storable_id(i))))
    if flt.search:
        pattern = "%" + flt.search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(*(func.lower(col).like(pattern, escape="\\") for col in (c.transaction_id, c.creator_id, c.product_id)))
        )
    if flt.assignee is not None:
        query = query.where(c.assignee.is_(None) if flt.assignee == UNASSIGNED else c.assignee == flt.assignee)
    now = db.now()
    if flt.min_age_days is not None:  # older than the calendar: nothing is
        cutoff = _age_cutoff(now, flt.min_age_days, "minimum age")
        query = query.where(false() if cutoff is None else c.quarantined_at <= cutoff)
    if flt.max_age_days is not None:  # newer than the calendar's first day: everything is
        cutoff = _age_cutoff(now, flt.max_age_days, "maximum age")
        if cutoff is not None:
            query = query.where(c.quarantined_at >= cutoff)
    return query


def _age_cutoff(now: dt.datetime, days: float, label: str) -> dt.datetime | None:
    """The moment `days` before `now`, or None when that falls before the calendar's first day (an age of a
    million days is a valid question whose answer the date type cannot hold). A negative or non-finite age is no
    age at all and is refused."""
    if not math.isfinite(days) or days < 0:
        raise ReviewError(f"the {label} must be a finite number of days, 0 or more, not {days!r}")
    try:
        return now - dt.timedelta(days=days)
    except OverflowError:  # past timedelta's range, or a date before year 1
        return None


def _storable_id(item_id: int) -> bool:
    """Whether the database's integers (64 bits) can hold `item_id`: a larger one names no item, and must not reach
    the driver (SQLite raises OverflowError rather than matching nothing)."""
    return INT64_MIN <= item_id <= INT64_MAX


def _load(con: Connection, actor: Actor, item_id: int):
    row = None
    if _storable_id(item_id):
        row = con.execute(select(db.items).where(db.items.c.id == item_id)).mappings().first()
    if row is None:
        raise ItemNotFound(f"no review item {item_id}")
    if not actor.can_see(row["region"]):
        raise PermissionDenied(f"{actor.name} may not see {row['region']} records")
    return row


def _require_open(row, action: str) -> None:
    if row["status"] not in OPEN:
        raise InvalidTransition(
            f"item {row['id']} is {row['status']}: {action} is only possible while it is new or in review"
        )


def _require_unchanged(row, seen: dt.datetime | None) -> None:
    """A decision is taken on the record as the steward saw it (`seen`: its last change when the page was drawn).
    Without it, an approval from a page opened before a colleague saved edits went through and dropped those edits
    (`_merged` keeps a form's untouched field, equal to the parsed value, as "no edit")."""
    if seen is not None and row["updated_at"] != seen:
        raise InvalidTransition(
            f"item {row['id']} was changed by someone else since you opened it; nothing was changed: reload it to "
            "see the change"
        )


def _transition(
    con: Connection,
    row,
    actor: str,
    action: str,
    new_status: str,
    *,
    reason: str | None,
    values: dict | None = None,
    after_extra: dict | None = None,
) -> None:
    """Compare-and-set the item as it was read (its status and its last change, so that two stewards saving edits to
    the same in-review item cannot both win, the second over edits it never saw) and append the audit row, in the
    caller's transaction."""
    now = db.now()
    changed = con.execute(
        update(db.items)
        .where(
            db.items.c.id == row["id"],
            db.items.c.status == row["status"],
            db.items.c.updated_at == row["updated_at"],
        )
        .values(status=new_status, updated_at=now, **(values or {}))
    ).rowcount
    if changed != 1:
        raise InvalidTransition(f"item {row['id']} was changed by someone else meanwhile; reload it")
    write_audit(
        con,
        [
            {
                "item_id": row["id"],
                "actor": actor,
                "action": action,
                "at": now,
                "before": {"status": row["status"], "edits": dict(row["edits"] or {})},
                "after": {"status": new_status, **(after_extra or {})},
                "reason": reason,
            }
        ],
    )


def _merged(row, edits: dict[str, str]) -> dict[str, str]:
    """Saved edits updated with new ones; an edit equal to the parsed value is dropped (it changes nothing)."""
    merged = dict(row["edits"] or {})
    parsed = row["parsed"] or {}
    for column, text in edits.items():
        text = "" if text is None else str(text)
        if (as_text(parsed.get(column)) or "") == text.strip():
            merged.pop(column, None)
        else:
            merged[column] = text
    return merged


def _revalidate(settings: Settings, rows_and_edits: list[tuple]) -> list[Revalidation]:
    if not rows_and_edits:
        return []
    regions = {row["region"] for row, _ in rows_and_edits}
    creators = known_creators(settings.registry_dir, regions)
    candidates = [Candidate(row["region"], row["parsed"], edits) for row, edits in rows_and_edits]
    verdicts = [
        still_a_repeat(candidate, _rules(row), verdict)
        for candidate, (row, _), verdict in zip(
            candidates, rows_and_edits, revalidate_rows(candidates, creators), strict=True
        )
    ]
    # Told while the record is open (a decided one has been answered); a row already held by the rule itself names
    # the stored refund in its reason, and approved unchanged it loads as the second refund, asked nothing more.
    asked = [
        i
        for i, (row, _) in enumerate(rows_and_edits)
        if row["status"] in OPEN and REPEAT_OTHER_TIME not in {r.rule for r in _rules(row)}
    ]
    for i, notices in zip(asked, refund_time_notices(settings, [candidates[i] for i in asked]), strict=True):
        verdicts[i].notices = notices
    return verdicts


def _not_waivable(verdict: Revalidation) -> str | None:
    if verdict.ok:
        return "nothing to waive: the row passes the contract (approve it instead)"
    if not verdict.waivable:
        blocking = sorted({e.rule for e in verdict.errors if e.severity != "warning"})
        return f"only warning-level rules can be waived; still broken: {', '.join(blocking)}"
    return None


def _describe(verdict: Revalidation) -> str:
    return "; ".join(f"{e.rule} on {e.column} ({e.value!r})" for e in verdict.errors)


def _rules(row) -> list[Rule]:
    return [Rule(r.get("rule"), r.get("column"), r.get("value"), r.get("severity", "error")) for r in row["rules"]]


def _summary(row) -> ItemSummary:
    return ItemSummary(
        id=row["id"],
        region=row["region"],
        source_file=row["source_file"],
        source_row=row["source_row"],
        transaction_id=row["transaction_id"],
        creator_id=row["creator_id"],
        local_date=row["local_date"],
        status=row["status"],
        hold=row["hold"],
        rules=_rules(row),
        edited=bool(row["edits"]),
        quarantined_at=row["quarantined_at"],
        updated_at=row["updated_at"],
        product_id=row["product_id"],
        assignee=row["assignee"],
    )


def _detail(row, history: list[AuditEntry]) -> ItemDetail:
    summary = _summary(row)
    return ItemDetail(
        **summary.__dict__,
        quarantine_id=row["quarantine_id"],
        batch_id=row["batch_id"],
        raw_record=row["raw_record"],
        parsed=row["parsed"],
        edits=dict(row["edits"] or {}),
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        applied_batch=row["applied_batch"],
        history=history,
    )
