"""The `kanda` command line: the console script's entry point, light to import.

The commands are a Typer app (`kanda.cli.commands`, also `kanda.cli.app`), and every command calls the same
functions the Dagster assets call. Building that app imports typer, click and every command's modules, a good part
of a one-shot `kanda query`'s start-up, so `main` answers a plainly written `kanda query ...` without it
(`kanda.cli.query`); everything else, and any query whose arguments it is not sure of, goes to the Typer app.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

#: kanda's own failures that end a command with their message (module, class). Looked up, not imported: importing
#: them would load pandera, pandas and polars into every command, `kanda query` included.
KANDA_FAILURES = (
    ("kanda.regional.store", "StoreBusy"),  # PublishBusy is one too
    ("kanda.regional.store", "SaltMismatch"),
    ("kanda.regional.ledger", "UnbalancedBatch"),
    ("quality.boundary", "ContractShapeError"),
    ("kanda.analyst.snapshot", "SnapshotBusy"),
    ("kanda.central.query", "NothingPublished"),
    ("kanda.settings", "WarehouseMismatch"),
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
        return f"{exc} ({type(exc).__name__})"
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
