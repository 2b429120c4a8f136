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
        list[str] | None, typer.Option("--region", "-r", help="Region code (repeatable); default: every store.")
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
    """Validate stored days and published rollups with Great Expectations; build Data Docs. Exit 1 on a failure."""
    from kanda.checks.gx_runner import run_suites

    settings = load_settings()
    codes = chosen_regions(region)
    days = [parse_date(d) for d in date] if date else None
    with err.status("running the Great Expectations suites"):
        results, index = run_suites(settings, codes, days, central=central)
    if as_json:
        print(json.dumps({"data_docs": str(index) if index else None, "results": [r.as_json() for r in results]}))
    else:
        _print(results)
        if index:
            console.print(f"Data Docs: {index.as_uri()}  (served by `kanda serve` at /data-docs/)", markup=False)
        else:
            console.print("nothing to validate: no loaded events for these regions and days")
    raise typer.Exit(1 if any(not r.success for r in results) else 0)


def _print(results) -> None:
    table = Table(title="Great Expectations")
    for column in ("region", "day", "suite", "rows", "result", "failing expectations"):
        table.add_column(column, overflow="fold")
    for r in results:
        verdict = f"[green]{r.evaluated} met[/]" if r.success else f"[red]{r.unsuccessful} of {r.evaluated} failed[/]"
        failing = "\n".join(f["summary"] for f in r.failures)
        table.add_row(r.region, r.local_date or "central", r.suite, str(r.rows), verdict, failing)
    console.print(table)
