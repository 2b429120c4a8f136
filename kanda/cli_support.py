"""What every `kanda` command shares: its consoles and how it reads region codes and dates from the user.

Feature commands live beside their features (`kanda/reports/cli.py`, `quality/gx_cli.py`, ...); they take these
from here rather than from `kanda.cli`, which imports them.
"""

from __future__ import annotations

import datetime as dt
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regions import all_regions

# Piped or captured output (CI logs, `| tee`) gets room for the summary tables instead of Rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def chosen_regions(codes: list[str] | None) -> list[str]:
    """The regions asked for (every region when none), upper-cased; exit 2 naming the known ones on a typo."""
    known = all_regions()
    if not codes:
        return list(known)
    chosen = [c.upper() for c in codes]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        err.print(f"[red]Unknown region(s): {', '.join(unknown)}.[/] Known: {', '.join(known)}")
        raise typer.Exit(2)
    return chosen


def parse_date(text: str) -> dt.date:
    """A YYYY-MM-DD day; exit 2 with the expected form otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]not a date (YYYY-MM-DD): {text}[/]")
        raise typer.Exit(2) from None


def progress_bar() -> Progress:
    """A transient bar on stderr, so that piped stdout stays data."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
