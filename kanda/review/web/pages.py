"""The review queue, a record's detail and edit form, and the actions on them (one record or in bulk).

Every read and change goes through `kanda.review.service` with the signed-in account's `Actor`, which enforces
role and region scope; these routes add what only a web page needs: CSRF checks, viewers getting no forms, and
errors shown as pages. A record outside the account's regions answers 404 exactly like a record that does not
exist, so record numbers do not reveal what other regions hold.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kanda.review.accounts import Account
from kanda.review.actor import PermissionDenied
from kanda.review.web.render import render
from kanda.review.web.security import CheckedForm, PageError, SignedIn, require_steward
from kanda.settings import Settings
from regions import all_regions

router = APIRouter()

PAGE_SIZE = 50
#: The queue's status choices: the open work by default, any status, or one status.
OPEN_STATUSES = ("new", "in_review")
FILTER_FIELDS = ("region", "rule", "status", "source_file", "creator", "min_age", "max_age")


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filter as the page's query string carries it (text, as typed), and its service filter."""

    region: str = ""
    rule: str = ""
    status: str = "open"
    source_file: str = ""
    creator: str = ""
    min_age: str = ""
    max_age: str = ""

    @classmethod
    def from_mapping(cls, values) -> QueueQuery:
        fields = {name: str(values.get(name) or "").strip() for name in FILTER_FIELDS}
        return cls(**fields | {"status": fields["status"] or "open"})

    def review_filter(self, item_ids: frozenset[int] | None = None):
        from kanda.review.service import STATUSES, ReviewFilter

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
    flt = query.review_filter()
    total = count_items(settings, actor, flt)["all"]
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    items = list_items(settings, actor, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    by_status = count_items(settings, actor, _without(query, "status").review_filter(), group_by="status")
    by_rule = count_items(settings, actor, flt, group_by="rule")
    all_rules = sorted(count_items(settings, actor, None, group_by="rule"))
    source_files = sorted(count_items(settings, actor, None, group_by="source_file"))
    flash, kind = _take_flash(request)
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
        flash=flash,
        flash_kind=kind,
    )


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
    if action not in ACTIONS:
        raise PageError(400, "Unknown action", f"Choose one of {', '.join(ACTIONS)}.")
    if form.get("scope") == "all":
        flt = query.review_filter()
    else:
        try:
            ids = frozenset(int(v) for v in form.getlist("item_id"))
        except ValueError:
            raise PageError(400, "Bad selection", "Record numbers are whole numbers.") from None
        if not ids:
            _flash(request, "Select at least one record, or choose “all matching the filter”.", "error")
            return RedirectResponse(f"/queue?{query.query_string()}", status_code=303)
        flt = query.review_filter(item_ids=ids)
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
) -> HTMLResponse:
    from kanda.review.service import EDITABLE_COLUMNS, OPEN

    item = _load(request, account, item_id)
    if flash is None:
        flash, flash_kind = _take_flash(request)  # type: ignore[assignment]
    verdict = verdict if verdict is not None else item.revalidation
    errors: dict[str, list[str]] = {}
    other_errors = []
    for error in verdict.errors if verdict else []:
        if error.column in EDITABLE_COLUMNS:
            errors.setdefault(error.column, []).append(_rule_text(error))
        else:
            other_errors.append(error)
    return render(
        request,
        "record.html",
        account,
        nav="queue",
        status_code=status_code,
        item=item,
        raw=json.dumps(item.raw_record, indent=2, ensure_ascii=False, default=str),
        columns=EDITABLE_COLUMNS,
        values=values if values is not None else item.form_values,
        verdict=verdict,
        field_errors=errors,
        other_errors=other_errors,
        editable=account.actor.can_change(item.region) and item.status in OPEN,
        # the waiver form only where it can succeed: warning-level rules are all that is left
        waivable=bool(item.revalidation and item.revalidation.waivable),
        flash=flash,
        flash_kind=flash_kind,
    )


def _rule_text(error) -> str:
    if error.severity == "warning":
        return f"{error.rule} (warning, can be waived)"
    if error.severity == "hold":
        return f"{error.rule}: not in the creator registry yet"
    return error.rule


@router.get("/records/{item_id}", response_class=HTMLResponse)
def record(item_id: int, request: Request, account: SignedIn) -> HTMLResponse:
    return _record_page(request, account, item_id)


@router.post("/records/{item_id}/edit", response_class=HTMLResponse)
def edit(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    """The edit form's three buttons: check (re-validate, change nothing), save the edits, approve the fix."""
    from kanda.review.service import (
        EDITABLE_COLUMNS,
        FixInvalid,
        InvalidTransition,
        ReviewError,
        approve,
        revalidate,
        save_edits,
    )

    require_steward(account)
    _load(request, account, item_id)  # 404 before anything else for a record out of scope
    edits = {c: str(form.get(c) or "") for c in EDITABLE_COLUMNS if c in form}
    op = str(form.get("op") or "check")
    settings, actor = _settings(request), account.actor
    try:
        if op == "save":
            verdict = save_edits(settings, actor, item_id, edits)
            note = "passes the contract: approve it" if verdict.ok else f"still breaks {len(verdict.errors)} rule(s)"
            _flash(request, f"Edits saved; the row {note}.", "ok" if verdict.ok else "warn")
            return RedirectResponse(f"/records/{item_id}", status_code=303)
        if op == "approve":
            approve(settings, actor, item_id, reason=str(form.get("note") or "").strip() or None, edits=edits)
            _flash(request, f"Fix approved: record #{item_id} will be reprocessed into its regional store.")
            return RedirectResponse(f"/records/{item_id}", status_code=303)
        verdict = revalidate(settings, actor, item_id, edits)
    except FixInvalid as exc:
        return _record_page(
            request,
            account,
            item_id,
            status_code=422,
            values=edits,
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
        values=edits,
        verdict=verdict,
        flash=message + " Nothing was saved yet.",
        flash_kind="ok" if verdict.ok else "warn",
    )


@router.post("/records/{item_id}/waive", response_class=HTMLResponse)
def waive_record(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    from kanda.review.service import waive

    return _decide(
        request,
        account,
        item_id,
        lambda s, a: waive(s, a, item_id, str(form.get("justification") or "")),
        f"Warning waived: record #{item_id} will be loaded as it is.",
    )


@router.post("/records/{item_id}/reject", response_class=HTMLResponse)
def reject_record(item_id: int, request: Request, account: SignedIn, form: CheckedForm) -> Response:
    from kanda.review.service import reject

    return _decide(
        request,
        account,
        item_id,
        lambda s, a: reject(s, a, item_id, str(form.get("reason") or "")),
        f"Record #{item_id} rejected.",
    )


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
