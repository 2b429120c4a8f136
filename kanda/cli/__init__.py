"""The `kanda` command line: the console script's entry point, light to import.

The commands are a Typer app (`kanda.cli.commands`, also `kanda.cli.app`), and every command calls the same
functions the Dagster assets call. Building that app imports typer, click and every command's modules, a good part
of a one-shot `kanda query`'s start-up, so `main` answers a plainly written `kanda query ...` without it
(`kanda.cli.query`); everything else, and any query whose arguments it is not sure of, goes to the Typer app.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from contextlib import suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

#: kanda's own failures that end a command with their message (module, class). Looked up, not imported: importing
#: them would load pandera, pandas and polars into every command, `kanda query` included.
KANDA_FAILURES = (
    ("kanda.regional.store", "StoreBusy"),  # PublishBusy is one too
    ("kanda.regional.store", "SaltMismatch"),
    ("kanda.regional.store", "StoreDamaged"),
    ("kanda.central.publish", "HistoryNotInStore"),  # a lost store's new history, refused before it replaced the old
    ("kanda.regional.ledger", "UnbalancedBatch"),
    ("quality.boundary", "ContractShapeError"),
    ("kanda.analyst.snapshot", "SnapshotBusy"),
    ("kanda.central.query", "NothingPublished"),
    ("kanda.settings", "WarehouseMismatch"),
    ("kanda.settings", "BadSetting"),
    ("kanda.settings", "UnusableHome"),  # KANDA_HOME under a file, read-only, not allowed
    ("kanda.regional.ingest", "RegistryError"),  # a broken creator or product record of the region
    ("kanda.regional.ingest", "LandingTaken"),  # a region file whose landing folder is another region's
    ("regions.yamlfile", "SpecError"),  # a region file or rail spec that does not validate (file:line: problem)
)
#: A full disk in the words of the libraries that write files for kanda (polars' Parquet writer, DuckDB).
_DISK_FULL = re.compile(r"No space left on device|os error 28|ENOSPC")
#: System errors that say the data directory cannot be used (no right to it, read-only, full, under a file), as
#: opposed to a bug: one `Error:` line when the path they name is under KANDA_HOME.
HOME_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR") if hasattr(errno, name)
)


def __getattr__(name: str) -> Any:
    """`kanda.cli.app`: the Typer app, built on first use (tests and `typer.testing.CliRunner` take it from here)."""
    if name == "app":
        from kanda.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The console script: kanda's own failures end as one line `Error: ...` and exit 1, not a traceback.

    Usage errors never get here: Typer shows them in its usage box (exit 2). Anything else is a bug, and its
    traceback is what a bug report needs.
    """
    try:
        if sys.argv[1:2] == ["query"]:  # a process that runs analyst SQL (not a test runner's, which calls `app`)
            from kanda.memory_cap import cap_address_space
            from kanda.settings import KANDA, environment

            # the environment alone: loading the settings would create a data folder even for `--help`
            env = environment(KANDA)
            cap_address_space(env["analyst_memory"], env["duckdb_memory"])
        from kanda.cli.query import answer_plainly

        code = answer_plainly(sys.argv[1:])
        if code is None:
            from kanda.cli.commands import app

            app()
    except Exception as exc:
        message = _own_failure(exc)
        if message is None:
            raise
        from kanda.cli_support import error_line

        error_line(message)
        sys.exit(1)
    sys.exit(code)


def _kanda_failure(exc: BaseException) -> bool:
    """Whether `exc` is one of `KANDA_FAILURES`. A class whose module was never imported cannot have been raised."""
    for module, name in KANDA_FAILURES:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def _own_failure(exc: Exception) -> str | None:
    """The one line for a failure of kanda's own, or None for a bug (looked up without importing anything new)."""
    validation = getattr(sys.modules.get("pydantic"), "ValidationError", None)
    if validation and isinstance(exc, validation) and exc.title in {"KandaEnvironment", "SmtpEnvironment"}:
        return _settings_problem(exc)  # a bad KANDA_* value, refused by pydantic-settings
    if _kanda_failure(exc):
        return f"{'; '.join(str(exc).splitlines())} ({type(exc).__name__})"  # a SpecError has a line per problem
    if isinstance(exc, OSError) and exc.errno in HOME_ERRNOS:
        return _home_problem(exc)
    if _DISK_FULL.search(str(exc)):  # polars and DuckDB say so in their own errors, not an OSError
        return (
            "a disk kanda writes to is full (staging, a store or a spill file under KANDA_HOME): free space and run"
            f" the command again, which finishes what this one rolled back ({type(exc).__name__})"
        )
    if isinstance(exc, OSError):
        from kanda.object_store import CHECK_SETTINGS, out_of_reach

        first = out_of_reach(exc)
        if first:  # pyarrow's S3 client, reading the central tables
            return f"the object store cannot be reached or refused access ({first}); {CHECK_SETTINGS}"
    argument = getattr(sys.modules.get("sqlalchemy.exc"), "ArgumentError", None)
    if argument and isinstance(exc, argument):
        # A URL SQLAlchemy cannot use; its own message may quote the whole URL, password included
        unknown = type(exc).__name__ == "NoSuchModuleError"
        cause = f": {exc}" if unknown else ""
        return f"a database URL kanda uses cannot be used{cause} (check KANDA_APP_DB_URL and KANDA_CATALOG_URL)"
    operational = getattr(sys.modules.get("sqlalchemy.exc"), "OperationalError", None)
    if operational and isinstance(exc, operational):
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if _CONNECTION_FAILED.search(cause):  # a server down, a wrong host, port or password
            return (
                f"a database kanda uses cannot be reached or refused the connection: {cause}"
                " (check KANDA_APP_DB_URL, KANDA_CATALOG_URL and that the server runs)"
            )
        return f"a database kanda uses refused the operation: {cause}"  # locked, read-only, a timeout, ...
    return None


#: Connection failures as psycopg, psycopg2 and SQLite word them (as opposed to a lock, a timeout, a full disk).
_CONNECTION_FAILED = re.compile(
    r"connection (failed|refused|to server)|could not connect|could not translate host|password authentication"
    r"|unable to open database|no such host|timeout expired|server closed the connection",
    re.IGNORECASE,
)


def _home_problem(exc: OSError) -> str | None:
    """`KANDA_HOME <home> cannot be used: <reason>: <path>` for a system error on a path under KANDA_HOME."""
    from pathlib import Path

    given = Path(os.environ.get("KANDA_HOME") or ".kanda").expanduser()
    homes = {given.absolute()}
    with suppress(OSError, RuntimeError):
        homes.add(given.resolve())  # as `load_settings` has it, links followed
    for name in (exc.filename, exc.filename2):
        if not isinstance(name, str | bytes | os.PathLike):
            continue
        path = Path(os.path.abspath(os.fsdecode(name)))
        if any(path.is_relative_to(home) for home in homes):
            return f"KANDA_HOME {given} cannot be used: {exc.strerror}: {path} ({type(exc).__name__})"
    return None


def _settings_problem(exc: ValidationError) -> str:
    """`KANDA_LOCK_WAIT='abc': Input should be a valid number` for each bad variable, on one line."""
    from kanda.settings import GROUPS, PATTERN_MEANINGS

    prefix = GROUPS[exc.title].prefix
    problems = []
    for e in exc.errors():
        name = "_".join(str(part) for part in e["loc"])
        name = name if name.upper().startswith(prefix) else f"{prefix}{name}"
        message = PATTERN_MEANINGS.get(e.get("ctx", {}).get("pattern"), e["msg"])
        problems.append(f"{name.upper()}={e.get('input')!r}: {message}")
    return "; ".join(problems)
