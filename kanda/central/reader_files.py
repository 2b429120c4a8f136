"""Publications as read-only DuckDB files: how analyst SQL is kept from changing what other analysts see.

An in-memory database over Parquet views can be written by any statement that slips past the SQL check (a DELETE
inside a CTE did), and the API shares one database between requests, so one analyst's write became every analyst's
answer. A DuckDB file opened with `read_only=True` refuses every INSERT, UPDATE, DELETE and CREATE in the engine
itself, whatever shape the statement has, so the check is the first line and no longer the only one. Many
connections, cursors and processes may share one read-only file.

Each publication is materialised once, by the first reader that needs it, into `KANDA_HOME/readers/<publish_id>/
rollups.duckdb`. DuckDB names a file's catalog after the file, so its `main` tables are `rollups.<table>`: the same
layout, and the same writer (`write_publication`), as the BI snapshot. A publication never changes, so a file is
never rebuilt while it exists; it is written beside its name and renamed (`write_aside`), so nobody opens half a
file. The newest `KEEP` files stay; older ones are removed and rebuilt if an `as_of` reader asks for them again (a
process that has one open keeps reading it: POSIX keeps an unlinked file until its last handle closes).

Every table and column of a written file carries its models.yml description as a DuckDB comment, so a BI tool, a
SQLAlchemy inspector or `DESCRIBE`-style catalog queries show what a column means and in which unit, not just its
type. A file may be written in an older storage format (`storage_version`): DuckDB 2 writes its own format by
default, which DuckDB 1.x (the CLI, JDBC and ODBC drivers most BI tools ship) refuses to open.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb

from kanda.central.publication import (
    NAMESPACE,
    PUBLICATION_DOCS,
    PUBLICATIONS,
    PUBLICATIONS_DESCRIPTION,
    Publication,
)
from kanda.settings import Settings
from kanda.spill import clear_dead_spill, process_running
from warehouse_models import column_docs, model, published

FILE_NAME = f"{NAMESPACE}.duckdb"
#: The table naming the publication a file holds (and when the file was written).
INFO = "snapshot_info"
#: Reader files kept per installation (the newest built); each is about the size of the rollups.
KEEP = 8
#: Which publication is the newest, at which catalog metadata file (written by the query layer); its reader file
#: is never pruned, however many older publications `as_of` readers ask for.
NEWEST = "newest.json"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def readers_dir(settings: Settings) -> Path:
    return settings.home / "readers"


def reader_path(settings: Settings, publish_id: str) -> Path:
    """Where a publication's file lives; an id that is not a plain file name is refused rather than escaped."""
    if not _SAFE_ID.fullmatch(publish_id):
        raise ValueError(f"publish id {publish_id!r} cannot name a file")
    return readers_dir(settings) / publish_id / FILE_NAME


def ensure_reader_file(
    settings: Settings, publish_id: str, fill: Callable[[Path], None], *, newest: bool = True
) -> Path:
    """The publication's file, built by `fill(target)` unless it exists; builds are serialised across processes.

    Builds of earlier publications (`as_of`, `newest=False`) queue on a lock of their own: an analyst walking
    through old publications, each a full build at scale (8 s, 1.2 GB), never holds up the build every reader of
    the newest publication waits for (the API's default, `kanda query`, the publish's own refresh)."""
    path = reader_path(settings, publish_id)
    if path.exists():
        return path
    from filelock import FileLock  # only a build takes the lock: a one-shot `kanda query` of a built file skips it

    settings.ensure_dirs()
    lock = settings.locks_dir / ("readers.lock" if newest else "readers-earlier.lock")
    with FileLock(str(lock), timeout=settings.lock_wait_seconds):
        if path.exists():  # another process built it while we waited
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp*"):  # left by a build that crashed
            builder = stale.name.removeprefix(f".{path.name}.").split(".", 1)[0]
            if not (builder.isdigit() and process_running(int(builder))):  # not one building under the other lock
                stale.unlink(missing_ok=True)
        write_aside(path, fill)
        _prune(settings, keep=path)
    return path


def open_read_only(path: Path, *, memory_limit: str, spill_limit: str = "4GiB") -> duckdb.DuckDBPyConnection:
    """A connection to a reader file that DuckDB itself keeps from writing, reaching files or changing settings.

    DuckDB keeps one database instance per path in a process, and the lockdown is global to it: a second connection
    to an instance already locked down gets it as it is (changing it would fail, which is the point). Threads open
    one at a time, so that two first openers of a file do not both try to lock it down.
    """
    with _OPENING:
        return _open_locked_down(path, memory_limit, spill_limit)


_OPENING = threading.Lock()


def _open_locked_down(path: Path, memory_limit: str, spill_limit: str) -> duckdb.DuckDBPyConnection:
    clear_dead_spill(path)  # a killed analyst query's gigabytes, otherwise kept for good
    con = duckdb.connect(str(path), read_only=True)
    try:
        if not con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]:
            con.execute(f"SET memory_limit = '{_quoted(memory_limit)}'")
            # a sort or join of analyst SQL spills beside the file; without a cap it may fill KANDA_HOME's disk
            con.execute(f"SET max_temp_directory_size = '{_quoted(spill_limit)}'")
            # Times are shown as stored, whatever the machine's zone: globally for cursors, and on this connection.
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            con.execute("SET TimeZone = 'UTC'")
            no_progress_bar(con)
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Long scans at scale would print progress bars into CLI, API and log output. In Jupyter DuckDB starts with
    them off and refuses to touch the setting at all without ipywidgets, so it is only changed when it is on."""
    if con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]:
        con.execute("SET enable_progress_bar = false")


def write_publication(
    source: duckdb.DuckDBPyConnection,
    publication: Publication,
    target: Path,
    *,
    memory_limit: str,
    storage_version: str | None = None,
) -> None:
    """Copy one publication's rollups from `source` (any connection with `rollups.<table>`) into a new DuckDB file.

    The one writer of reader files and of the BI snapshot. Tables go to the file's `main` schema, sorted by region and
    day so that the usual filters skip most row groups, streamed as Arrow batches; a rollup the source lacks (added
    to kanda after this publication) is left out, as the source left it out. `storage_version` (e.g. "v1.0.0")
    writes a format older DuckDB releases can open; the file is created through ATTACH because only ATTACH takes it.
    The writer gets the installation's `memory_limit` too: without one DuckDB may hold up to 80 % of the machine's
    memory of written pages before it flushes them (about 0.9 GB more at 11M rollup rows).
    """
    out = duckdb.connect()
    try:
        no_progress_bar(out)
        out.execute(f"SET memory_limit = '{_quoted(memory_limit)}'")
        options = f" (STORAGE_VERSION '{_quoted(storage_version)}')" if storage_version else ""
        out.execute(f"ATTACH '{_quoted(str(target))}' AS {_WRITING}{options}")
        out.execute(f"USE {_WRITING}")
        out.execute("BEGIN TRANSACTION")
        for name in (*published(), PUBLICATIONS):
            order = "published_at" if name == PUBLICATIONS else "region, local_date"
            try:
                reader = source.sql(f"SELECT * FROM {NAMESPACE}.{name} ORDER BY {order}").to_arrow_reader()
            except duckdb.CatalogException:
                continue
            out.register("_kanda_source", reader)
            out.execute(f"CREATE TABLE {name} AS SELECT * FROM _kanda_source")
            out.unregister("_kanda_source")
            _comment(out, name)
        snapshot_columns = "".join(f", ?::BIGINT AS {name}_snapshot" for name in published())
        out.execute(
            f"CREATE TABLE {INFO} AS SELECT ?::VARCHAR AS publish_id, ?::VARCHAR AS region,"
            f" ?::TIMESTAMPTZ AS published_at, ?::TIMESTAMPTZ AS refreshed_at{snapshot_columns}",
            [
                publication.publish_id,
                publication.region,
                publication.published_at,
                dt.datetime.now(dt.UTC),
                *(publication.snapshots[name] for name in published()),
            ],
        )
        out.execute(f"COMMENT ON TABLE {INFO} IS 'The publication this file holds, and when the file was written.'")
        out.execute("COMMIT")
        out.execute("CHECKPOINT")
        out.execute("USE memory")
        out.execute(f"DETACH {_WRITING}")
    finally:
        out.close()


#: The writer's name for the file it writes (readers see the catalog named after the file, e.g. `rollups`).
_WRITING = "kanda_writing"


def _comment(out: duckdb.DuckDBPyConnection, table: str) -> None:
    """The description of a table and of each of its columns (with the unit) as DuckDB comments."""
    if table == PUBLICATIONS:
        description, docs = PUBLICATIONS_DESCRIPTION, PUBLICATION_DOCS
    else:
        description, docs = model(table).description, {c.name: c.doc for c in column_docs(table).values()}
    out.execute(f"COMMENT ON TABLE {table} IS '{_quoted(description)}'")
    for (column,) in out.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall():
        if column in docs:
            out.execute(f"COMMENT ON COLUMN {table}.{column} IS '{_quoted(docs[column])}'")


def write_aside(path: Path, fill: Callable[[Path], None]) -> None:
    """Have `fill` write a DuckDB file beside `path`, then swap it in atomically (read-only on disk, flushed).

    A reader that already has the old file open keeps its inode; one that opens the path sees the whole new file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fill(tmp)
        tmp.chmod(0o444)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def _prune(settings: Settings, *, keep: Path) -> None:
    """Remove all but the newest `KEEP` reader files (called under the build lock), never the file just built nor
    the newest publication's: asking for old publications must not make every other reader rebuild the current."""
    kept = {keep, *_newest_publication_file(settings)}
    built = sorted(readers_dir(settings).glob(f"*/{FILE_NAME}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in built if p not in kept][KEEP - len(kept) :]:
        shutil.rmtree(old.parent, ignore_errors=True)


def _newest_publication_file(settings: Settings) -> list[Path]:
    try:
        return [reader_path(settings, json.loads((readers_dir(settings) / NEWEST).read_text())["publish_id"])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _fsync(path: Path) -> None:
    """Flush a file (or a directory entry) to disk, so a crash right after the swap cannot leave an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quoted(text: str) -> str:
    return text.replace("'", "''")
