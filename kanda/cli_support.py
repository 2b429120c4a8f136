"""What every `kanda` command shares: its consoles, its two kinds of error, its progress bars, and how it reads
region codes and dates from the user.

Feature commands live beside their features (`kanda/reports/cli.py`, `quality/gx_cli.py`, ...); they take these
from here rather than from `kanda.cli.commands`, which imports them.

Errors come in two kinds and each has one look: a mistake in how the command was called is Typer's usage box
(exit 2, `usage_error`); kanda refusing or failing at its work is one line `Error: ...` (exit 1, `fail`, and
`kanda.cli.main` for kanda's own exceptions). Never both, never a traceback.

Importing this module costs only Rich's console: typer, Rich's progress bars and the region configs are imported
where they are used, so that `kanda query` (which prints through these consoles) does not pay for them.
"""

from __future__ import annotations

import datetime as dt
import stat
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# Piped or captured output (CI logs, `| tee`) gets room for the summary tables instead of Rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def usage_error(message: str, param: str | None = None) -> NoReturn:
    """The command was called wrongly: Typer's usage box naming the option, exit 2."""
    import typer

    raise typer.BadParameter(message, param_hint=param)  # Typer adds the command's usage line


def fail(message: str) -> NoReturn:
    """kanda could not do what was asked: one line `Error: ...` on stderr, exit 1."""
    import typer

    error_line(message)
    raise typer.Exit(1)


def error_line(message: str) -> None:
    """One unwrapped line (a path or an id in it must stay whole to be copied); the message is never markup."""
    err.print(f"[red]Error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def chosen_regions(codes: list[str] | None) -> list[str]:
    """The regions asked for, upper-cased; when none, every region this host serves (`KANDA_REGIONS`, default all:
    a region host's stores and landing folders are its own regions'). A usage error names the known ones on a typo."""
    from kanda.settings import served_regions, serves_region
    from regions import all_regions, unavailable_regions

    known = all_regions()
    broken = unavailable_regions()
    for code in [c.upper() for c in codes or served_regions()]:
        if code in broken:  # its file did not load: say which file and why, not "unknown region"
            fail(f"region {code} cannot be used: {'; '.join(broken[code].splitlines())}")
    if not codes:
        unknown = [code for code in served_regions() if code not in known]
        if unknown:  # a typo would make every command quietly do nothing
            usage_error(f"KANDA_REGIONS names unknown region(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for code, reason in broken.items():  # left out of "every region": said, not passed over in silence
            if serves_region(code):
                error_line(f"region {code} is left out: {' '.join(reason.split())}")
        return [code for code in known if serves_region(code)]
    chosen = [c.upper() for c in codes]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        usage_error(f"unknown region(s) {', '.join(unknown)}; known: {', '.join(known)}", "--region")
    return chosen


def left_out_regions(codes: list[str] | None) -> list[str]:
    """The regions this host serves that `chosen_regions(codes)` left out of "every region" because their region
    file does not load. A command over every region exits 1 for them (after doing the others): a cron job or CI
    step reading exit 0 would take a region that never ran for a region with nothing to do."""
    from kanda.settings import serves_region
    from regions import unavailable_regions

    return [] if codes else sorted(code for code in unavailable_regions() if serves_region(code))


#: The days a command takes: no sale predates 1970, and a day near year 9999 has no day after it to compute with
#: (a report's trend, a day's end in UTC): such a date is a typo, answered as one rather than as a failing store.
DATES = (dt.date(1970, 1, 1), dt.date(9998, 12, 31))


def parse_date(text: str) -> dt.date:
    """A YYYY-MM-DD day; a usage error with the expected form otherwise."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        usage_error(f"not a date (YYYY-MM-DD): {text}")
    if not DATES[0] <= day <= DATES[1]:
        usage_error(f"date out of range ({DATES[0]} to {DATES[1]}): {text}")
    return day


def progress_bar() -> Progress:
    """A transient bar of items on stderr, so that piped stdout stays data; nothing at all when stderr is not a
    terminal (CI logs, tests), where a redrawn bar would only be noise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def transfer_bar() -> Progress:
    """Like `progress_bar`, for work measured in bytes: how much of the total, at what rate, how long still."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


class FileBytes:
    """Ingestion's progress callback, `(file name, rows so far)`, turned into bytes of a known total.

    The total is the size of the files about to be ingested, known before the first row is read. Readers stream
    and report rows, not byte offsets, so within a file the bytes done are estimated from the rows done and the
    file's rows per byte (sampled from its head, see `estimated_rows`); a file counts whole once the next one
    starts or the run ends. Files that are rejected or already ingested report no rows and just count as done.
    """

    def __init__(self, bar: Progress, label: str, paths: Sequence[Path]) -> None:
        self.bar, self.label = bar, label
        self._files: dict[str, tuple[int, int, int]] = {}  # name -> (bytes before it, its size, estimated rows)
        offset = 0
        for path in paths:
            size = _regular_size(path)
            self._files.setdefault(path.name, (offset, size, estimated_rows(path, size) if size else 1))
            offset += size
        self.total = offset
        self.completed = 0
        self.task: TaskID = bar.add_task(label, total=self.total)

    def __call__(self, name: str, rows: int) -> None:
        before, size, expected = self._files.get(name, (self.completed, 0, 1))
        done = before + min(size, size * rows // max(expected, 1))
        self.completed = max(self.completed, done)  # never backwards, even when a file had more rows than sampled
        self.bar.update(self.task, completed=self.completed, description=f"{self.label} {name}")

    def finish(self) -> None:
        self.completed = self.total
        self.bar.update(self.task, completed=self.total, description=self.label)


def estimated_rows(path: Path, size: int | None = None, sample: int = 1 << 20) -> int:
    """Rows a file probably holds, from the rows in its first MiB: newlines in a text file, `<row` elements in an
    XLSX sheet (scaled to the sheet's uncompressed size). At least 1; a file that cannot be read is 1 row (the
    ingest will say why)."""
    try:
        size = path.stat().st_size if size is None else size
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as book:
                sheets = [i for i in book.infolist() if i.filename.startswith("xl/worksheets/")]
                if not sheets:
                    return 1
                sheet = max(sheets, key=lambda i: i.file_size)
                with book.open(sheet) as handle:
                    head = handle.read(sample)
                return max(1, head.count(b"<row") * sheet.file_size // max(len(head), 1))
        with path.open("rb") as handle:
            head = handle.read(sample)
        return max(1, head.count(b"\n") * size // max(len(head), 1))
    except (OSError, zipfile.BadZipFile):
        return 1


def _regular_size(path: Path) -> int:
    """A plain file's size; 0 for anything ingestion will refuse unread (a link, a pipe, a missing file), which
    is never opened here either."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0
