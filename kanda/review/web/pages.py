"""The review queue, a record's detail and edit form, and the actions on them (one record or in bulk).

Every read and change goes through `kanda.review.service` with the signed-in account's `Actor`, which enforces
role and region scope; these routes add what only a web page needs: CSRF checks, viewers getting no forms, and
errors shown as pages. A record outside the account's regions answers 404 exactly like a record that does not
exist, so record numbers do not reveal what other regions hold.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kanda.review.accounts import Account
from kanda.review.actor import PermissionDenied
from kanda.review.typed import reason_problem
from kanda.review.web.render import render
from kanda.review.web.security import CheckedForm, PageError, SignedIn, require_steward
from kanda.settings import Settings
from regions import all_regions

router = APIRouter()

PAGE_SIZE = 50
#: The queue's status choices: the open work by default, any status, or one status.
OPEN_STATUSES = ("new", "in_review")
FILTER_FIELDS = ("q", "region", "rule", "status", "assignee", "source_file", "creator", "min_age", "max_age")
#: The assignee filter's special values: items nobody took, and the signed-in steward's own.
ASSIGNEE_NOBODY = "nobody"
ASSIGNEE_ME = "me"


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filter as the page's query string carries it (text, as typed), and its service filter."""

    q: str = ""
    region: str = ""
    rule: str = ""
    status: str = "open"
    assignee: str = ""
    source_file: str = ""
    creator: str = ""
    min_age: str = ""
    max_age: str = ""

    @classmethod
    def from_mapping(cls, values) -> QueueQuery:
        fields = {name: str(values.get(name) or "").strip() for name in FILTER_FIELDS}
        return cls(**fields | {"status": fields["status"] or "open"})

    def review_filter(self, item_ids: frozenset[int] | None = None, me: str | None = None):
        from kanda.review.service import STATUSES, UNASSIGNED, ReviewFilter

        if self.status == "open":
            statuses = frozenset(OPEN_STATUSES)
        elif self.status in STATUSES:
            statuses = frozenset({self.status})
        else:  # "all"
            statuses = None
        return ReviewFilter(
            regions=frozenset({self.region.upper()}) if self.region else None,
            rules=frozenset({self.rule}) if self.rule else None,
            statuses=statuses,
            source_file=self.source_file or None,
            creator_id=self.creator.upper() or None,
            min_age_days=_days(self.min_age, "minimum age"),
            max_age_days=_days(self.max_age, "maximum age"),
            item_ids=item_ids,
            search=self.q or None,
            assignee={"": None, ASSIGNEE_NOBODY: UNASSIGNED, ASSIGNEE_ME: me}.get(self.assignee, self.assignee),
        )

    def query_string(self, **extra: object) -> str:
        values = {name: getattr(self, name) for name in FILTER_FIELDS if getattr(self, name)}
        return urlencode(values | {k: v for k, v in extra.items() if v not in (None, "")})


def _days(text: str, label: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise PageError(400, "Bad filter", f"The {label} is a number of days, not {text!r}.") from None
    if not math.isfinite(value):
        raise PageError(400, "Bad filter", f"The {label} is a number of days, not {text!r}.")
    if value < 0:
        raise PageError(400, "Bad filter", f"The {label} cannot be negative.")
    return value


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _take_flash(request: Request) -> tuple[str | None, str | None]:
    flash = request.session.pop("flash", None)
    return (flash[0], flash[1]) if flash else (None, None)


def _flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = [message, kind]


def status_counts(settings: Settings, account: Account, region: str) -> list[tuple[str, int]]:
    """Items per status in one region, in the status machine's order (for the quality page)."""
    from kanda.review.service import STATUSES, ReviewFilter, count_items

    counts = count_items(settings, account.actor, ReviewFilter(regions=frozenset({region})), group_by="status")
    return [(status, counts[status]) for status in STATUSES if counts.get(status)]


# ------------------------------------------------------------------------------------------------------ queue


@router.get("/")
def home(account: SignedIn) -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, account: SignedIn, page: int = 1) -> HTMLResponse:
    from kanda.review.service import STATUSES, count_items, list_items

    settings, actor = _settings(request), account.actor
    query = QueueQuery.from_mapping(request.query_params)
    flt = query.review_filter(me=actor.name)
    total = count_items(settings, actor, flt)["all"]
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    items = list_items(settings, actor, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    by_status = count_items(settings, actor, _without(query, "status").review_filter(me=actor.name), group_by="status")
    by_rule = count_items(settings, actor, flt, group_by="rule")
    all_rules = sorted(count_items(settings, actor, None, group_by="rule"))
    source_files = sorted(count_items(settings, actor, None, group_by="source_file"))
    flash, kind = _take_flash(request)
    request.session["queue_filter"] = {k: v for k, v in query.__dict__.items() if v}  # for previous/next
    now = dt.datetime.now(dt.UTC)
    return render(
        request,
        "queue.html",
        account,
        nav="queue",
        query=query,
        items=items,
        ages={item.id: _age(now - item.quarantined_at) for item in items},
        total=total,
        page=page,
        pages=pages,
        by_status=[(s, by_status.get(s, 0)) for s in STATUSES],
        open_count=sum(by_status.get(s, 0) for s in OPEN_STATUSES),
        by_rule=sorted(by_rule.items(), key=lambda kv: -kv[1]),
        rules=all_rules,
        source_files=source_files,
        statuses=STATUSES,
        regions=[code for code in all_regions() if actor.can_see(code)],
        assignees=sorted(k for k in count_items(settings, actor, None, group_by="assignee") if k),
        flash=flash,
        flash_kind=kind,
    )


@router.get("/queue.csv")
def queue_csv(request: Request, account: SignedIn) -> Response:
    """The current filter's records as CSV (every page, not only the one shown), for a spreadsheet or a ticket.

    Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) are prefixed with a quote: record
    fields come from payment files, which anyone who can pay can write into.
    """
    from kanda.review.service import list_items

    settings, actor = _settings(request), account.actor
    query = QueueQuery.from_mapping(request.query_params)
    items = list_items(settings, actor, query.review_filter(me=actor.name), limit=1_000_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = item.as_dict() | {"rules": "; ".join(f"{r.rule}:{r.column or ''}" for r in item.rules)}
        writer.writerow([_cell(row.get(c)) for c in CSV_COLUMNS])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="kanda-review-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


CSV_COLUMNS = (
    "id", "region", "status", "assignee", "transaction_id", "creator_id", "product_id", "local_date", "rules",
    "source_file", "source_row", "hold", "edited", "quarantined_at", "updated_at",
)  # fmt: skip


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _without(query: QueueQuery, field: str) -> QueueQuery:
    return QueueQuery(**{name: getattr(query, name) for name in FILTER_FIELDS} | {field: "all"})


def _age(delta: dt.timedelta) -> str:
    if delta.days >= 1:
        return f"{delta.days} d"
    hours = delta.seconds // 3600
    return f"{hours} h" if hours else f"{max(delta.seconds // 60, 1)} min"


@router.post("/queue/bulk")
def bulk_action(request: Request, account: SignedIn, form: CheckedForm) -> Response:
    """One action over the selected records, or over every record matching the filter the page showed."""
    from kanda.review.service import ACTIONS, ReviewError, bulk

    require_steward(account)
    query = QueueQuery.from_mapping(form)
    action = str(form.get("action") or "")
    reason = str(form.get("reason") or "").strip() or None
    if not action:
        _flash(request, "Choose an action first: nothing was changed.", "error")
        return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)
    if action not in ACTIONS:
        raise PageError(400, "Unknown action", f"Choose one of {', '.join(ACTIONS)}.")
    if problem := reason_problem(reason):
        _flash(request, f"Nothing was changed: {problem}.", "error")
        return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)
    if form.get("scope") == "all":
        flt = query.review_filter(me=account.actor.name)
    else:
        try:
            ids = frozenset(int(v) for v in form.getlist("item_id"))
        except ValueError:
            raise PageError(400, "Bad selection", "Record numbers are whole numbers.") from None
        if not ids:
            _flash(request, "Select at least one record, or choose “all matching the filter”.", "error")
            return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)
        flt = query.review_filter(item_ids=ids, me=account.actor.name)
    try:
        result = bulk(_settings(request), account.actor, flt, action, reason)
    except PermissionDenied as exc:
        raise PageError(403, "Not allowed", str(exc)) from None
    except ReviewError as exc:
        _flash(request, str(exc), "error")
        return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)
    past = {"approve": "approved", "waive": "waived", "reject": "rejected"}[action]
    message = f"{len(result.done)} record(s) {past}."
    if result.skipped:
        reasons = "; ".join(f"#{i}: {why}" for i, why in result.skipped[:5])
        more = f" (and {len(result.skipped) - 5} more)" if len(result.skipped) > 5 else ""
        message += f" {len(result.skipped)} skipped: {reasons}{more}."
    _flash(request, message, "warn" if result.skipped else "ok")
    return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)


# ----------------------------------------------------------------------------------------------------- record


def _load(request: Request, account: Account, item_id: int):
    from kanda.review.service import ItemNotFound, get_item

    try:
        return get_item(_settings(request), account.actor, item_id)
    except (ItemNotFound, PermissionDenied):
        raise PageError(404, "No such record", f"There is no record #{item_id} in the regions you may see.") from None


def _record_page(
    request: Request,
    account: Account,
    item_id: int,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    verdict=None,
    flash: str | None = None,
    flash_kind: str = "error",
    will_store: dict[str, str] | None = None,
    unreadable: dict[str, str] | None = None,
) -> HTMLResponse:
    from kanda.review.notation import MONEY_FIELDS, RailContext
    from kanda.review.revalidate import registry_choices
    from kanda.review.service import EDITABLE_COLUMNS, OPEN, neighbours

    item = _load(request, account, item_id)
    settings = _settings(request)
    if flash is None:
        flash, flash_kind = _take_flash(request)  # type: ignore[assignment]
    verdict = verdict if verdict is not None else item.revalidation
    errors: dict[str, list[str]] = {column: [message] for column, message in (unreadable or {}).items()}
    other_errors = []
    for error in verdict.errors if verdict else []:
        if error.column in EDITABLE_COLUMNS:
            if error.column not in (unreadable or {}):
                errors.setdefault(error.column, []).append(_rule_text(error))
        else:
            other_errors.append(error)
    rail = RailContext.of(item.region, item.raw_record)
    if values is None:
        values = _form_values(rail, item)
    if will_store is None:
        will_store = _will_store(rail, verdict.row if verdict else {})
    query = QueueQuery.from_mapping(dict(request.session.get("queue_filter") or {}))
    before, after = neighbours(settings, account.actor, query.review_filter(me=account.actor.name), item_id)
    creators, products = registry_choices(settings.registry_dir, item.region)
    fields = [(MONEY_INPUTS.get(c, c), c) for c in EDITABLE_COLUMNS]
    return render(
        request,
        "record.html",
        account,
        nav="queue",
        status_code=status_code,
        item=item,
        raw_fields=[
            (k, v if isinstance(v, str) or v is None else json.dumps(v, ensure_ascii=False, default=str))
            for k, v in item.raw_record.items()
        ],
        as_in_file={
            r.column: rail.raw_text(item.raw_record, r.column, item.parsed.get("event_type"))
            for r in item.rules
            if r.column
        },
        fields=fields,
        money_inputs=set(MONEY_FIELDS),
        values=values,
        will_store=will_store,
        money_hint=rail.money_hint(),
        time_hint=rail.time_hint(),
        verdict=verdict,
        field_errors=errors,
        other_errors=other_errors,
        editable=account.actor.can_change(item.region) and item.status in OPEN,
        # the waiver form only where it can succeed: warning-level rules are all that is left
        waivable=bool(item.revalidation and item.revalidation.waivable),
        previous_id=before,
        next_id=after,
        queue_link=f"/queue?{query.query_string()}",
        creators=creators,
        products=products,
        flash=flash,
        flash_kind=flash_kind,
    )


#: Contract money column -> the form field that takes it in the rail's notation.
MONEY_INPUTS = {"amount_minor": "amount", "fee_minor": "fee", "net_minor": "net"}


def _form_values(rail, item) -> dict[str, str]:
    """The form's text: money and time in the rail's notation (the saved edit, else the parsed value, else the
    file's own unreadable text, so the steward corrects `12,3O0.00` rather than retyping it); the rest as stored."""
    from kanda.review.notation import TIME_FIELD

    values, event = dict(item.form_values), item.parsed.get("event_type")
    for column, name in MONEY_INPUTS.items():
        text = values.pop(column, "")
        try:
            as_in_file = rail.raw_text(item.raw_record, column, event)
            values[name] = rail.money_text(int(text)) if text else (as_in_file or "")
        except ValueError:
            values[name] = text
    when = values.get(TIME_FIELD, "")
    with contextlib.suppress(ValueError):
        values[TIME_FIELD] = (
            rail.time_text(dt.datetime.fromisoformat(when.replace("Z", "+00:00")))
            if when
            else rail.raw_text(item.raw_record, TIME_FIELD, event) or ""
        )
    return values


def _will_store(rail, row: dict) -> dict[str, str]:
    """What the money and time columns of a (re-validated) row will store, in minor units and UTC."""
    shown = {}
    for column in MONEY_INPUTS:
        if row.get(column) not in (None, ""):
            shown[column] = rail.will_store_money(int(row[column]))
    if row.get("occurred_at"):
        shown["occurred_at"] = rail.will_store_time(
            dt.datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
        )
    return shown


def _rule_text(error) -> str:
    if error.severity == "warning":
        return f"{error.rule} (warning, can be waived)"
    if error.severity == "hold":
        return f"{error.rule}: not in the creator registry yet"
    return error.rule


@router.get("/records/{item_id}", response_class=HTMLResponse)
def record(item_id: int, request: Request, account: SignedIn) -> HTMLResponse:
    return _record_page(request, account, item_id)


def _form_edits(item, form) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The form's fields as canonical edits (rail notation converted by ingestion's parsing), what they will
    store, and the fields that could not be read. A converted value equal to the stored one is given in the stored
    text, so that the service sees "unchanged" (and drops an earlier edit of it)."""
    from kanda.review.notation import MONEY_FIELDS, RailContext, convert
    from kanda.review.revalidate import as_text
    from kanda.review.service import EDITABLE_COLUMNS
    from kanda.review.typed import MAX_VALUE_CHARS, value_problem

    rail = RailContext.of(item.region, item.raw_record)
    typed = {c: str(form.get(c) or "") for c in EDITABLE_COLUMNS if c in form}  # canonical, e.g. from a script
    typed |= {name: str(form.get(name) or "") for name in MONEY_FIELDS if name in form}
    converted = convert(rail, typed)
    errors = dict(converted.errors)
    columns = {name: column for column, name in MONEY_INPUTS.items()}
    for name, text in typed.items():  # length, and odd characters in a changed id (`kanda.review.typed`)
        column = columns.get(name, name)
        changed = text.strip() != (as_text(item.parsed.get(column)) or "")
        problem = value_problem(column, text) if changed or len(text) > MAX_VALUE_CHARS else None
        if problem:
            errors[column] = f"cannot take this value: {problem}"
    edits = {column: text for column, text in converted.edits.items() if column not in errors}
    for column, text in converted.edits.items():
        if column in errors:
            continue
        stored = item.parsed.get(column)
        if stored is None or not text:
            continue
        if column in MONEY_INPUTS and str(stored) == text:
            edits[column] = as_text(stored) or ""
        elif column == "occurred_at":
            try:
                same = dt.datetime.fromisoformat(str(stored)) == dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                same = False
            if same:
                edits[column] = as_text(stored) or ""
    return edits, converted.will_store, errors


@router.post("/records/{item_id}/edit", response_class=HTMLResponse)
def edit(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    """The edit form's three buttons: check (re-validate, change nothing), save the edits, approve the fix."""
    from kanda.review.service import FixInvalid, InvalidTransition, ReviewError, approve, revalidate, save_edits

    require_steward(account)
    item = _load(request, account, item_id)  # 404 before anything else for a record out of scope
    edits, will_store, unreadable = _form_edits(item, form)
    shown = {k: str(v) for k, v in form.items() if k not in {"op", "note", "csrf_token", "seen"}}
    op = str(form.get("op") or "check")
    settings, actor = _settings(request), account.actor
    approval_note = str(form.get("note") or "").strip() or None
    if op == "approve" and (problem := reason_problem(approval_note, "note")):
        values = _merge_values(request, account, item_id, shown)
        flash = f"Not approved: {problem}."
        return _record_page(request, account, item_id, status_code=400, values=values, flash=flash)
    if unreadable:
        verdict = revalidate(settings, actor, item_id, edits)
        return _record_page(
            request,
            account,
            item_id,
            status_code=422,
            values=_merge_values(request, account, item_id, shown),
            verdict=verdict,
            will_store=will_store,
            unreadable=unreadable,
            flash=("Not approved" if op == "approve" else "Nothing was saved")
            + ": some values cannot be read (see the fields marked below).",
        )
    try:
        if op == "save":
            verdict = save_edits(settings, actor, item_id, edits, seen=_seen(form))
            note = "passes the contract: approve it" if verdict.ok else f"still breaks {len(verdict.errors)} rule(s)"
            if verdict.ok and verdict.notices:
                note = "passes the contract: read the note below before deciding"
            _flash(request, f"Edits saved; the row {note}.", "ok" if verdict.ok and not verdict.notices else "warn")
            return RedirectResponse(f"/records/{item_id}", status_code=303)
        if op == "approve":
            verdict = approve(settings, actor, item_id, reason=approval_note, edits=edits, seen=_seen(form))
            told = "".join(f" Note: {n.value}" for n in verdict.notices)  # the decided record no longer shows them
            _flash(request, f"Fix approved: record #{item_id} will be reprocessed into its regional store.{told}",
                   "warn" if told else "ok")  # fmt: skip
            return RedirectResponse(f"/records/{item_id}", status_code=303)
        verdict = revalidate(settings, actor, item_id, edits)
    except FixInvalid as exc:
        return _record_page(
            request,
            account,
            item_id,
            status_code=422,
            values=_merge_values(request, account, item_id, shown),
            verdict=exc.revalidation,
            flash="Not approved: the edited row still breaks the contract (see the fields marked below).",
        )
    except PermissionDenied as exc:
        raise PageError(403, "Not allowed", str(exc)) from None
    except InvalidTransition as exc:
        return _record_page(request, account, item_id, status_code=409, flash=str(exc))
    except ReviewError as exc:
        return _record_page(request, account, item_id, status_code=400, flash=str(exc))
    message = "The edited row passes the contract." if verdict.ok else "The edited row still breaks the contract."
    return _record_page(
        request,
        account,
        item_id,
        status_code=200 if verdict.ok else 422,
        values=_merge_values(request, account, item_id, shown),
        verdict=verdict,
        flash=message + " Nothing was saved yet.",
        flash_kind="ok" if verdict.ok else "warn",
    )


def _merge_values(request: Request, account: Account, item_id: int, shown: dict[str, str]) -> dict[str, str]:
    """The form as the steward typed it, over the record's current values (a post may carry only some fields)."""
    from kanda.review.notation import RailContext

    item = _load(request, account, item_id)
    values = _form_values(RailContext.of(item.region, item.raw_record), item)
    for column, name in MONEY_INPUTS.items():  # a canonical post (minor units) shown in the form's notation
        if column in shown and name not in shown:
            shown[name] = shown.pop(column)
    return values | shown


@router.post("/records/{item_id}/assign")
def assign_record(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    """ "Assign to me" (take the record) or give it back to the queue."""
    from kanda.review.service import InvalidTransition, assign

    require_steward(account)
    _load(request, account, item_id)
    take = str(form.get("op") or "take") == "take"
    try:
        assign(_settings(request), account.actor, item_id, account.actor.name if take else None, seen=_seen(form))
    except PermissionDenied as exc:
        raise PageError(403, "Not allowed", str(exc)) from None
    except InvalidTransition as exc:
        return _record_page(request, account, item_id, status_code=409, flash=str(exc))
    _flash(request, f"Record #{item_id} is yours." if take else f"Record #{item_id} is back in the queue for anyone.")
    return RedirectResponse(f"/records/{item_id}", status_code=303)


@router.post("/records/{item_id}/waive", response_class=HTMLResponse)
def waive_record(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    from kanda.review.service import waive

    justification = str(form.get("justification") or "")
    return _decide(
        request,
        account,
        item_id,
        lambda s, a: waive(s, a, item_id, _kept(justification, "justification"), seen=_seen(form)),
        f"Warning waived: record #{item_id} will be loaded as it is.",
    )


@router.post("/records/{item_id}/reject", response_class=HTMLResponse)
def reject_record(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    from kanda.review.service import reject

    reason = str(form.get("reason") or "")
    return _decide(
        request,
        account,
        item_id,
        lambda s, a: reject(s, a, item_id, _kept(reason, "reason"), seen=_seen(form)),
        f"Record #{item_id} rejected.",
    )


def _seen(form) -> dt.datetime | None:
    """When the record last changed as the page showed it (the forms' hidden `seen`): a decision from a page drawn
    before a colleague's change is refused instead of undoing it (`kanda.review.service._require_unchanged`)."""
    text = str(form.get("seen") or "").strip()
    if not text:
        return None
    try:
        seen = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PageError(400, "Bad request", "the form's record version cannot be read; reload the page") from None
    return seen if seen.tzinfo is not None else seen.replace(tzinfo=dt.UTC)


def _kept(text: str, label: str) -> str:
    """A reason or justification the audit log may keep for good; else a ReviewError saying why not."""
    from kanda.review.service import ReviewError

    problem = reason_problem(text, label)
    if problem:
        raise ReviewError(f"Nothing was changed: {problem}.")
    return text


def _decide(request: Request, account: Account, item_id: int, action, done: str) -> Response:
    from kanda.review.service import FixInvalid, InvalidTransition, ReviewError

    require_steward(account)
    _load(request, account, item_id)
    try:
        action(_settings(request), account.actor)
    except PermissionDenied as exc:
        raise PageError(403, "Not allowed", str(exc)) from None
    except FixInvalid as exc:  # a waiver of a rule that is not a warning
        return _record_page(request, account, item_id, status_code=422, flash=str(exc))
    except InvalidTransition as exc:  # already decided, or decided by someone else meanwhile
        return _record_page(request, account, item_id, status_code=409, flash=str(exc))
    except ReviewError as exc:  # a missing reason or justification
        return _record_page(request, account, item_id, status_code=400, flash=str(exc))
    _flash(request, done)
    return RedirectResponse(f"/records/{item_id}", status_code=303)
