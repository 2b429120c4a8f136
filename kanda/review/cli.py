"""`kanda review ...`: the steward actions from the terminal, through the same service as the web pages.

The CLI is an operator on the machine: it acts as `--actor` (default `$USER`) with the steward role over every
region. Filters select items for `list`, `counts` and the bulk forms of `approve`, `waive` and `reject`; with
`--json` every command prints one JSON document. Exit codes: 0 done, 1 refused (a fix that still breaks the
contract, a transition the status does not allow, nothing matched), 2 usage errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import math
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kanda.cli_support import chosen_regions, console, err, error_line, usage_error

review_app = typer.Typer(
    help="Review quarantined records: queue, fixes, waivers, rejections, reprocessing.", no_args_is_help=True
)

RegionsOpt = Annotated[list[str] | None, typer.Option("--region", "-r", help="Region code (repeatable).")]
RulesOpt = Annotated[list[str] | None, typer.Option("--rule", help="Failing rule (repeatable).")]
StatusOpt = Annotated[
    list[str] | None, typer.Option("--status", help="new, in_review, fixed, waived, rejected, reprocessed.")
]
FileOpt = Annotated[str | None, typer.Option("--file", help="Source file name.")]
CreatorOpt = Annotated[str | None, typer.Option("--creator", help="Creator id.")]
MinAgeOpt = Annotated[float | None, typer.Option("--min-age", help="Quarantined at least this many days ago.")]
MaxAgeOpt = Annotated[float | None, typer.Option("--max-age", help="Quarantined at most this many days ago.")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Name recorded in the audit log (default: $USER).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdsArg = Annotated[list[int] | None, typer.Argument(help="Item ids; none: every item the filters select.")]


def _actor(name: str | None):
    from kanda.review.actor import Actor

    return Actor(name or os.environ.get("USER") or getpass.getuser() or "operator", "steward", None)


def _filter(regions, rules, statuses, source_file, creator, min_age, max_age, ids=None):
    from kanda.review.service import STATUSES, ReviewFilter

    chosen = set(chosen_regions(regions)) if regions else set()
    bad = set(statuses or []) - set(STATUSES)
    if bad:
        usage_error(f"unknown status(es) {', '.join(sorted(bad))}; choose from {', '.join(STATUSES)}", "--status")
    for days, option in ((min_age, "--min-age"), (max_age, "--max-age")):
        if days is not None and (not math.isfinite(days) or days < 0):
            usage_error(f"must be a finite number of days, 0 or more, not {days!r}", option)
    return ReviewFilter(
        regions=frozenset(chosen) or None,
        rules=frozenset(rules) if rules else None,
        statuses=frozenset(statuses) if statuses else None,
        source_file=source_file,
        creator_id=creator,
        min_age_days=min_age,
        max_age_days=max_age,
        item_ids=frozenset(ids) if ids else None,
    )


def _print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=str))


def _refuse(message: str, as_json: bool, **extra) -> None:
    if as_json:
        _print_json({"ok": False, "error": message, **extra})
    else:
        error_line(message)
    raise typer.Exit(1)


@review_app.command()
def enqueue(region: RegionsOpt = None, as_json: JsonOpt = False) -> None:
    """Queue every quarantined row not yet in the review queue (idempotent).

    Each region is enqueued on its own: one whose store cannot be read or is busy is named (`NG: FAILED: ...`,
    `NG: BUSY: ...`; in --json under "failed"), the others are still queued, and the exit code is 1."""
    from kanda.regional.status import RegionFailure
    from kanda.review.service import enqueue_all
    from kanda.settings import load_settings

    settings = load_settings()
    flt = _filter(region, None, None, None, None, None, None)
    failed: list[RegionFailure] = []
    added = enqueue_all(settings, sorted(flt.regions) if flt.regions else None, failed=failed)
    if as_json:
        _print_json({"enqueued": added, **({"failed": [f.as_json() for f in failed]} if failed else {})})
    else:
        for code, n in added.items():
            console.print(f"{code}: {n} new item(s) queued")
    for f in failed:  # as `kanda review reprocess` names a failed region; stdout stays JSON with --json
        err.print(f.line(), markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@review_app.command("list")
def list_(
    region: RegionsOpt = None,
    rule: RulesOpt = None,
    status: StatusOpt = None,
    source_file: FileOpt = None,
    creator: CreatorOpt = None,
    min_age: MinAgeOpt = None,
    max_age: MaxAgeOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List review items, oldest first."""
    from kanda.review.service import count_items, list_items
    from kanda.settings import load_settings

    settings = load_settings()
    flt = _filter(region, rule, status, source_file, creator, min_age, max_age)
    who = _actor(actor)
    items = list_items(settings, who, flt, limit=limit, offset=offset)
    total = count_items(settings, who, flt)["all"]
    if as_json:
        _print_json({"total": total, "items": [i.as_dict() for i in items]})
        return
    table = Table(title=f"review queue: {total} item(s), showing {offset + 1 if items else 0}-{offset + len(items)}")
    for column in ("id", "region", "status", "source", "creator", "rules"):
        table.add_column(column, overflow="fold")
    for i in items:
        rules = "; ".join(f"{r.rule} on {r.column} ({r.value!r}, {r.severity})" for r in i.rules)
        source = f"{i.source_file}:{i.source_row}"
        table.add_row(str(i.id), i.region, i.status, escape(source), escape(i.creator_id or ""), escape(rules))
    console.print(table)


@review_app.command()
def counts(
    by: Annotated[str | None, typer.Option("--by", help="region, status, rule, source_file or creator_id.")] = None,
    region: RegionsOpt = None,
    rule: RulesOpt = None,
    status: StatusOpt = None,
    source_file: FileOpt = None,
    creator: CreatorOpt = None,
    min_age: MinAgeOpt = None,
    max_age: MaxAgeOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Count review items, in all or grouped."""
    from kanda.review.service import GROUPS, count_items
    from kanda.settings import load_settings

    if by is not None and by not in GROUPS:
        usage_error(f"must be one of {', '.join(GROUPS)}", "--by")
    flt = _filter(region, rule, status, source_file, creator, min_age, max_age)
    found = count_items(load_settings(), _actor(actor), flt, group_by=by)
    if as_json:
        _print_json(found)
        return
    table = Table()
    table.add_column(by or "items")
    table.add_column("count", justify="right")
    for key, n in found.items():
        table.add_row(key, str(n))
    console.print(table)


@review_app.command()
def show(item_id: int, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """One item: raw input, parsed fields, failing rules, current edits and their verdict, history."""
    from kanda.review.actor import PermissionDenied
    from kanda.review.service import ItemNotFound, get_item
    from kanda.settings import load_settings

    try:
        item = get_item(load_settings(), _actor(actor), item_id)
    except (ItemNotFound, PermissionDenied) as exc:
        _refuse(str(exc), as_json)
    if as_json:
        _print_json(item.as_dict())
        return
    console.print(f"[bold]item {item.id}[/] {item.region} {item.source_file}:{item.source_row}  status {item.status}")
    console.print("raw record:", item.raw_record)
    table = Table(title="fields")
    for column in ("column", "parsed", "edit"):
        table.add_column(column, overflow="fold")
    for column, value in item.parsed.items():
        table.add_row(column, escape("" if value is None else str(value)), escape(item.edits.get(column, "")))
    console.print(table)
    for r in item.rules:
        console.print(f"broke: {r.rule} on {r.column} ({r.value!r}), {r.severity}", markup=False)
    if item.revalidation is not None:
        _print_verdict(item.revalidation)
    for h in item.history:
        console.print(f"{h.at:%Y-%m-%d %H:%M:%S} {h.actor} {h.action} {h.reason or ''}", markup=False)


def _print_verdict(verdict) -> None:
    if verdict.ok:
        console.print("[green]passes the contract[/]")
    for e in verdict.errors:
        console.print(f"[red]still broken:[/] {escape(f'{e.rule} on {e.column} ({e.value!r}), {e.severity}')}")
    for n in verdict.notices:  # said before a decision, never in its way
        console.print(f"[yellow]note ({escape(n.rule)}):[/] {escape(n.value or '')}")
    for column, text in will_store(verdict.row).items():
        console.print(f"will store {column}: {text}", markup=False)


def will_store(row: dict) -> dict[str, str]:
    """The edited row's money in the region's currency and its time with the local day, beside the minor units and
    the UTC instant `--set` takes: a number typed off by the currency's exponent (VND and XOF have none; VNPAY's
    files write VND x100) or a time read in the wrong zone looks plausible until it is shown in the region's terms."""
    from kanda.review.notation import RailContext

    if not row.get("region"):
        return {}
    rail = RailContext.of(row["region"], {})
    shown = {
        column: rail.will_store_money(int(row[column]))
        for column in ("amount_minor", "fee_minor", "net_minor")
        if row.get(column) not in (None, "")
    }
    if row.get("occurred_at"):
        when = dt.datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
        shown["occurred_at"] = f"{rail.will_store_time(when)}, local day {row.get('local_date')}"
    return shown


@review_app.command()
def fix(
    item_id: int,
    set_: Annotated[list[str], typer.Option("--set", help="column=value (repeatable).")],
    approve_: Annotated[bool, typer.Option("--approve", help="Approve at once if the row passes.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit fields of an item; the row is re-validated at once. Exit 1 if it still breaks the contract."""
    from kanda.review.actor import PermissionDenied
    from kanda.review.service import FixInvalid, ItemNotFound, ReviewError, approve, save_edits
    from kanda.settings import load_settings

    edits = {}
    for part in set_:
        column, sep, value = part.partition("=")
        if not sep:
            usage_error(f"takes column=value, not {part!r}", "--set")
        edits[column.strip()] = value
    _check_reason(reason, "--reason")
    settings, who = load_settings(), _actor(actor)
    _check_edits(settings, who, item_id, edits)
    try:
        verdict = None
        if approve_:
            # Saved and approved in one transaction: approved after a save of its own, the item could be approved
            # with another steward's edits saved in between, which this steward neither typed nor saw.
            with contextlib.suppress(FixInvalid):  # still breaks the contract: saved below, the verdict says why
                verdict = approve(settings, who, item_id, reason, edits=edits)
        if verdict is None:
            verdict = save_edits(settings, who, item_id, edits)
    except (ItemNotFound, PermissionDenied, ReviewError) as exc:
        _refuse(str(exc), as_json)
    if as_json:
        approved = approve_ and verdict.ok
        _print_json({**verdict.as_dict(), "will_store": will_store(verdict.row), "item": item_id, "approved": approved})
    else:
        _print_verdict(verdict)
        if approve_ and verdict.ok:
            console.print(f"item {item_id} approved: it is loaded by the next reprocess")
    if not verdict.ok:
        raise typer.Exit(1)


def _check_reason(text: str | None, option: str) -> None:
    """A reason longer than the audit log keeps is a usage error (`kanda.review.typed`)."""
    from kanda.review.typed import reason_problem

    problem = reason_problem(text, option.lstrip("-"))
    if problem:
        usage_error(problem, option)


def _check_edits(settings, who, item_id: int, edits: dict[str, str]) -> None:
    """Values too long, or ids typed with characters a person cannot see or tell apart, are usage errors; an id left
    as the file has it is not checked (`kanda.review.typed`)."""
    from kanda.review.actor import PermissionDenied
    from kanda.review.revalidate import as_text
    from kanda.review.service import ItemNotFound, get_item
    from kanda.review.typed import ID_COLUMNS, MAX_VALUE_CHARS, value_problem

    parsed: dict = {}
    if any(column in ID_COLUMNS for column in edits):
        with contextlib.suppress(ItemNotFound, PermissionDenied):  # said by the command itself, as before
            parsed = get_item(settings, who, item_id).parsed
    for column, text in edits.items():
        changed = text.strip() != (as_text(parsed.get(column)) or "")
        problem = value_problem(column, text) if changed or len(text) > MAX_VALUE_CHARS else None
        if problem:
            usage_error(f"{column}: {problem}", "--set")


def _decide(action: str, ids, flt_args, reason: str | None, actor: str | None, as_json: bool) -> None:
    from kanda.review import service
    from kanda.review.actor import PermissionDenied
    from kanda.settings import load_settings

    _check_reason(reason, "--justification" if action == "waive" else "--reason")
    settings, who = load_settings(), _actor(actor)
    flt = _filter(*flt_args, ids=ids)
    if not ids and flt == service.ReviewFilter():
        usage_error(f"{action}: give item ids or filters (e.g. --rule X --region KE)")
    try:
        if ids and len(ids) == 1 and flt == service.ReviewFilter(item_ids=frozenset(ids)):
            function = {"approve": service.approve, "waive": service.waive, "reject": service.reject}[action]
            function(settings, who, ids[0], reason)
            result = service.BulkResult(action, done=[ids[0]])
        else:
            result = service.bulk(settings, who, flt, action, reason)
    except service.FixInvalid as exc:
        _refuse(str(exc), as_json, errors=[e.as_dict() for e in exc.revalidation.errors])
    except (service.ItemNotFound, PermissionDenied, service.ReviewError) as exc:
        _refuse(str(exc), as_json)
    if as_json:
        _print_json(result.as_dict())
    else:
        console.print(f"{action}: {len(result.done)} item(s) done, {len(result.skipped)} skipped")
        for item_id, why in result.skipped:
            console.print(f"  skipped {item_id}: {why}", markup=False)
    if not result.done:
        raise typer.Exit(1)


@review_app.command("approve")
def approve_cmd(
    ids: IdsArg = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    region: RegionsOpt = None,
    rule: RulesOpt = None,
    status: StatusOpt = None,
    source_file: FileOpt = None,
    creator: CreatorOpt = None,
    min_age: MinAgeOpt = None,
    max_age: MaxAgeOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve fixes (only rows that pass the contract with their edits)."""
    _decide("approve", ids, (region, rule, status, source_file, creator, min_age, max_age), reason, actor, as_json)


@review_app.command("waive")
def waive_cmd(
    ids: IdsArg = None,
    justification: Annotated[str, typer.Option(help="Why the warning does not matter here.")] = ...,  # type: ignore[assignment]
    region: RegionsOpt = None,
    rule: RulesOpt = None,
    status: StatusOpt = None,
    source_file: FileOpt = None,
    creator: CreatorOpt = None,
    min_age: MinAgeOpt = None,
    max_age: MaxAgeOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Waive warning-level rules: the row is loaded as it is by the next reprocess."""
    args = (region, rule, status, source_file, creator, min_age, max_age)
    _decide("waive", ids, args, justification, actor, as_json)


@review_app.command("reject")
def reject_cmd(
    ids: IdsArg = None,
    reason: Annotated[str, typer.Option(help="Why the record is rejected.")] = ...,  # type: ignore[assignment]
    region: RegionsOpt = None,
    rule: RulesOpt = None,
    status: StatusOpt = None,
    source_file: FileOpt = None,
    creator: CreatorOpt = None,
    min_age: MinAgeOpt = None,
    max_age: MaxAgeOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject records for good (they stay quarantined, marked rejected)."""
    _decide("reject", ids, (region, rule, status, source_file, creator, min_age, max_age), reason, actor, as_json)


@review_app.command("digest")
def digest(
    base_url: Annotated[
        str,
        typer.Option("--base-url", envvar="KANDA_PUBLIC_URL", help="Where stewards open the queue (the mail's links)."),
    ] = "http://localhost:8000",
    user: Annotated[list[str] | None, typer.Option("--user", "-u", help="Only these accounts (repeatable).")] = None,
    resend: Annotated[bool, typer.Option("--resend", help="Send again even if today's digest went out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """E-mail each steward the records newly quarantined in their regions, with links to the queue (daily)."""
    from kanda.review.digest import send_digests
    from kanda.settings import load_settings

    run = send_digests(load_settings(), base_url=base_url, resend=resend, only=user)
    if as_json:
        typer.echo(json.dumps(run.as_dict(), indent=2))
    else:
        for d in run.sent:
            console.print(f"sent {d.account} <{escape(d.recipient)}>: {d.new_items} new record(s)")
        for name, why in run.skipped:
            console.print(f"[dim]skipped {name}: {escape(why)}[/]")
        for name, why in run.failed:
            err.print(f"[red]failed {name}: {escape(why)}[/]")
    if run.failed:
        raise typer.Exit(1)
