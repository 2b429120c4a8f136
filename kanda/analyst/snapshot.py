"""The BI snapshot: one self-contained, read-only DuckDB file of the central rollups, refreshed after each publish.

BI tools and notebooks that take a DuckDB path (or a SQLAlchemy `duckdb:///` URL) cannot resolve Iceberg
publications. They get a plain DuckDB file instead, holding every published rollup (`creator_daily`, `product_daily`,
`region_daily`, `channel_daily`), `publications` and `snapshot_info`, copied from ONE publication through the same
reader as `kanda query` (`open_central`) by the writer of that reader's own file
(`kanda.central.reader_files.write_publication`), so a snapshot never mixes two publishes and holds exactly what
`kanda query` reads. The tables sit in the file's `main` schema: DuckDB names a file's catalog after it
(`rollups.duckdb` -> `rollups`), so `rollups.creator_daily` means the same table here as in `kanda query` (a schema
called `rollups` inside a catalog called `rollups` would make it ambiguous).

The file is written in DuckDB's v1.0.0 storage format (`BI_STORAGE_VERSION`), so DuckDB 1.x clients open it as
well as DuckDB 2, and every table and column carries its description and unit as a DuckDB comment.

The file is written beside its target and swapped in with `os.replace` (`write_aside`), atomic on one filesystem.
A reader that already has the old file open keeps reading the old inode (Linux/POSIX semantics: the replaced file
lives on until its last open handle closes), so it sees one whole publication, never a half-written file; it sees
the new one when it reconnects. Refreshes from several regions or processes are serialised by a file lock, and a
refresh never replaces a snapshot with one of an older publication.

The file is made read-only on disk (mode 0444). That keeps ordinary users and tools from writing it, but a
DuckDB file cannot lock down the connections that open it (and root ignores file modes): the guarantees against
writing, attaching, reading other files and changing settings come from how it is opened. `connect_snapshot`
opens it that way; BI tools should open it read-only with external access disabled (see README, "For analysts").
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from kanda.central.catalog import NAMESPACE, Publication, latest_publication, open_catalog
from kanda.central.query import NothingPublished, open_central
from kanda.central.reader_files import INFO, write_aside, write_publication
from kanda.settings import Settings

log = logging.getLogger(__name__)

#: The storage format of the snapshot file. DuckDB 2 writes its own format (version 69) by default, which every DuckDB
#: 1.x refuses ("can only read versions between 64 and 68"): the CLI 1.5 and the JDBC/ODBC drivers BI tools ship.
#: "v1.0.0" writes storage version 64, the oldest that every 1.x reads (0.10 wrote it too), and it holds everything
#: the snapshot uses (BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMPTZ, comments): a newer one would only shut out older
#: drivers. `tests/analyst/test_bi_clients.py` opens the file from a real DuckDB 1.x.
BI_STORAGE_VERSION = "v1.0.0"
#: Options that make an analyst connection read-only in every sense, not just for the database file.
LOCKED_CONFIG = {"enable_external_access": False, "lock_configuration": True}


class SnapshotBusy(RuntimeError):
    """Another process has been refreshing the snapshot for longer than the lock wait."""


@dataclass(frozen=True)
class SnapshotInfo:
    """Which publication a snapshot file holds; ordered like publications are (`latest_publication`)."""

    publish_id: str
    region: str
    published_at: dt.datetime
    refreshed_at: dt.datetime

    @property
    def order(self) -> tuple[dt.datetime, str]:
        return (self.published_at, self.publish_id)


def refresh_snapshot(settings: Settings) -> Path:
    """Make `settings.snapshot_path` hold the newest publication; a no-op when it already does.

    Raises `NothingPublished` when there is nothing to snapshot and `SnapshotBusy` when the lock cannot be had.
    """
    path = settings.snapshot_path
    path.parent.mkdir(parents=True, exist_ok=True)
    settings.ensure_dirs()
    lock = FileLock(str(settings.locks_dir / "snapshot.lock"))
    try:
        lock.acquire(timeout=settings.lock_wait_seconds)
    except Timeout:
        raise SnapshotBusy(f"another process is refreshing the BI snapshot (lock {lock.lock_file})") from None
    try:
        # Resolved under the lock: publications only grow, so each refresh sees at least what the last one did. The
        # catalog is closed, not left to the garbage collector: `kanda serve` refreshes after every reprocess, and
        # each refresh kept a catalog connection open until a full collection.
        with closing(open_catalog(settings)) as catalog:
            publication = latest_publication(catalog)
        if publication is None:
            raise NothingPublished("nothing has been published yet: no BI snapshot to write")
        for stale in path.parent.glob(f".{path.name}.*.tmp*"):  # left by a refresh that crashed (we hold the lock)
            stale.unlink(missing_ok=True)
        current = snapshot_info(path)
        if current is not None and current.order >= (publication.published_at, publication.publish_id):
            return path
        write_aside(path, lambda target: _write(settings, publication, target))
        log.info("BI snapshot %s now holds publication %s", path, publication.publish_id)
        return path
    finally:
        lock.release()


def refresh_after_publish(settings: Settings) -> str | None:
    """The publish hook: refresh the snapshot, but never let a failure here look like a failed publish.

    By the time this runs the publication is committed and visible to `kanda query` and the API; undoing it is not
    possible and raising would invite a pointless retry. The old snapshot stays in place (a complete, older
    publication, named in its `snapshot_info`), the failure is logged as a warning, and the next publish (or
    `refresh_snapshot`) catches up, because a refresh always writes the newest publication.

    Returns why it failed (None when it did not): a command that published says so and exits non-zero, since the
    BI tools read every region's publication from that file and see none of the newer ones until it is repaired.
    """
    try:
        refresh_snapshot(settings)
    except NothingPublished:
        return None
    except Exception as exc:  # the publish has happened (see the docstring): report and carry on
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        log.warning(
            "the BI snapshot %s was not refreshed (%s); the publish stands, the file keeps the publication it "
            "had, and the next publish retries",
            settings.snapshot_path,
            why,
        )
        return why
    return None


def snapshot_info(path: Path) -> SnapshotInfo | None:
    """What a snapshot file holds, or None when there is no readable snapshot there."""
    if not path.exists():
        return None
    try:
        con = _attach_read_only(path)
    except duckdb.Error:
        return None
    try:
        rows = con.execute(f"SELECT publish_id, region, published_at, refreshed_at FROM {NAMESPACE}.{INFO}").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    if not rows:
        return None
    publish_id, region, published_at, refreshed_at = rows[0]
    return SnapshotInfo(publish_id, region, published_at, refreshed_at)


def connect_snapshot(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only connection to the current snapshot file, for notebooks and Python tools.

    The file is attached to a private in-memory database rather than opened with `duckdb.connect(path)`: DuckDB
    caches open databases by path within a process, so a second `connect(path)` while another connection is open
    returns the old file even after a refresh swapped in a new one. Attaching always opens what the path names now.
    """
    path = settings.snapshot_path
    if not path.exists():
        raise NothingPublished(f"no BI snapshot at {path}: run `kanda publish` (or `kanda demo`) first")
    con = _attach_read_only(path)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _attach_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{_quoted(path)}' AS {NAMESPACE} (READ_ONLY)")
        con.execute(f"USE {NAMESPACE}")
    except BaseException:
        con.close()
        raise
    return con


def _write(settings: Settings, publication: Publication, target: Path) -> None:
    """Copy one publication, read through `kanda query`'s own reader of it, into a new DuckDB file."""
    central = open_central(settings, as_of=publication.publish_id)  # exactly this publication, by its id
    try:
        write_publication(
            central.con,
            publication,
            target,
            memory_limit=settings.duckdb_memory_limit,
            storage_version=BI_STORAGE_VERSION,
        )
    finally:
        central.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
