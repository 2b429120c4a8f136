"""Analyst SQL of the HTTP API runs in processes of its own, so that its time limit is a hard deadline.

The time limit inside a statement (`kanda.central.query`) is a timer calling DuckDB's `interrupt()`, which DuckDB
checks between batches of rows: one expensive value is computed to its end first. `list_reduce` over
`range(30000000)` four times answered after 29 s under a 1 s limit, `list_sort`, `regexp_replace` of a long string
and `damerau_levenshtein` after 40-71 s, and a larger `range` in the same statement holds a core for hours. No
deny-list of functions closes that: `levenshtein`, `list_intersect` and the regexp functions do the same. A process
can be stopped anywhere, so each API worker keeps a small pool of processes (`KANDA_API_SQL_PROCESSES`, default 2),
started with the app, that run analyst statements; one still running `GRACE_SECONDS` past the time limit is killed
and replaced (pebble's `ProcessPool`), and the request gets the 408 of any other time limit. Only answers are
cached (`kanda.analyst.answer_cache`), so a stopped statement is tried again on the next request.

What runs where: the API worker resolves the publication and hands the statement to a child. The child opens the
publication's read-only, locked-down file with the same opener as the API (`kanda.analyst.reader_pool`, so each
child keeps its readers open per publication, under the same memory limit and UTC time zone), checks the statement
(`check_read_only`) and whether its answer may be kept (`answer_varies`), runs it with the same row, byte and time
limits (`run_checked`: DuckDB's own interrupt still answers first whenever it can) under the analysts'
address-space cap, and sends the rows back as Arrow IPC bytes; the API worker formats them as it always has. The
checks run in the child because they walk the statement's parse tree in Python: a statement of a few hundred
kilobytes (a long `IN` list) costs seconds to check, which in the API worker no time limit would stop, and several
at once stalled every other analyst's requests. Errors come back as kanda's own errors with their messages, so a
refused statement is a 403 with its reason as before.

At most `KANDA_API_SQL_PROCESSES` statements of one API worker run at a time; more wait for a free process, and the
time limit counts from when a statement starts. One API key may have at most `KANDA_API_SQL_PER_KEY` statements
running in a worker (default: one fewer than the processes, at least one): its next ones wait for its own to end
(up to `KANDA_API_SQL_WAITING_PER_KEY`, default 8; more are refused at once, `KeyBusy`, a 429), so that one
analyst's slow statements, sent again and again, never hold every process while everybody else's wait. Each
process is a DuckDB instance with the installation's memory limit of its own. Processes are started with `spawn`
(a fresh interpreter: forking a threaded server is not safe). `kanda query` on the command line runs in the
analyst's own process and stays there: its time limit (`KANDA_QUERY_TIMEOUT`) has the same gap, and Ctrl-C stops it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from pebble import ProcessExpired, ProcessPool

from kanda.analyst.reader_pool import shared_reader
from kanda.analyst.volatile import answer_varies
from kanda.central.query import (
    AnswerTooLarge,
    DataUnavailable,
    QueryFailed,
    QueryRefused,
    QueryResult,
    QueryTimeout,
    Resolved,
    _timeout,
    check_read_only,
    run_checked,
)
from kanda.memory_cap import cap_address_space
from kanda.settings import Settings

log = logging.getLogger(__name__)

#: How long past its time limit a statement may run before its process is killed: DuckDB's interrupt, checked
#: between batches of rows, answers well within it; what runs on is one value that no interrupt reaches.
GRACE_SECONDS = 2.0
#: kanda's errors that travel back from a child with their message (anything else is a 500 in the API worker).
_ERRORS: dict[str, type[BaseException]] = {
    cls.__name__: cls for cls in (QueryRefused, QueryFailed, QueryTimeout, AnswerTooLarge, DataUnavailable, MemoryError)
}


def processes_wanted() -> int:
    """`KANDA_API_SQL_PROCESSES`: statements of one API worker that may run at once (at least 1)."""
    return max(1, int(os.environ.get("KANDA_API_SQL_PROCESSES", "2")))


def statements_per_key() -> int:
    """`KANDA_API_SQL_PER_KEY`: statements one API key may have running in one API worker at once."""
    return max(1, int(os.environ.get("KANDA_API_SQL_PER_KEY", str(max(1, processes_wanted() - 1)))))


def waiting_per_key() -> int:
    """`KANDA_API_SQL_WAITING_PER_KEY`: statements one API key may have waiting for its turn in one API worker."""
    return max(0, int(os.environ.get("KANDA_API_SQL_WAITING_PER_KEY", "8")))


class KeyBusy(Exception):
    """The API key has as many statements running and waiting here as one key may: it waits for an answer first."""


_RUNNING: Counter[str] = Counter()
_WAITING: Counter[str] = Counter()
_TURNS = threading.Condition()


@contextmanager
def _key_slot(holder: str | None) -> Iterator[None]:
    """A turn of `holder`'s own: while the key has its share running, its next statement waits for one of them (a
    dashboard's panels, one after another), never for another key's, and past its waiting share it is refused."""
    if holder is None:
        yield
        return
    allowed = statements_per_key()
    with _TURNS:
        if _RUNNING[holder] >= allowed:
            if _WAITING[holder] >= waiting_per_key():
                raise KeyBusy(
                    f"the API key {holder!r} already has {allowed} statement(s) running here and"
                    f" {_WAITING[holder]} waiting: send the next one when an answer is back"
                )
            _WAITING[holder] += 1
            try:
                _TURNS.wait_for(lambda: _RUNNING[holder] < allowed)
            finally:
                _WAITING[holder] -= 1
                if not _WAITING[holder]:
                    del _WAITING[holder]
        _RUNNING[holder] += 1
    try:
        yield
    finally:
        with _TURNS:
            _RUNNING[holder] -= 1
            if not _RUNNING[holder]:
                del _RUNNING[holder]
            _TURNS.notify_all()


@dataclass(frozen=True)
class _Job:
    settings: Settings
    resolved: Resolved
    sql: str
    max_rows: int | None
    max_bytes: int | None
    timeout_seconds: float | None


@dataclass(frozen=True)
class _Rows:
    ipc: bytes
    truncated: bool
    varies: bool


@dataclass(frozen=True)
class _Failed:
    kind: str
    message: str
    attributes: dict[str, object] = field(default_factory=dict)


def run_statement(
    settings: Settings,
    resolved: Resolved,
    sql: str,
    *,
    max_rows: int | None,
    max_bytes: int | None,
    timeout_seconds: float | None,
    holder: str | None = None,
) -> tuple[QueryResult, bool]:
    """Check and run analyst SQL in a pool process, at the publication `resolved` names: the same answer and errors
    as `kanda.central.query.execute`, and `QueryTimeout` at the latest `GRACE_SECONDS` after the time limit, whatever
    checking or running the statement costs. Also says whether the answer may differ another time at the same
    publication (`kanda.analyst.volatile.answer_varies`: then it is not kept). `holder` is the API key asking:
    `KeyBusy` if it has its share of the processes already."""
    job = _Job(settings, resolved, sql, max_rows, max_bytes, timeout_seconds)
    with _key_slot(holder):
        future = _schedule(job, timeout_seconds + GRACE_SECONDS if timeout_seconds else None)
        try:
            outcome = future.result()
        except FutureTimeout:  # pebble killed the process; a new one takes its place
            raise _timeout(timeout_seconds) from None
        except ProcessExpired as exc:
            how = f"signal {-exc.exitcode}" if exc.exitcode and exc.exitcode < 0 else f"exit code {exc.exitcode}"
            raise QueryFailed(
                f"the process running the query ended abruptly ({how}), which a query needing more memory than"
                " analyst SQL may use here can cause (KANDA_DUCKDB_MEMORY, KANDA_ANALYST_MEMORY): aggregate or filter"
                " sooner"
            ) from None
    if isinstance(outcome, _Failed):
        raise _rebuilt(outcome)
    table = pa.ipc.open_stream(outcome.ipc).read_all()
    return QueryResult(table, outcome.truncated, resolved.publication), outcome.varies


def _rebuilt(failed: _Failed) -> BaseException:
    """The child's error as the same kind, with the same message (and attributes), for the API's error mapping."""
    kind = _ERRORS.get(failed.kind)
    if kind is None:
        return RuntimeError(f"analyst SQL process: {failed.message}")
    error = kind.__new__(kind)
    error.args = (failed.message,) if failed.message else ()
    for name, value in failed.attributes.items():
        setattr(error, name, value)
    return error


# --- the pool: one per API worker process, started with the app (or by its first statement) ----------------------

_LOCK = threading.Lock()
_POOL: tuple[int, ProcessPool] | None = None


def start() -> ProcessPool:
    """This process's pool, its processes started (a statement then pays no start-up); idempotent."""
    global _POOL
    with _LOCK:
        if _POOL is not None and _POOL[0] == os.getpid():
            pool = _POOL[1]
            if pool.active:
                return pool
            pool.stop()  # broken (a process could not start, a loop thread died): replaced below
            pool.join()
        pool = ProcessPool(
            max_workers=processes_wanted(), initializer=_ready, context=multiprocessing.get_context("spawn")
        )
        _ = pool.active  # starts the processes now, not at the first statement
        _POOL = (os.getpid(), pool)
        return pool


def stop() -> None:
    """Stop this process's pool and its processes (the app's shutdown; also at exit)."""
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = None
            return
        pool = _POOL[1]
        _POOL = None
    pool.stop()
    pool.join()


def _schedule(job: _Job, deadline: float | None):
    try:
        return start().schedule(_answer, args=(job,), timeout=deadline)
    except RuntimeError:  # the pool broke or was stopped meanwhile: `start` replaces it, once
        return start().schedule(_answer, args=(job,), timeout=deadline)


# multiprocessing runs its finalizers before it joins child processes at exit, in `kanda serve`'s workers (which
# are multiprocessing children, where `atexit` does not run) as in a main process: without this, a worker waiting
# for the pool's processes to end would never exit.
multiprocessing.util.Finalize(None, stop, exitpriority=10)


# --- in the child -------------------------------------------------------------------------------------------------


def _ready() -> None:
    """Each process, once: a kill ends it at once. pebble asks a process to exit with SIGTERM, handled in Python,
    which cannot run while DuckDB computes; it would then wait seconds before SIGKILL."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _answer(job: _Job) -> _Rows | _Failed:
    """Check and run one statement; the rows as Arrow IPC, or kanda's error as kind and message (an exception of any
    kind cannot be relied on to cross the pipe, and one that fails there would break the pool)."""
    settings = job.settings
    try:
        cap_address_space(settings.analyst_memory, settings.duckdb_memory_limit)
        with shared_reader(settings, resolved=job.resolved) as central:
            check_read_only(central.con, job.sql)
            varies = answer_varies(central.con, job.sql)  # once checked: the statement parses
            result = run_checked(
                central, job.sql, max_rows=job.max_rows, max_bytes=job.max_bytes, timeout_seconds=job.timeout_seconds
            )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, result.table.schema) as writer:
            writer.write_table(result.table)
        return _Rows(sink.getvalue().to_pybytes(), result.truncated, varies)
    except tuple(_ERRORS.values()) as exc:
        attributes = {k: v for k, v in vars(exc).items() if isinstance(v, str | int | float | bool | None)}
        return _Failed(type(exc).__name__, str(exc), attributes)
    except duckdb.Error as exc:  # as the API reports any other DuckDB error: its first line
        return _Failed(QueryFailed.__name__, str(exc).splitlines()[0])
    except Exception as exc:
        log.exception("analyst SQL failed in its process")
        return _Failed("", f"{type(exc).__name__}: {exc}")
