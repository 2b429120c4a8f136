"""Readers shared between the API's requests: one read-only connection per publication, a cursor per request.

Opening a reader (`kanda.central.query.open_central`) means resolving the publication, opening its read-only DuckDB
file and locking the connection down; a publication never changes, so its connection can serve every request that
reads it: each request still resolves the newest publication itself (a cached catalog lookup) and gets its own
cursor on that publication's connection. A cursor is a separate DuckDB connection to the same database: it sees the
same `rollups.<table>` and inherits the lockdown (global settings), and `interrupt()` on it stops only its own query.

The pool keeps the few most recently used connections per process. One that falls out while requests still use it
is closed by the last of them (closing a DuckDB connection closes its cursors), never under a running query.

Sharing gives nothing away: the database is a file opened read-only, so DuckDB refuses any write from any cursor,
whether or not the statement check (`kanda.central.query.check_read_only`) saw it. What a cursor can create at all
(temporary tables, macros, variables) lives in that cursor's own temporary catalog and ends with the request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from kanda.central.query import AsOf, Central, Resolved, reader_connection, resolve
from kanda.settings import Settings

#: Connections kept per process: the newest publication, and a few older ones `as_of` asked for.
POOL_SIZE = 4

_Key = tuple[str, str, str, str]


class _Prepared:
    """One publication's connection, opened by its first user, closed when it has left the pool and is unused."""

    def __init__(self) -> None:
        self.build_lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.users = 0
        self.retired = False


_LOCK = threading.Lock()
_POOL: OrderedDict[_Key, _Prepared] = OrderedDict()


@contextmanager
def shared_reader(
    settings: Settings, *, as_of: AsOf | None = None, resolved: Resolved | None = None
) -> Iterator[Central]:
    """A locked-down reader of exactly one publication (the newest unless `as_of`, or the one already `resolved`:
    the API resolves first to look in its answer cache), on a cursor of its own."""
    resolved = resolved or resolve(settings, as_of=as_of)
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
            entry.con = reader_connection(settings, resolved)
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
