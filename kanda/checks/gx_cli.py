"""`kanda expectations`: run the Great Expectations suites, refresh Data Docs, print what failed.

The same functions as the Dagster asset checks (`kanda.checks.gx_runner`); GX is imported only when the command runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from kanda.cli_support import chosen_regions, console, err, parse_date
from kanda.settings import load_settings


def expectations_command(
    region: Annotated[
        list[str] | None,
        typer.Option("--region", "-r", help="Region code (repeatable); default: the host's regions' stores."),
    ] = None,
    date: Annotated[
        list[str] | None,
        typer.Option(
            "--date",
            "-d",
            help="Local day YYYY-MM-DD (repeatable); default: the newest 7 days and the days of the latest batch.",
        ),
    ] = None,
    central: Annotated[bool, typer.Option(help="Also validate the published central rollups.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Validate stored days and published rollups with Great Expectations; build Data Docs. Exit 1 on a failure.

    A region whose store cannot be read or is busy is named on stderr (`NG: FAILED: ...`, `NG: BUSY: ...`; in
    --json under "failed"), the other regions are still validated, and the exit code is 1."""
    from kanda.checks.gx_runner import run_suites
    from kanda.regional.status import RegionFailure

    settings = load_settings()
    codes = chosen_regions(region)
    days = [parse_date(d) for d in date] if date else None
    failed: list[RegionFailure] = []
    with err.status("running the Great Expectations suites"):
        results, index = run_suites(settings, codes, days, central=central, failed=failed)
    if as_json:
        document = {"data_docs": str(index) if index else None, "results": [r.as_json() for r in results]}
        if failed:
            document["failed"] = [f.as_json() for f in failed]
        print(json.dumps(document))
    else:
        _print(results)
        if index:
            console.print(f"Data Docs: {index.as_uri()}  (served by `kanda serve` at /data-docs/)", markup=False)
        else:
            console.print("nothing to validate: no loaded events for these regions and days")
    for f in failed:  # as `kanda publish` names a failed region; a path must stay whole to be copied
        err.print(f.line(), markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed or any(not r.success for r in results) else 0)


def _print(results) -> None:
    table = Table(title="Great Expectations")
    for column in ("region", "day", "suite", "rows", "result", "failing expectations"):
        table.add_column(column, overflow="fold")
    for r in results:
        verdict = f"[green]{r.evaluated} met[/]" if r.success else f"[red]{r.unsuccessful} of {r.evaluated} failed[/]"
        failing = "\n".join(f["summary"] for f in r.failures)
        table.add_row(r.region, r.local_date or "central", r.suite, str(r.rows), verdict, failing)
    console.print(table)
