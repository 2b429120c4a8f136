"""The `kanda` commands, as a Typer app. Thin: every command calls the same functions the Dagster assets call.

The console script enters through `kanda.cli.main`, which answers a plain `kanda query` without building this app.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer.core import TyperArgument, TyperGroup

from kanda.cli import query as query_command
from kanda.cli_support import (
    FileBytes,
    chosen_regions,
    console,
    err,
    error_line,
    fail,
    left_out_regions,
    parse_date,
    progress_bar,
    transfer_bar,
    usage_error,
)
from kanda.settings import Settings, load_settings, served_regions


class KandaGroup(TyperGroup):
    """The `kanda` command tree. Typer's rich help prints `<bool>` beside every flag (`--json <bool>`, even
    `--help <bool>`) and a Python type beside every argument, which reads like a bug to a newcomer: flags get an
    empty metavar, and an argument with a metavar shows only that."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        _untyped_flags(self)
        _values_once(self)


def _untyped_flags(command) -> None:
    for param in [*command.params, command.get_help_option(typer.Context(command))]:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar is not None:
            param.display_type_rich = lambda ctx: None  # its metavar (`[FILE]...`) says it; not `<list[Path]>` too
    for sub in getattr(command, "commands", {}).values():
        _untyped_flags(sub)


def _values_once(command) -> None:
    """An option that takes one value refuses to be given twice. Click keeps the last value silently, so
    `kanda ingest -r EG -r KE` ingested KE alone, exit 0, and the publish after it went out without EG's files."""
    if hasattr(command, "commands"):  # a group: its own options are flags; its commands are checked one by one
        for sub in command.commands.values():
            _values_once(sub)
        return
    parse_args = command.parse_args

    def parse_once(ctx: typer.Context, args: list[str]) -> list[str]:
        _, _, order = command.make_parser(ctx).parse_args(args=list(args))
        for param in {id(p): p for p in order}.values():
            single = param.param_type_name == "option" and not (param.multiple or param.is_flag or param.count)
            if single and sum(p is param for p in order) > 1:
                usage_error(f"given more than once; `kanda {command.name}` takes one", "/".join(param.opts))
        return parse_args(ctx, args)

    command.parse_args = parse_once


app = typer.Typer(
    cls=KandaGroup,
    help="kanda: regional creator-sales pipeline. Data lives under KANDA_HOME (default ./.kanda).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
RegionOption = Annotated[
    list[str] | None, typer.Option("--region", "-r", metavar="CODE", help="Region code, e.g. KE (repeatable).")
]


@app.command()
def generate(
    region: RegionOption = None,
    days: Annotated[int, typer.Option(min=1, metavar="DAYS", help="Days of sales per region.")] = 7,
    rows: Annotated[int, typer.Option(min=1, metavar="ROWS", help="Rows (deliveries) per region file.")] = 2_000,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Same seed, same files.")] = 42,
    start: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="First local day; default: DAYS days ago.")
    ] = None,
    dirt: Annotated[
        float, typer.Option(min=0.0, metavar="FACTOR", help="Multiplier on the default share of each kind of dirt.")
    ] = 1.0,
    dirt_mix: Annotated[
        str | None,
        typer.Option(
            metavar="KIND=SHARE,...",
            help="Exact shares per kind, e.g. 'duplicate=0.05,corrupt=0.02' (kinds: duplicate, corrupt,"
            " unknown_creator, pending_first, failed, refund, reversal); applied after --dirt.",
        ),
    ] = None,
    creators: Annotated[int, typer.Option(min=1, metavar="COUNT", help="Creators per region in the registry.")] = 12,
    after: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Number the file's transactions after the first N: a later export of new sales. Without it, files"
            " of one region repeat the same transaction ids, and a second one is mostly repeats and conflicts.",
        ),
    ] = 0,
    out: Annotated[
        Path | None, typer.Option(metavar="FOLDER", help="Landing folder (default KANDA_HOME/landing).")
    ] = None,
) -> None:
    """Write a creator registry and one realistic native file per region, streamed to disk."""
    from regions.synthetic.generate import generate as run

    settings = load_settings()
    settings.ensure_dirs()
    codes = chosen_regions(region)
    first = parse_date(start) if start else dt.date.today() - dt.timedelta(days=days)
    with progress_bar() as bar:
        tasks = {code: bar.add_task(f"generate {code}", total=rows) for code in codes}
        files = run(
            landing_dir=out or settings.landing_dir,
            registry_dir=settings.registry_dir,
            regions=codes,
            start=first,
            days=days,
            rows_per_region=rows,
            seed=seed,
            dirt=_dirt(dirt, dirt_mix),
            creators_per_region=creators,
            txn_offset=after,
            progress=lambda code, done: bar.update(tasks[code], completed=done),
        )
    for f in files:
        console.print(f"{f.region}: {f.rows:,} rows -> {f.path}")
    console.print(f"registry: {settings.registry_dir}")


@contextmanager
def store_errors(settings: Settings, code: str) -> Iterator[None]:
    """A region's store that DuckDB cannot open or use (corrupt, truncated, on a read-only disk) is one `Error:`
    line naming the store and the cause, as the commands over many regions name it, not a traceback."""
    import duckdb

    from kanda.regional.status import failure_cause

    try:
        yield
    except duckdb.Error as exc:
        fail(f"{code}: store {settings.store_path(code)} failed: {failure_cause(exc)}")


@app.command()
def ingest(
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILE", help="Files to ingest; none: the region's landing folder.", show_default=False),
    ] = None,
    region: Annotated[str, typer.Option("--region", "-r", metavar="CODE", help="Region code, e.g. KE.")] = ...,  # type: ignore[assignment]
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Validate and load files into the region's store. Exit 0: all processed; 1: a file was rejected."""
    from kanda import flow
    from kanda.regional.ingest import pending_files
    from regions import get_region

    settings = load_settings()
    (code,) = chosen_regions([region])
    # The total is known before the first row is read: the bytes of the files about to be ingested.
    waiting = list(files) if files else pending_files(settings, get_region(code))
    with store_errors(settings, code), transfer_bar() as bar:
        progress = FileBytes(bar, f"ingest {code}", waiting)
        run = flow.run_region(
            settings,
            code,
            files=files,
            steps=("ingest", "queue_review"),  # new quarantine rows go to the stewards' review queue
            observers=flow.installed_observers(),
            progress=progress,
        )
        progress.finish()
    report, queued = run.ingest, run.queued
    if as_json:
        print(json.dumps({"region": code, "files": [f.as_json() for f in report.files]}, indent=2))
    else:
        _print_ingest(code, report)
        if queued:
            console.print(f"{code}: {queued} quarantined row(s) queued for review (`kanda review list -r {code}`)")
    if any(f.status == "rejected" for f in report.files):
        raise typer.Exit(1)


_COUNTS = ("rows_in", "loaded", "quarantined", "duplicates", "ignored")


def _print_ingest(code: str, report) -> None:
    """One row per file and, for several files, their total: every row in ends loaded, quarantined, duplicate or
    ignored, so the counts add up across the table as they do in the ledger."""
    table = Table(title=f"{code}: ingestion", show_footer=len(report.files) > 1)
    table.add_column("file", footer="total", no_wrap=True)  # a file name stays whole
    table.add_column("status", footer=f"{len(report.files)} files")
    for name in _COUNTS:
        total = sum(getattr(f, name) for f in report.files)
        table.add_column(name.replace("_", " "), footer=f"{total:,}", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for f in report.files:
        style = {"rejected": "red", "already_ingested": "yellow"}.get(f.status, "green")
        table.add_row(
            f.file,
            f"[{style}]{f.status}[/]",
            *(f"{getattr(f, name):,}" for name in _COUNTS),
            f.reason or "",
        )
    if report.files:
        console.print(table)
    if not report.files:
        console.print(f"{code}: no files waiting in the landing folder")
    if report.released:
        console.print(f"{code}: released {report.released.loaded} held row(s) whose creator is now onboarded")


@app.command()
def publish(
    region: RegionOption = None,
    all_days: Annotated[bool, typer.Option("--all-days", help="Republish every day, not only changed ones.")] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Republish the region's whole history from its store, replacing every central data file of the"
            " region (the repair when `kanda verify` reports a lost or corrupt data file). Needs --region.",
        ),
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild every SQL model whole from all history instead of only the changed days (as after a model"
            " change). Publishes the changed days as usual; add --all-days to send every day.",
        ),
    ] = False,
) -> None:
    """Build rollups and publish each region's changed days to the central Iceberg layer."""
    from kanda import flow
    from kanda.regional.store import store_exists

    if rebuild and not region:
        usage_error("--rebuild repairs named regions: give --region (e.g. the region `kanda verify` named)", "--region")
    # Sending every day makes the publish replace the region's central partition whole (see kanda.central.publish),
    # so a rebuild is an all-days publish: no old data file of the region is read, and a rerun finishes it.
    all_days = all_days or rebuild
    full_refresh = full_refresh or rebuild  # a repair trusts nothing built before
    settings = load_settings()
    chosen = chosen_regions(region)
    codes = [code for code in chosen if store_exists(settings, code)]
    empty = sorted(set(chosen) - set(codes))
    for code in empty:
        console.print(f"{code}: no store yet (nothing ingested)")
    observers = flow.installed_observers()
    runs = []
    with progress_bar() as bar:  # regions one by one (each isolated, as in `flow.run_regions`), so the bar is true
        task = bar.add_task("publish", total=len(codes))
        for code in codes:
            bar.update(task, description=f"publish {code}: build, publish, refresh readers")
            (run,) = flow.run_regions(
                settings,
                [code],
                steps=("build", "publish", "refresh_readers"),
                all_days=all_days,
                full_refresh=full_refresh,
                rebuild=rebuild,
                observers=observers,
            )
            runs.append(run)
            _print_published(run, rebuild)
            bar.advance(task)
    _publish_table(runs, empty, rebuild)
    if not codes:
        # a host without stores (the central host of a deployment) publishes nothing itself: it brings its own
        # readers (the BI snapshot) up to the newest publication the regions' hosts made, and says if it cannot
        _refresh_snapshot_here(settings)
    stale = next((run.readers_error for run in runs if run.readers_error), None)
    if stale:  # the publications stand; what BI tools read does not show them: the operator has to act
        error_line(
            f"the BI snapshot {settings.snapshot_path} was not refreshed ({stale}); it still holds an older"
            " publication. `kanda verify` names a damaged central file and its repair"
        )
    if stale or left_out_regions(region) or any(run.failed for run in runs):
        raise typer.Exit(1)


def _refresh_snapshot_here(settings) -> None:
    from kanda.analyst.snapshot import refresh_snapshot, snapshot_info
    from kanda.central.query import NothingPublished

    try:
        path = refresh_snapshot(settings)
    except NothingPublished:
        console.print("nothing published yet: no BI snapshot to make")
        return
    except Exception as exc:  # the only thing this command does here: its failure is the command's
        fail(f"the BI snapshot {settings.snapshot_path} was not refreshed: {str(exc).splitlines()[0]}")
    info = snapshot_info(path)
    console.print(f"BI snapshot: {path} (publication {info.publish_id if info else 'unknown'})")


def _print_published(run, rebuild: bool) -> None:
    """A line per region as it finishes: what a log keeps (the table comes at the end)."""
    code, result = run.region, run.publish
    if run.failed or result is None:
        err.print(f"{code}: FAILED: {run.error}", markup=False, soft_wrap=True)
    elif result.published:
        rows = ", ".join(f"{k} {v}" for k, v in result.rows.items())
        what = "rebuilt from its store" if rebuild else "published"
        line = f"{code}: {what} {len(result.days)} day(s) ({rows}) as {result.publish_id}"
        console.print(line, markup=False, soft_wrap=True)  # the publish id stays whole, to be copied
    else:
        console.print(f"{code}: up to date")


def _publish_table(runs, empty: list[str], rebuild: bool) -> None:
    from warehouse_models import published

    table = Table(title="kanda publish: rows per region and rollup")
    table.add_column("region")
    table.add_column("result")
    table.add_column("days", justify="right")
    for name in published():
        table.add_column(name.replace("_", " "), justify="right")  # "creator daily" may wrap into two lines
    table.add_column("publication", no_wrap=True)
    for run in runs:
        result = run.publish
        if run.failed or result is None:
            table.add_row(run.region, "[red]FAILED[/]", *[""] * (len(published()) + 1), "see above")
        elif not result.published:
            table.add_row(run.region, "up to date", "0", *["0"] * len(published()), "")
        else:
            table.add_row(
                run.region,
                "[green]rebuilt[/]" if rebuild else "[green]published[/]",
                str(len(result.days)),
                *(f"{result.rows.get(name, 0):,}" for name in published()),
                result.publish_id,
            )
    for code in empty:
        table.add_row(code, "[yellow]no store yet[/]", *[""] * (len(published()) + 1), "nothing ingested")
    console.print(table)


@app.command()
def status() -> None:
    """What each regional store holds. Exit 1 if a store cannot be read or is busy (the others are still listed)."""
    from kanda.regional.status import all_status

    settings = load_settings()
    rows = all_status(settings)
    table = Table(title=f"kanda stores in {settings.stores_dir}")
    for column in (
        "region",
        "files",
        "rejected files",
        "events",
        "quarantine open",
        "held",
        "released",
        "rejected rows",
        "unpublished days",
        "last publish",
    ):
        table.add_column(column)
    for s in rows:
        if s.error is not None:
            label = "[yellow]BUSY[/]" if s.busy else "[red]BROKEN[/]"
            table.add_row(s.region, label, *[""] * 7, "see below")
            continue
        table.add_row(
            s.region,
            str(s.files),
            str(s.rejected_files),
            f"{s.events:,}",
            str(s.quarantine_open),
            str(s.quarantine_held),
            str(s.released),
            str(s.quarantine_rejected),
            str(s.unpublished_days),
            s.last_publish or "never",
        )
    console.print(table if rows else "No regional stores yet: run `kanda demo` or `kanda ingest`.")
    failed = [s for s in rows if s.error is not None]
    for s in failed:
        err.print(
            f"{s.region}: BUSY: store {settings.store_path(s.region)} is in use, not read: {s.error};"
            " try again when that run has finished"
            if s.busy
            else f"{s.region}: BROKEN: store {settings.store_path(s.region)} cannot be read: {s.error}",
            markup=False,
            soft_wrap=True,  # a path must stay whole to be copied
        )
    if failed:
        raise typer.Exit(1)


@app.command()
def quarantine(
    region: Annotated[str, typer.Option("--region", "-r", help="Region code.")] = ...,  # type: ignore[assignment]
    status: Annotated[str | None, typer.Option(help="open | held | released | rejected (any case)")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show quarantined rows of a region: where they came from, every rule they broke, and the raw record."""
    from kanda.regional.status import QUARANTINE_STATUSES, quarantine_rows

    (code,) = chosen_regions([region])
    if status is not None and status.lower() not in QUARANTINE_STATUSES:
        # never an empty answer, which would read as "nothing in quarantine"
        usage_error(f"unknown status {status!r}; choose from {', '.join(QUARANTINE_STATUSES)}", "--status")
    settings = load_settings()
    with store_errors(settings, code):
        rows = quarantine_rows(settings, code, status=status, limit=limit)
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    table = Table(title=f"{code}: quarantine (newest first, at most {limit})")
    for column in ("source", "status", "reasons", "raw record"):
        table.add_column(column, overflow="fold")
    for row in rows:
        reasons = "; ".join(f"{r['rule']} on {r['column']} ({r['value']!r})" for r in row["reasons"])
        table.add_row(f"{row['source_file']}:{row['source_row']}", row["status"], reasons, row["raw_record"])
    console.print(table if rows else f"{code}: nothing in quarantine")


@app.command()
def verify(region: RegionOption = None) -> None:
    """Check ledger chains, conservation, rollups and central-vs-regional totals. Non-zero exit on any failure."""
    from rich.markup import escape

    from kanda.checks.verify import verify as run

    settings = load_settings()
    # a region host (KANDA_REGIONS) verifies its own regions' stores
    results = run(settings, chosen_regions(region) if region or served_regions() else None)
    failed = False
    for r in results:
        mark = "[green]ok[/]" if r.passed else ("[yellow]warn[/]" if r.severity == "warn" else "[red]FAIL[/]")
        failed |= not r.passed and r.severity == "error"
        console.print(f"{mark:>14}  {r.name:<22} {escape(r.message)}")  # a cause may hold [brackets]
    if not results:
        console.print("nothing to verify: no regional stores yet")
    raise typer.Exit(1 if failed else 0)


@app.command()
def orphans(
    older_than: Annotated[
        float, typer.Option("--older-than", metavar="HOURS", help="Only files older than this many hours (>= 1).")
    ] = 72.0,
    delete: Annotated[bool, typer.Option("--delete", help="Delete them; without it, only list them.")] = False,
) -> None:
    """List (or delete) files under the central tables that no snapshot references: a killed publish's leftovers."""
    from kanda.central.catalog import open_catalog, publish_lock
    from kanda.central.orphans import MIN_AGE, find_orphans, remove_orphans

    age = dt.timedelta(hours=older_than)
    if age < MIN_AGE:
        usage_error(f"--older-than must be at least {MIN_AGE.total_seconds() / 3600:g} hour(s): younger files may"
                    " belong to a publish that has not committed yet", "--older-than")  # fmt: skip
    settings = load_settings()
    catalog = open_catalog(settings)
    with publish_lock(settings):  # no commit lands between listing the files and reading the references
        found = find_orphans(catalog, older_than=age)
        removed = remove_orphans(catalog, found) if delete else 0
    for orphan in found:
        console.print(f"{orphan.table:<24} {orphan.size:>12,} B  {orphan.modified:%Y-%m-%d %H:%M}  {orphan.path}")
    total = sum(o.size for o in found)
    if delete:
        console.print(f"deleted {removed} orphan file(s), {total:,} bytes")
    elif found:
        console.print(f"{len(found)} orphan file(s), {total:,} bytes: run again with --delete to remove them")
    else:
        console.print(f"no orphan files older than {older_than:g} hours")


@app.command()
def query(
    sql: Annotated[str | None, typer.Argument(help="Read-only SQL over rollups.<table>.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Read an earlier publication: an ISO 8601 time (UTC if no offset) or a publish id / Iceberg"
            " snapshot id from --history.",
        ),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Print DuckDB's plan instead of running.")] = False,
    history: Annotated[bool, typer.Option("--history", help="List publications: the ids --as-of takes.")] = False,
) -> None:
    """Read-only SQL over the central rollups (rollups.creator_daily, product_daily, region_daily, channel_daily)."""
    code = query_command.answer(sql, fmt=fmt, as_of=as_of, explain=explain, history=history)
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=10, help="Rows per region.")] = 3_000,
    days: Annotated[int, typer.Option(min=1)] = 7,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Generate a week for every region, ingest, publish, and summarise. Runs on embedded defaults."""
    from kanda.demo import run_demo

    started = time.monotonic()
    settings = load_settings()
    summary = run_demo(settings, rows=rows, days=days, seed=seed, console=err)
    table = Table(title="kanda demo: rows per region")
    for column in ("region", "rows in", "loaded", "quarantined", "duplicates", "ignored"):
        table.add_column(column, justify="right" if column != "region" else "left")
    for column in ("net (local)", "net (USD)"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in summary.regions:
        table.add_row(
            s.region,
            f"{s.rows_in:,}",
            f"{s.loaded:,}",
            f"{s.quarantined:,}",
            f"{s.duplicates:,}",
            f"{s.ignored:,}",
            s.net_local,
            s.net_usd,
        )
    console.print(table)
    console.print(f"regional stores: {settings.stores_dir}")
    console.print(f"central catalog: {settings.masked_catalog_url}  (warehouse {settings.warehouse_uri})")
    console.print(f"verify: {'all checks passed' if summary.verified else 'FAILED, see `kanda verify`'}")
    if summary.data_docs is not None:
        failed = summary.expectations_failed
        verdict = f"{failed} failed, see `kanda expectations`" if failed else "all met"
        console.print(f"expectations: {summary.expectations_run} validations, {verdict}", markup=False)
        console.print(
            f"Data Docs: {summary.data_docs.as_uri()}  (also at http://127.0.0.1:8000/data-docs/ under `kanda serve`)",
            soft_wrap=True,  # a path must stay whole to be copied
            markup=False,
        )
    if summary.outbox is not None:
        day = summary.reports_day.isoformat() if summary.reports_day else "?"
        before = f" ({summary.reports_before} already there)" if summary.reports_before else ""
        console.print(
            f"reports: {summary.reports_written} creator reports of {day} in {summary.outbox}/<region>/{day}/"
            f" (.eml){before}",
            soft_wrap=True,  # a path must stay whole to be copied
            markup=False,
        )
    console.print('try:    kanda query "select region, sum(net_usd_minor) from rollups.creator_daily group by 1"')
    console.print("review: kanda review list   (or `kanda users add NAME --region KE`, then `kanda serve`)")
    console.print("API:    kanda keys create NAME, then `kanda serve`: http://127.0.0.1:8000/docs")
    console.print("UI:     DAGSTER_HOME=$PWD dagster dev   (from the repo root; then open http://127.0.0.1:3000)")
    console.print(f"done in {time.monotonic() - started:.1f} s")
    if not summary.verified:
        raise typer.Exit(1)


def _dirt(scale: float, mix: str | None):
    from regions.synthetic.core import DirtMix

    base = DirtMix().scaled(scale)
    if not mix:
        return base
    shares = {}
    for part in mix.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in DirtMix.__dataclass_fields__:
            usage_error(f"unknown dirt kind {name!r}; kinds: {', '.join(DirtMix.__dataclass_fields__)}", "--dirt-mix")
        try:
            shares[name] = float(value)
        except ValueError:
            usage_error(f"not a share: {part!r} (use kind=0.05)", "--dirt-mix")
        if not 0 <= shares[name] <= 1:
            usage_error(f"a share is between 0 and 1: {part!r}", "--dirt-mix")
    return dataclasses.replace(base, **shares)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=1024, help="Worker processes answering requests (default: one per CPU core)."),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (one line each).")] = True,
) -> None:
    """Serve the steward pages (/) and the analysts' read-only API (/api, docs at /docs and /redoc)."""
    import os

    import uvicorn

    settings = load_settings()
    settings.ensure_dirs()
    _ = settings.secret_key  # created here, once, before several workers could each create a different one
    count = workers or os.cpu_count() or 1
    console.print(
        f"kanda on http://{host}:{port}/  (API docs: http://{host}:{port}/docs), {count} worker(s)", markup=False
    )
    # An import string and a factory: each worker process builds its own app (readers, answer cache) from the same
    # environment, which is what uvicorn needs to start more than one.
    uvicorn.run(
        "kanda.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=count,
        log_level="info",
        access_log=access_log,
    )


# Feature commands live beside their features; each module imports its heavy libraries inside the commands,
# so `kanda --help` stays fast.
from kanda.analyst.cli import keys_app  # noqa: E402
from kanda.checks.gx_cli import expectations_command  # noqa: E402
from kanda.regions_cli import regions_app  # noqa: E402
from kanda.reports.cli import reports_command  # noqa: E402
from kanda.review.cli import review_app  # noqa: E402
from kanda.review.users_cli import users_app  # noqa: E402

app.command("reports")(reports_command)
app.command("expectations")(expectations_command)
app.add_typer(review_app, name="review")

app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(regions_app, name="regions")


from kanda.review.cli import JsonOpt as ReviewJson  # noqa: E402
from kanda.review.cli import RegionsOpt as ReviewRegions  # noqa: E402


@review_app.command()
def reprocess(
    region: ReviewRegions = None,
    as_json: ReviewJson = False,
    actor: Annotated[
        str | None,
        typer.Option("--actor", metavar="NAME", help="Name recorded in the audit log (default: system:reprocess)."),
    ] = None,
) -> None:
    """Load approved fixes and waivers into their stores, record rejections, republish the changed days.

    Runs the region flow after ingestion (`kanda.flow.AFTER_REVIEW`), so fixes are published the same way as files.
    Without --actor the audit names the system, as when Dagster reprocesses: nobody in particular asked.
    Each region is reprocessed on its own (as in `flow.run_regions`): one that fails is reported by name with its
    error, the others still run. Exit 1 if any region failed.
    """
    from kanda import flow
    from kanda.regional.status import RegionFailure
    from kanda.regional.store import store_exists
    from kanda.review.cli import _filter, _print_json
    from regions import all_regions

    settings = load_settings()
    flt = _filter(region, None, None, None, None, None, None)
    codes = sorted(flt.regions) if flt.regions else [c for c in all_regions() if store_exists(settings, c)]
    left_out = [] if flt.regions else [c for c in left_out_regions(None) if store_exists(settings, c)]
    for code in left_out:  # its store has approved fixes waiting as much as any other's: said, never passed over
        error_line(f"region {code} is left out: its region file does not load (`kanda regions check`)")
    observers = flow.installed_observers()
    results: list = []
    failed: dict[str, RegionFailure] = {}
    for code in codes:
        try:
            results.append(flow.reprocess_region(settings, code, observers=observers, actor=actor))
        except Exception as exc:  # isolation: report this region by name, go on with the others
            failed[code] = RegionFailure.of(code, exc)
            results.append(None)
    if as_json:
        _print_json(
            {
                "ok": not failed,
                "regions": [
                    {**r.as_dict(), "error": None} if r is not None else failed[code].as_json()
                    for code, r in zip(codes, results, strict=True)
                ],
            }
        )
    else:
        _print_reprocessed(codes, results, failed)
    if failed or left_out:
        raise typer.Exit(1)


def _print_reprocessed(codes: list[str], results: list, failed: dict) -> None:
    for code, r in zip(codes, results, strict=True):
        if r is None:
            err.print(failed[code].line(), markup=False, soft_wrap=True)
            continue
        if r.missing:
            # said even when nothing else happened: "nothing waiting" hid approved fixes that can never load
            err.print(
                f"{r.region}: item(s) {', '.join(map(str, r.missing))} were decided, but their quarantine row is no"
                " longer in the region's store (was the store rebuilt?): nothing was loaded or recorded for them,"
                " and they stay as they are; see each with `kanda review show ID`",
                markup=False,
                soft_wrap=True,
            )
        if not r.changed:
            console.print(f"{r.region}: nothing {'else ' if r.missing else ''}waiting")
            continue
        console.print(
            f"{r.region}: {len(r.loaded)} loaded, {len(r.duplicates)} duplicate(s), {len(r.quarantined)} quarantined"
            f" again, {len(r.already_loaded)} already loaded, {len(r.rejected_recorded)} rejection(s) recorded"
            + (f"; published {r.publish_id}" if r.publish_id else ""),
            markup=False,
        )
        if r.released_unedited:
            err.print(
                f"{r.region}: item(s) {', '.join(map(str, r.released_unedited))} were released automatically (their"
                " creator was onboarded) before the approved fix reached the store: the events are stored as they"
                " arrived, without the edits; see each item's history",
                markup=False,
                soft_wrap=True,
            )
