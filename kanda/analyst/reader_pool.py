"""Prepared readers shared between the API's requests: one locked-down database per publication, a cursor each.

Opening a reader (`kanda.central.query.open_central`) costs tens of milliseconds, mostly DuckDB binding each Parquet
view, which is most of an API request. A publication never changes, so its prepared database can serve every request
that reads it: each request still resolves the newest publication itself (a cached catalog lookup) and gets its own
cursor on that publication's database. A cursor is a separate DuckDB connection to the same database: it sees the
same `rollups.<table>` and inherits the lockdown (global settings), and `interrupt()` on it stops only its own query.

The pool keeps the few most recently used databases per process. One that falls out while requests still use it is
closed by the last of them (closing a DuckDB connection closes its cursors), never under a running query.

What sharing gives up: a private reader kept even an unchecked write to itself. Here a write would be seen by later
requests for that publication in this process (never by the warehouse: external access is off), so writes are kept
out by the statement check alone (`kanda.central.query.check_read_only`, DuckDB's own parser's statement type), which
every analyst statement passes before it runs; kanda's own rollup SQL is fixed and parametrised.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from kanda.central.query import AsOf, Central, Resolved, prepare_database, resolve
from kanda.settings import Settings

#: Prepared databases kept per process: the newest publication, and a few older ones `as_of` asked for.
POOL_SIZE = 4

_Key = tuple[str, str, str, str]


class _Prepared:
    """One publication's database, built by its first user, closed when it has left the pool and is unused."""

    def __init__(self) -> None:
        self.build_lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.users = 0
        self.retired = False


_LOCK = threading.Lock()
_POOL: OrderedDict[_Key, _Prepared] = OrderedDict()


@contextmanager
def shared_reader(settings: Settings, *, as_of: AsOf | None = None) -> Iterator[Central]:
    """A locked-down reader of exactly one publication (the newest unless `as_of`), on a cursor of its own."""
    resolved = resolve(settings, as_of=as_of)
    key = (settings.warehouse_uri, settings.catalog_url, settings.duckdb_memory_limit, resolved.publication.publish_id)
    entry = _checkout(key)
    try:
        cursor = _cursor(entry, settings, resolved)
        try:
            yield Central(cursor, resolved.publication)
        finally:
            cursor.close()
    finally:
        _release(entry)


def _checkout(key: _Key) -> _Prepared:
    with _LOCK:
        entry = _POOL.get(key)
        if entry is None:
            entry = _POOL[key] = _Prepared()
            while len(_POOL) > POOL_SIZE:
                _, old = _POOL.popitem(last=False)
                old.retired = True
                _close_if_unused(old)
        else:
            _POOL.move_to_end(key)
        entry.users += 1
        return entry


def _cursor(entry: _Prepared, settings: Settings, resolved: Resolved) -> duckdb.DuckDBPyConnection:
    # The first user builds while the others wait for it; a failed build leaves it to the next request to retry.
    with entry.build_lock:
        if entry.con is None:
            entry.con = prepare_database(settings, resolved)
        return entry.con.cursor()


def _release(entry: _Prepared) -> None:
    with _LOCK:
        entry.users -= 1
        _close_if_unused(entry)


def _close_if_unused(entry: _Prepared) -> None:
    """Close a database that has left the pool once no request uses it (called with `_LOCK` held)."""
    if entry.retired and entry.users == 0 and entry.con is not None:
        entry.con.close()
        entry.con = None


def clear() -> None:
    """Close every database no request is using and forget them all (tests; a process that wants memory back)."""
    with _LOCK:
        entries = list(_POOL.values())
        _POOL.clear()
        for entry in entries:
            entry.retired = True
            _close_if_unused(entry)
