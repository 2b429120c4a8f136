"""`kanda query`: its work and its output, shared by the Typer command and the console script's quick path.

A one-shot query is mostly start-up. `answer_plainly` runs `kanda query ...` straight from the console script when
its arguments are written in a form Typer reads the same way (a SQL text and the command's options, each once or
repeated), importing only DuckDB, Rich's table and what finds the publication; anything else (`--help`, a mistake,
`--format=json`, shell completion) is left to the Typer app, so help, usage boxes and exit codes stay Typer's.
Both paths print through `answer`.
"""

from __future__ import annotations

import decimal
import errno
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kanda.central.query import Rows

FORMATS = ("table", "csv", "json")
#: What `--history` runs without SQL: the ids `--as-of` takes (`select * from rollups.publications` has the
#: snapshot ids too).
HISTORY_SQL = (
    "select publish_id, region, strftime(published_at, '%Y-%m-%d %H:%M:%S') as published_at_utc, days, rows"
    " from rollups.publications order by published_at desc, publish_id desc"
)
#: The options of `kanda query` that take a value, and its flags, by their spellings (see `kanda.cli.commands`).
_VALUES = {"--format": "fmt", "-f": "fmt", "--as-of": "as_of"}
_FLAGS = {"--explain": "explain", "--history": "history"}


def answer(
    sql: str | None, *, fmt: str = "table", as_of: str | None = None, explain: bool = False, history: bool = False
) -> int:
    """Run one read-only query and print its answer; the exit code (1: refused or failed, said in one line)."""
    from kanda.central.query import (
        AnswerTooLarge,
        DataUnavailable,
        NothingPublished,
        QueryRefused,
        UnknownPublication,
        explain_text,
        parse_as_of,
        run_query,
        run_query_rows,
    )
    from kanda.cli_support import err
    from kanda.settings import load_settings

    if fmt not in FORMATS:
        err.print("--format must be table, csv or json")
        return 2
    if history:
        sql = sql or HISTORY_SQL
    if not sql:
        err.print("give a SQL query (or --history)")
        return 2
    settings = load_settings()
    arrow = fmt == "csv" and not explain  # only CSV is written from Arrow (by polars); the rest prints Python rows
    try:
        when = parse_as_of(as_of) if as_of else None
        if arrow:
            result = run_query(settings, sql, as_of=when)
        else:
            result = run_query_rows(settings, sql, as_of=when, explain=explain)
    except (QueryRefused, NothingPublished, UnknownPublication, AnswerTooLarge, DataUnavailable) as exc:
        err.print(f"[red]{exc}[/]", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the statement was interrupted, its spill removed with its connection
        err.print("stopped (Ctrl-C)")
        return 130
    except Exception as exc:  # SQL errors from DuckDB: show the message, not a traceback
        err.print(f"[red]query failed:[/] {str(exc).splitlines()[0]}")
        return 1
    if explain:
        print(explain_text(result))
    elif arrow:  # text a spreadsheet would run as a formula gets a leading ', as in the API's CSV
        import polars as pl

        from kanda.csv_safety import neutralise_table

        try:
            text = pl.from_arrow(neutralise_table(result)).write_csv()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # nested values, or a time polars cannot print (its panics are BaseExceptions)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            err.print(f"[red]these rows cannot be written as CSV ({reason}); use --format json[/]", highlight=False)
            return 1
        sys.stdout.write(text)
    else:
        _print_rows(result, fmt)
    return 0


def _print_rows(result: Rows, fmt: str) -> None:
    if fmt == "json":
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        print(json.dumps(rows, default=_json_value, indent=2))
        return
    from rich.table import Table

    from kanda.cli_support import console

    table = Table()
    for column in result.columns:
        # Folded, never cut: Rich's default ellipsis turned 3415000 into `34150…` in a narrow terminal or a pipe,
        # a plausible wrong figure. A folded cell keeps every digit.
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _json_value(value: object) -> object:
    """JSON for what SQL returns beyond JSON's own types: a DECIMAL stays a number, anything else is its text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def plain_arguments(args: list[str]) -> dict[str, Any] | None:
    """`answer`'s arguments from `kanda query ARGS` written plainly (`--format json`, not `--format=json`), or None
    when Typer must read them: it alone prints help and usage errors."""
    options: dict[str, Any] = {"sql": None, "fmt": "table", "as_of": None, "explain": False, "history": False}
    given, valued = iter(args), set()
    for arg in given:
        if arg in _FLAGS:
            options[_FLAGS[arg]] = True
        elif arg in _VALUES:
            value = next(given, None)
            if value is None or value.startswith("-"):
                return None
            if _VALUES[arg] in valued:
                return None  # given twice: Typer's usage box says so (kanda.cli.commands._values_once)
            valued.add(_VALUES[arg])
            options[_VALUES[arg]] = value
        elif arg.startswith("-") or options["sql"] is not None:
            return None
        else:
            options["sql"] = arg
    return options


def answer_plainly(argv: list[str]) -> int | None:
    """The exit code of `kanda query ...` answered without the Typer app, or None if the Typer app must run it."""
    if argv[:1] != ["query"] or any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    options = plain_arguments(argv[1:])
    if options is None:
        return None
    try:
        return answer(**options)
    except KeyboardInterrupt:
        return 130  # as Typer ends an interrupted command: quietly
    except OSError as exc:  # the reader of a pipe went away (`kanda query ... | head`): stop quietly, as Click does
        if exc.errno != errno.EPIPE:
            raise
        _quiet_stdout()
        return 1


def _quiet_stdout() -> None:
    """Send what is left of stdout to /dev/null, so the interpreter's last flush cannot fail again on the pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
