"""`kanda reports`: write or deliver creators' daily reports of a local day.

Without `--deliver` nothing is sent: every report is rendered to `KANDA_HOME/reports/<region>/<date>/` for a look,
and nothing is recorded (a preview never stops the real delivery). `--deliver` sends through SMTP when
`KANDA_SMTP_HOST` is set, else writes the outbox (`KANDA_HOME/outbox/<region>/<date>/<creator>.eml`), and records
each delivery so that a rerun sends nothing twice unless `--resend`.

Exit codes: 0 all reports written (or delivered before, or their creator unsubscribed); 1 a delivery failed, a
creator was skipped because their registry name or address is unsafe (a line break: named on stderr, the other
reports still go out), a requested day is not reportable yet (not over in the region's zone, or not
published), or a region's store cannot be read or is busy (named on stderr as `NG: FAILED: ...` or `NG: BUSY: ...`;
the other regions' reports are still written); 2 usage errors.
"""

from __future__ import annotations

from typing import Annotated

import typer


def reports_command(
    date: Annotated[
        str | None,
        typer.Option("--date", "-d", help="Local day YYYY-MM-DD; default: each region's last closed local day."),
    ] = None,
    region: Annotated[list[str] | None, typer.Option("--region", "-r", help="Region code (repeatable).")] = None,
    creator: Annotated[
        list[str] | None, typer.Option("--creator", "-c", help="Only this creator id, e.g. KE-C0001 (repeatable).")
    ] = None,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Send (SMTP) or write the outbox, and record; default: preview only.")
    ] = False,
    resend: Annotated[bool, typer.Option("--resend", help="With --deliver: send again what was sent before.")] = False,
) -> None:
    """Write creators' daily reports (preview), or --deliver them once each through SMTP or the outbox."""
    from rich.markup import escape
    from rich.table import Table

    from kanda.cli_support import chosen_regions, console, err, parse_date, progress_bar, usage_error
    from kanda.reports.run import registered_creators, write_reports
    from kanda.settings import load_settings
    from regions import all_regions

    if resend and not deliver:
        usage_error("only makes sense with --deliver", "--resend")
    day = parse_date(date) if date else None
    from kanda.settings import served_regions

    # a region host (KANDA_REGIONS) reports its own regions: a store of another region left on it is not its to send
    codes = chosen_regions(region) if region or served_regions() else None
    # `-c KE-C0001,KE-C0002` is read as two, as it is meant
    creators = [c.strip().upper() for given in creator for c in given.split(",") if c.strip()] if creator else None
    if creator and not creators:
        usage_error("no creator id given (e.g. KE-C0001)", "--creator")
    if creators:
        unknown = [c for c in creators if c.split("-", 1)[0] not in all_regions()]
        if unknown:
            usage_error(f"not a creator id of a known region: {', '.join(unknown)} (e.g. KE-C0001)", "--creator")
        if codes:
            outside = [c for c in creators if c.split("-", 1)[0] not in codes]
            if outside:
                usage_error(f"not of the chosen region(s) {', '.join(codes)}: {', '.join(outside)}", "--creator")
    settings = load_settings()
    if creators:
        unregistered = sorted(set(creators) - registered_creators(settings, creators))
        if unregistered:
            usage_error(f"not in the creator registry: {', '.join(unregistered)}", "--creator")
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def progress(code: str, done: int, total: int) -> None:
            if code not in tasks:
                tasks[code] = bar.add_task(f"reports {code}", total=total)
            bar.update(tasks[code], completed=done)

        summary = write_reports(settings, day, regions=codes, creators=creators, deliver=deliver, resend=resend,
                                progress=progress)  # fmt: skip

    verb = {"preview": "previewed", "outbox": "in outbox", "smtp": "sent"}[summary.mode]
    table = Table(title=f"creator reports ({summary.mode})")
    columns = ("region", "day", "status", "reports", verb, "sent before", "unsubscribed", "failed", "skipped",
               "held notes", "where")  # fmt: skip
    for column in columns:
        numeric = column not in {"region", "day", "status", "where"}
        table.add_column(column, justify="right" if numeric else "left", overflow="fold", no_wrap=column != "where")
    for r in summary.regions:
        style = "green" if r.ready else ("red" if r.failure else "yellow")
        table.add_row(
            r.region,
            r.local_date.isoformat(),
            f"[{style}]{r.status}[/]",
            str(r.reports),
            str(r.written),
            str(r.skipped),
            str(len(r.unsubscribed)),
            f"[red]{len(r.failed)}[/]" if r.failed else "0",
            f"[red]{len(r.refused)}[/]" if r.refused else "0",
            str(r.held_creators),
            r.location,
        )
    console.print(table)
    requested = bool(region or creators)
    problems = False
    for r in summary.regions:
        if r.status == "no_store" and not requested:
            continue
        if r.failure is not None:  # as `kanda publish` names a failed region; a path must stay whole to be copied
            err.print(r.failure.line(), markup=False, soft_wrap=True, style="yellow" if r.failure.busy else "red")
            problems = True
        elif not r.ready:
            err.print(f"[yellow]{r.region}: no reports:[/] {r.message}")
            problems = True
        for creator_id, why in r.failed.items():
            err.print(f"[red]{r.region} {escape(creator_id)}: not delivered:[/] {escape(why)}")
            problems = True
        for creator_id, why in r.refused.items():
            err.print(f"[red]{r.region} {escape(creator_id)}: skipped:[/] {escape(why)}")
            problems = True
        if r.unsubscribed:
            console.print(f"{r.region}: not sent, unsubscribed: {escape(', '.join(r.unsubscribed))}")
    if creators and not any(r.reports for r in summary.regions):
        console.print(f"no activity for {', '.join(creators)} on that day: no report")
    if summary.mode == "preview" and summary.written:
        console.print("preview only: nothing was sent or recorded; add --deliver to deliver")
    raise typer.Exit(1 if problems else 0)
