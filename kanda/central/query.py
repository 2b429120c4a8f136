"""Read-only SQL over the central rollups, as `rollups.<table>`, at one consistent publication.

Analysts never open a regional store, nor anything that can be written: queries run on a DuckDB file holding
exactly one publication's rollups (the newest, or the one chosen by `as_of`: Iceberg time travel, since every
publication names the snapshot of each rollup table), built once from that publication's Parquet files and opened
with `read_only=True`, external access off and configuration locked (`kanda.central.reader_files`). Two layers
keep analyst SQL from changing what anyone else sees, and both are tested with the other bypassed
(tests/analyst/test_lockdown.py, tests/analyst/test_trust.py):

- the statement check (`check_read_only`) gives the clear message: exactly one SELECT (or EXPLAIN of one), whose
  whole parse tree, CTE bodies included, holds no INSERT/UPDATE/DELETE, reads only the rollup tables, calls only
  pure table functions, and no function that describes the server (settings, paths, environment);
- DuckDB itself refuses any write to the read-only file, any file access and any settings change, if the check
  ever misses something.

The CLI (`kanda query`) and the BI snapshot open one connection per call (`open_central`); the HTTP API keeps one
connection per publication and gives each request its own cursor (`kanda.analyst.reader_pool`). Both come from
`reader_connection`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from kanda.central.publication import NAMESPACE, PUBLICATIONS, Publication
from kanda.central.reader_files import (
    INFO,
    NEWEST,
    ensure_reader_file,
    no_progress_bar,
    open_read_only,
    reader_path,
    readers_dir,
    write_publication,
)
from kanda.object_store import CHECK_SETTINGS, out_of_reach
from kanda.settings import Settings
from warehouse_models import published

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.engine import Engine

    from kanda.central.catalog import PublishedFiles

# pyiceberg (`kanda.central.catalog`) is imported only where Iceberg is read: when a publication's reader file is
# built or the publication history has changed; pyarrow only where answers are Arrow tables (the API, CSV, a reader
# file's build). A one-shot `kanda query` of a built publication loads neither (`run_query_rows`).

log = logging.getLogger(__name__)

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
#: What analyst SQL may read: the rollups and the publication history, nothing else.
ANALYST_TABLES = frozenset({*published(), PUBLICATIONS})
#: Table functions that only compute (no file, no catalog or settings listing, no nested SQL such as `query(...)`).
#: An allow-list: a new DuckDB release adds table functions that read things, and none of them is needed here.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
#: The query nodes a read-only statement is made of. Anything else in the tree (an INSERT, UPDATE or DELETE in the
#: body of a CTE, which DuckDB's statement type still calls SELECT) is refused.
READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
#: Scalar functions that describe the server, not the data: settings (with paths in them), the environment, the
#: attached files. A deny-list, by name and prefix: DuckDB has hundreds of pure scalar functions that analysts use,
#: and an allow-list of them would refuse ordinary SQL; these few are what reveals anything.
REFUSED_FUNCTIONS = frozenset({"current_setting", "getenv", "getvariable", "which_secret"})
REFUSED_FUNCTION_PREFIXES = ("duckdb_", "pragma_")
#: What a FROM clause may be made of (DuckDB's table reference kinds): an allow-list, so that a kind a new DuckDB
#: release adds is refused until someone has looked at what it reads.
TABLE_REFS = frozenset(
    {"BASE_TABLE", "JOIN", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY", "PIVOT", "SHOW_REF"}
)
#: `SHOW x` without a query behind it is DuckDB's `pragma_show('x')`: it describes a table, or prints the value of
#: the setting called x (`SHOW temp_directory` printed the reader file's path on the server). These are the special
#: listings of names that are allowed (`SHOW TABLES`, `SHOW ALL TABLES`, `SHOW DATABASES`, `SHOW SCHEMAS`, and
#: `DESCRIBE`/`SHOW` alone); any other bare name must be a table the query may read.
SHOW_LISTINGS = frozenset({'"tables"', "__show_tables_expanded", '"databases"', '"schemas"'})
_EXPLAIN = re.compile(r"^\s*explain\s+(?:analy[sz]e\s+)?", re.IGNORECASE)


class QueryRefused(ValueError):
    """The statement is not a read-only query over the rollups."""


class NothingPublished(RuntimeError):
    """No region has published yet."""


class UnknownPublication(LookupError):
    """`as_of` names no publication: an unknown id, or a time before the first publication."""


class QueryTimeout(TimeoutError):
    """The query ran past its time limit and was interrupted."""


class QueryFailed(ValueError):
    """DuckDB could not run the statement (it does not bind, a value does not convert, ...)."""


class AnswerTooLarge(ValueError):
    """The answer is larger than the caller's byte limit, or than one Arrow batch can hold."""


class DataUnavailable(RuntimeError):
    """A publication's data cannot be read on the server (a data file is missing or unreadable).

    Not the analyst's fault and not fixable by changing the query: an operator restores the file or republishes.
    """

    def __init__(self, table: str, publish_id: str | None = None, cause: BaseException | None = None) -> None:
        self.table = f"{NAMESPACE}.{table}"
        at = f" at publication {publish_id}" if publish_id else ""
        first = out_of_reach(cause)
        if first:  # the store, not the file: nothing to restore, a setting to check
            super().__init__(
                f"{self.table} cannot be read{at}: the object store cannot be reached or refused access ({first}); "
                + CHECK_SETTINGS
            )
            return
        super().__init__(
            f"{self.table} cannot be read{at}: a data file of it is missing or unreadable on the server "
            "(an operator must restore it or republish the region)"
        )


AsOf = dt.datetime | str


def parse_as_of(text: str) -> AsOf:
    """A timestamp (ISO 8601; UTC when it has no offset) or an id: a publish id or an Iceberg snapshot id.

    Digits only is always an id (Iceberg snapshot ids are long integers), never a compact date.
    """
    text = text.strip()
    if not text:
        raise UnknownPublication("--as-of is empty: give a timestamp (2026-11-23T17:00:00Z) or a publish id")
    if text.isdigit():
        return text
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return text
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Central:
    """An open, locked-down reader of one publication."""

    con: duckdb.DuckDBPyConnection
    publication: Publication

    def close(self) -> None:
        self.con.close()


def publication_history(settings: Settings) -> list[dict]:
    """Every complete publication, oldest first: publish id, region, time, size and each table's snapshot id."""
    return _history(_catalog(settings))


# Opening a reader is mostly Iceberg metadata reads. What they return never changes for a given key (a metadata
# file and a publication are immutable), so it is remembered per process: a reader then costs one catalog lookup
# of the publications table plus a fresh DuckDB connection. Bounded, and shared safely between threads.
_CACHE_LOCK = threading.Lock()
_HISTORIES: OrderedDict[str, list[dict]] = OrderedDict()
_FILES: OrderedDict[tuple[str, str, str], list[str] | None] = OrderedDict()


@lru_cache(maxsize=8)
def _catalog(settings: Settings) -> SqlCatalog:
    from kanda.central.catalog import open_catalog

    return open_catalog(settings)


def _remember(cache: OrderedDict, key: object, value: object, size: int) -> None:
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)


#: The name `kanda.central.catalog.open_catalog` gives its SqlCatalog: the key of its rows in `iceberg_tables`.
CATALOG_NAME = "kanda"
_LOCATION_SQL = (
    "SELECT metadata_location FROM iceberg_tables"
    " WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name"
)
_LOCATION_KEY = {"catalog": CATALOG_NAME, "namespace": NAMESPACE, "name": PUBLICATIONS}
_UNKNOWN = object()
_SQLITE = threading.local()
#: A small connection pool per catalog server and process (a pool must not cross a fork: `kanda serve --workers`).
_SERVERS: dict[tuple[str, int], Engine] = {}


def _publications_location(settings: Settings) -> str | object | None:
    """The current metadata file of `rollups.publications` as the SQL catalog records it (None: not created yet;
    `_UNKNOWN`: not cheaply known, ask pyiceberg).

    A publication never changes and each commit writes a new metadata file, so this one indexed row says whether
    what a process remembers is still the newest. Loading the table through pyiceberg instead reads and parses the
    metadata file on every request (from the object store, at scale), and imports pyiceberg's Arrow I/O (which
    imports pandas) into `kanda query`. A SQLite catalog is read with `sqlite3`; a server (PostgreSQL) through
    SQLAlchemy, which the catalog needs anyway, without pyiceberg.
    """
    url = settings.catalog_url
    if not url.startswith("sqlite:///"):
        return _server_location(url)
    path = url.removeprefix("sqlite:///")
    try:
        con = _sqlite_connection(path)
        row = con.execute(_LOCATION_SQL, _LOCATION_KEY).fetchone()
    except sqlite3.Error:  # no catalog file or no catalog tables yet: pyiceberg creates them
        return _UNKNOWN
    return row[0] if row else None


def _server_location(url: str) -> str | object | None:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with _server(url).connect() as con:
            row = con.execute(text(_LOCATION_SQL), _LOCATION_KEY).fetchone()
    except SQLAlchemyError:  # no catalog tables yet, or the server out of reach: pyiceberg says which
        return _UNKNOWN
    return row[0] if row else None


def _server(url: str) -> Engine:
    key = (url, os.getpid())
    with _CACHE_LOCK:
        engine = _SERVERS.get(key)
        if engine is None:
            from sqlalchemy import create_engine

            engine = _SERVERS[key] = create_engine(url, pool_size=2, max_overflow=8)
    return engine


def publications_location(settings: Settings) -> str | None:
    """The current metadata file of `rollups.publications` when one catalog row says it, else None: a key under which
    what was answered for the newest publication may be remembered."""
    location = _publications_location(settings)
    return location if isinstance(location, str) else None


def _sqlite_connection(path: str) -> sqlite3.Connection:
    """A read-only connection to the catalog per thread (sqlite3 connections stay in their thread), opened again
    when the file at the path is another one (a catalog removed and created anew must not be read from the old)."""
    cons = _SQLITE.__dict__.setdefault("cons", {})
    try:
        inode = os.stat(path).st_ino
    except OSError:
        raise sqlite3.OperationalError(f"no catalog at {path}") from None
    known = cons.get(path)
    if known is None or known[1] != inode:
        if known is not None:
            known[0].close()
        known = cons[path] = (sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5), inode)
    return known[0]


def _current_history(settings: Settings) -> tuple[str | None, list[dict]]:
    """The publication history now, and the metadata file it was read from (None if unknown or not created)."""
    location = _publications_location(settings)
    if location is None:
        return None, []
    if isinstance(location, str):
        with _CACHE_LOCK:
            history = _HISTORIES.get(location)
        if history is not None:
            return location, history
    return _history_at(_catalog(settings))


def _history(catalog: SqlCatalog) -> list[dict]:
    return _history_at(catalog)[1]


def _history_at(catalog: SqlCatalog) -> tuple[str | None, list[dict]]:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
    except NoSuchTableError:
        return None, []
    except OSError as exc:  # the table's metadata file is gone
        log.error("rollups.publications cannot be read: %s", exc)
        raise DataUnavailable(PUBLICATIONS, cause=exc) from None
    history = _HISTORIES.get(table.metadata_location)
    if history is None:
        try:
            rows = table.scan().to_arrow().to_pylist()
        except OSError as exc:
            log.error("rollups.publications cannot be read: %s", exc)
            raise DataUnavailable(PUBLICATIONS, cause=exc) from None
        history = sorted(rows, key=lambda r: (r["published_at"], r["publish_id"]))
        _remember(_HISTORIES, table.metadata_location, history, 16)
    return table.metadata_location, history


def _files(settings: Settings, catalog: SqlCatalog, publication: Publication, name: str) -> PublishedFiles | None:
    key = (settings.warehouse_uri, publication.publish_id, name)
    with _CACHE_LOCK:
        known = key in _FILES
        files = _FILES.get(key)
    if not known:
        from kanda.central.catalog import published_files

        files = published_files(catalog, publication, name)
        _remember(_FILES, key, files, 64)
    return files


def choose_publication(history: list[dict], as_of: AsOf | None) -> dict:
    """The publication a reader sees: the newest, the newest at or before a time, or the one an id names.

    An id is a publish id, or the Iceberg snapshot id of any rollup table as recorded in a publication (a table
    snapshot that no publication names belongs to an unfinished publish and cannot be read).
    """
    if not history:
        raise NothingPublished("nothing has been published yet: run `kanda publish` (or `kanda demo`) first")
    if as_of is None:
        return history[-1]
    if isinstance(as_of, dt.datetime):
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
        earlier = [r for r in history if r["published_at"] <= moment]
        if not earlier:
            first = history[0]["published_at"]
            raise UnknownPublication(
                f"nothing was published at or before {moment.isoformat()}: the oldest publication kept is from"
                f" {first.isoformat()} ({KEPT_FOR})"
            )
        return earlier[-1]
    for row in history:
        if row["publish_id"] == as_of:
            return row
    if as_of.isdigit():
        for row in history:
            if any(row.get(f"{name}_snapshot") == int(as_of) for name in published()):
                return row
    raise UnknownPublication(
        f"no publication or snapshot {as_of!r}: list them with `kanda query --history` "
        f"(publish ids, times and the Iceberg snapshot id of each table; {KEPT_FOR})"
    )


#: What `choose_publication` says about publications it cannot find (`kanda.central.retention`).
KEPT_FOR = (
    "publications older than KANDA_KEEP_PUBLICATIONS_HOURS, or past the newest KANDA_KEEP_PUBLICATIONS, are let go,"
    " except each region's newest"
)


def _publication(row: dict) -> Publication:
    return Publication(
        row["publish_id"],
        row["region"],
        row["published_at"],
        {name: row.get(f"{name}_snapshot") for name in published()},
    )


@dataclass(frozen=True)
class Resolved:
    """The publication a reader will see, and the publication history as that publication saw it."""

    publication: Publication
    history: list[dict]
    #: The metadata file of `rollups.publications` at which this publication is the newest (else None).
    newest_at: str | None = None
    #: The metadata file of `rollups.publications` the choice was made at (None: not known).
    location: str | None = None


def resolve(settings: Settings, *, as_of: AsOf | None = None) -> Resolved:
    """Which publication to read (the newest unless `as_of`): one row of the catalog, the history itself is cached."""
    location, history = _current_history(settings)
    chosen = choose_publication(history, as_of)
    # A reader at a publication never sees a later one, not even in the history.
    newest_at = location if chosen is history[-1] else None
    return Resolved(_publication(chosen), history[: history.index(chosen) + 1], newest_at, location)


def open_central(settings: Settings, *, as_of: AsOf | None = None) -> Central:
    """A read-only, locked-down connection to exactly one publication (the newest unless `as_of`)."""
    if as_of is None:
        built = _open_newest_built(settings)
        if built is not None:
            return built
    resolved = resolve(settings, as_of=as_of)
    return Central(reader_connection(settings, resolved), resolved.publication)


def _open_newest_built(settings: Settings) -> Central | None:
    """The newest publication's reader file when it is built and known, read without pyiceberg; else None.

    This is what makes a one-shot `kanda query` start fast: one row of the catalog says which metadata file
    of `rollups.publications` is current, `NEWEST` (written by the last reader that resolved it the slow way) says
    which publication is the newest there, and that publication's file holds its rollups, its history and its own
    name. Both facts are immutable once written, so a stale `NEWEST` only sends the caller down the slow path.
    """
    location = _publications_location(settings)
    if not isinstance(location, str):
        return None
    try:
        known = json.loads((readers_dir(settings) / NEWEST).read_text())
        if known.get("location") != location:
            return None
        path = reader_path(settings, str(known["publish_id"]))
        if not path.exists():
            return None
        con = open_read_only(path, memory_limit=settings.duckdb_memory_limit, spill_limit=settings.query_spill_limit)
    except (OSError, ValueError, KeyError, TypeError, duckdb.Error):
        return None
    try:
        # Python rows, not Arrow: pyarrow converts a zoned timestamp to Python through pandas.
        cursor = con.execute(f"SELECT * FROM {INFO}")
        names = [column[0] for column in cursor.description]
        info = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if len(info) != 1 or info[0]["publish_id"] != known["publish_id"]:
            con.close()
            return None
    except duckdb.Error:
        con.close()
        return None
    return Central(con, _publication(info[0]))


def _remember_newest(settings: Settings, resolved: Resolved) -> None:
    """Record which publication is the newest at which metadata file, for the next process's `_open_newest_built`."""
    if resolved.newest_at is None:
        return
    target = readers_dir(settings) / NEWEST
    record = {"location": resolved.newest_at, "publish_id": resolved.publication.publish_id}
    with suppress(OSError, ValueError):
        if json.loads(target.read_text()) == record:
            return
    tmp = target.with_name(f".{NEWEST}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, target)  # readers see the old record or the new one, never half of one
    except OSError as exc:
        log.warning("could not record the newest reader file in %s: %s", target, exc)
        tmp.unlink(missing_ok=True)


def reader_connection(settings: Settings, resolved: Resolved) -> duckdb.DuckDBPyConnection:
    """A connection to the publication's read-only file, built from its Parquet files on first use; the one opener.

    Cursors of it (`con.cursor()`, how the API shares it between requests) see the same `rollups.<table>` and
    inherit the lockdown and the UTC time zone, which are global to the database. Raises `DataUnavailable` naming
    the table when a data file of the publication is gone before its file was built.
    """
    publication = resolved.publication
    for attempt in (1, 2):
        path = ensure_reader_file(
            settings,
            publication.publish_id,
            lambda target: _materialise(settings, resolved, target),
            newest=resolved.newest_at is not None,
        )
        try:
            con = open_read_only(
                path, memory_limit=settings.duckdb_memory_limit, spill_limit=settings.query_spill_limit
            )
        except duckdb.IOException:
            if attempt == 2 or path.exists():
                raise
            # Pruned by another process between the two steps: build it again.
            continue
        _remember_newest(settings, resolved)
        return con
    raise AssertionError("unreachable")


def _materialise(settings: Settings, resolved: Resolved, target: Path) -> None:
    streamed: list[_Stream] = []
    # The build spills beside the file it writes (as a store spills beside its own file), not to a small /tmp.
    with tempfile.TemporaryDirectory(prefix=".spill-", dir=target.parent) as spill:
        source = _source_database(settings, resolved, streamed, Path(spill))
        try:
            write_publication(source, resolved.publication, target, memory_limit=settings.duckdb_memory_limit)
        except (duckdb.Error, OSError) as exc:
            broken = next((s.name for s in streamed if s.failed), None)
            if broken is None:
                raise
            publish_id = resolved.publication.publish_id
            log.error("publication %s: rollups.%s cannot be read: %s", publish_id, broken, exc)
            raise DataUnavailable(broken, publish_id, cause=exc) from None
        finally:
            source.close()


def _source_database(
    settings: Settings, resolved: Resolved, streamed: list[_Stream], spill: Path
) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB with `rollups.<table>` over one publication's data; read once, only to build that
    publication's file (`write_publication`), never by analyst SQL.

    Local Parquet files are read in place. Tables on object storage (or with delete files) are streamed from
    pyiceberg batch by batch, each scanned once by the build, which sorts them within the memory limit and spills
    to `spill` beyond it: the build's memory no longer grows with the rollups' size. A data file missing there is
    noticed while streaming (`_Stream.failed`) and named by `_materialise`.
    """
    import pyarrow as pa

    from kanda.central.catalog import PUBLICATIONS_SCHEMA, published_batches

    catalog = _catalog(settings)
    publication = resolved.publication
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{_quoted(settings.duckdb_memory_limit)}'")
        con.execute(f"SET temp_directory = '{_quoted(str(spill))}'")
        no_progress_bar(con)
        con.execute(f"CREATE SCHEMA {NAMESPACE}")
        for name in published():
            if publication.snapshots[name] is None and not catalog.table_exists(f"{NAMESPACE}.{name}"):
                continue  # a rollup added to kanda after this publication, and not published since
            try:
                files = _files(settings, catalog, publication, name)
                if files and files.paths:
                    # Binding the view opens every file: a missing one fails here, named, not in an analyst's query.
                    listed = ", ".join("'" + f.removeprefix("file://").replace("'", "''") + "'" for f in files.paths)
                    # The files carry their columns; their paths' `key=value` folders are Iceberg's partitions. A
                    # file written before a column was added lacks it: read by name, and put after the table's
                    # (empty) shape so that such a column is NULL there and the columns keep the table's order.
                    options = "hive_partitioning = false, union_by_name = true"
                    con.register(f"_kanda_shape_{name}", files.schema.empty_table())
                    con.execute(
                        f"CREATE VIEW {NAMESPACE}.{name} AS SELECT * FROM _kanda_shape_{name}"
                        f" UNION ALL BY NAME SELECT * FROM read_parquet([{listed}], {options})"
                    )
                else:
                    stream = _Stream(name, published_batches(catalog, publication, name))
                    streamed.append(stream)
                    con.register(f"_kanda_stream_{name}", stream.reader())
                    con.execute(f"CREATE VIEW {NAMESPACE}.{name} AS SELECT * FROM _kanda_stream_{name}")
            except (duckdb.IOException, OSError) as exc:
                log.error("publication %s: rollups.%s cannot be read: %s", publication.publish_id, name, exc)
                raise DataUnavailable(name, publication.publish_id, cause=exc) from None
        _store(con, PUBLICATIONS, pa.Table.from_pylist(resolved.history, schema=PUBLICATIONS_SCHEMA))
    except BaseException:
        con.close()
        raise
    return con


@dataclass
class _Stream:
    """One rollup's batches from pyiceberg, remembering whether reading them failed (a data file gone)."""

    name: str
    batches: pa.RecordBatchReader
    failed: bool = False

    def reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from self.batches
            except Exception:
                self.failed = True
                raise

        return pa.RecordBatchReader.from_batches(self.batches.schema, batches())


def connect_central(settings: Settings, *, as_of: AsOf | None = None) -> duckdb.DuckDBPyConnection:
    """The locked-down connection alone (see `open_central`, which also says which publication it reads)."""
    return open_central(settings, as_of=as_of).con


@contextmanager
def central_reader(settings: Settings, *, as_of: AsOf | None = None) -> Iterator[Central]:
    central = open_central(settings, as_of=as_of)
    try:
        yield central
    finally:
        central.close()


def _store(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """An Arrow table as a real table of the source database."""
    con.register("_kanda_load", table)
    try:
        con.execute(f"CREATE TABLE {NAMESPACE}.{name} AS SELECT * FROM _kanda_load")
    finally:
        con.unregister("_kanda_load")


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str, *, tables: Iterable[str] = ANALYST_TABLES) -> None:
    """Refuse, with a message that says why, anything but one SELECT (or EXPLAIN) over the given tables."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"could not parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement (got {len(statements)})")
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise QueryRefused(
            f"only read-only queries are allowed here, not {kind}: analyst SQL cannot write, copy or export data, "
            "attach databases, load extensions or change settings"
        )
    query = _EXPLAIN.sub("", sql, count=1) if kind == "EXPLAIN" else sql
    try:
        _check_sources(con, query, frozenset(tables))
    except RecursionError:  # the parse tree is walked recursively: hundreds of nested terms
        raise QueryRefused("the query is nested too deeply to check; split the expression into simpler parts") from None


def _check_sources(con: duckdb.DuckDBPyConnection, sql: str, tables: frozenset[str]) -> None:
    """Walk DuckDB's own parse tree, every node of it (CTE bodies and subqueries too): only reading query nodes,
    every FROM item of a known kind, every table read an allowed table or a CTE, every table function pure, no
    `SHOW` of a setting, no function that describes the server."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if tree.get("error"):
        raise QueryRefused(f"only plain SELECT queries are allowed here ({tree.get('error_message', 'not a SELECT')})")
    nodes = list(parse_tree_nodes(tree))
    ctes = {entry["key"].lower() for node in nodes for entry in node.get("cte_map", {}).get("map", [])}
    known = ", ".join(f"{NAMESPACE}.{t}" for t in sorted(tables))
    _refuse_shadowing_ctes(con, ctes - tables)
    for node in nodes:
        kind = node.get("type")
        if isinstance(kind, str) and kind.endswith("_NODE") and kind not in READ_NODES:
            statement = kind.removesuffix("_NODE").removesuffix("_QUERY")
            raise QueryRefused(
                f"only read-only queries are allowed here, not {statement} (inside the query, e.g. in a WITH "
                "clause): analyst SQL cannot write, copy or export data, attach databases, load extensions or "
                "change settings"
            )
        if "class" not in node and "alias" in node and isinstance(kind, str) and not kind.endswith("_NODE"):
            _check_table_ref(node, kind, tables, known)  # a FROM item
        if kind == "TABLE_FUNCTION":
            name = node["function"].get("function_name", "").lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefused(f"refused: table function {name}() is not allowed; analyst SQL reads only {known}")
        elif node.get("class") == "FUNCTION":
            name = node.get("function_name", "").lower()
            if name in REFUSED_FUNCTIONS or name.startswith(REFUSED_FUNCTION_PREFIXES):
                raise QueryRefused(
                    f"refused: {name}() describes the server, not the data; analyst SQL reads only {known}"
                )
        elif kind == "BASE_TABLE":
            name = node.get("table_name", "")
            schema = node.get("schema_name", "").lower()
            catalog = node.get("catalog_name", "").lower()
            is_cte = not schema and not catalog and name.lower() in ctes
            is_rollup = name.lower() in tables and schema in {"", NAMESPACE, "main"} and catalog in {"", NAMESPACE}
            if not (is_cte or is_rollup) or re.search(r"[/\\:.]", name):
                shown = ".".join(part for part in (catalog, schema, name) if part)
                raise QueryRefused(f"refused: {shown!r} is not a rollup table; analyst SQL reads only {known}")


def _check_table_ref(node: dict, kind: str, tables: frozenset[str], known: str) -> None:
    """A FROM item of an allowed kind; a `SHOW` of a name (not of a query, which the walk checks) only of a table
    the query may read, or one of the listings of table names."""
    if kind not in TABLE_REFS:
        raise QueryRefused(f"refused: {kind.lower()} in FROM is not allowed; analyst SQL reads only {known}")
    if kind != "SHOW_REF" or node.get("query") or node.get("show_type") == "SHOW_FROM":
        return
    name = str(node.get("table_name", ""))
    if name.lower() in SHOW_LISTINGS or (node.get("show_type") == "SHOW" and name.lower() in tables):
        return
    raise QueryRefused(
        f"refused: SHOW {name} describes the server, not the data; SHOW and DESCRIBE take a rollup table "
        f"({known}) or a query"
    )


def _refuse_shadowing_ctes(con: duckdb.DuckDBPyConnection, names: set[str]) -> None:
    """A WITH name that is also a system view, table or table function (`pg_settings`, `duckdb_databases`,
    `pragma_database_list`) is refused: a reference to it outside the WITH's scope reads the system object, while
    the check above would take it for the CTE."""
    if not names:
        return
    clash = con.execute(
        "SELECT DISTINCT lower(name) FROM ("
        " SELECT view_name AS name FROM duckdb_views()"
        " UNION ALL SELECT table_name FROM duckdb_tables()"
        " UNION ALL SELECT function_name FROM duckdb_functions() WHERE function_type = 'table'"
        ") WHERE lower(name) IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1",
        [sorted(names)],
    ).fetchall()
    if clash:
        raise QueryRefused(
            f"refused: WITH name {clash[0][0]!r} is also the name of a system table; give the WITH clause another name"
        )


def parse_tree_nodes(value: object) -> Iterator[dict]:
    """Every node of DuckDB's parse tree (`json_serialize_sql`), CTE bodies and subqueries included, so that a check
    of a statement's parts cannot miss one nested deeper than it looked for."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from parse_tree_nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from parse_tree_nodes(child)


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    truncated: bool
    publication: Publication


def execute(
    central: Central,
    sql: str,
    *,
    explain: bool = False,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    timeout_seconds: float | None = None,
) -> QueryResult:
    """Check and run one analyst statement; stop after `max_rows` rows, refuse an answer over `max_bytes`, and
    interrupt it after `timeout_seconds`.

    The row limit streams Arrow batches and stops reading (the rest is never computed); the time limit is a timer
    thread calling DuckDB's `interrupt()`, which cancels the running query from outside.
    """
    statement = _checked(central, sql, explain)
    return _run(central, statement, None, max_rows=max_rows, max_bytes=max_bytes, timeout_seconds=timeout_seconds)


def run_checked(
    central: Central,
    statement: str,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    timeout_seconds: float | None = None,
) -> QueryResult:
    """`execute` without the check, for analyst SQL that `check_read_only` has already let through on a reader of
    the same publication: the API's SQL processes check a statement, then run it, under one deadline
    (`kanda.analyst.sql_processes`)."""
    return _run(central, statement, None, max_rows=max_rows, max_bytes=max_bytes, timeout_seconds=timeout_seconds)


def _checked(central: Central, sql: str, explain: bool) -> str:
    """The statement to run for analyst SQL, once `check_read_only` has let it through."""
    check_read_only(central.con, sql)
    return f"EXPLAIN {sql}" if explain and not _EXPLAIN.match(sql) else sql


def fetch(
    central: Central,
    sql: str,
    params: list[object] | None = None,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    timeout_seconds: float | None = None,
) -> QueryResult:
    """Run kanda's own parametrised SQL (the API's rollup queries) under the same limits as analyst SQL.

    Not for analyst text: that goes through `execute`, which checks it first.
    """
    return _run(central, sql, params, max_rows=max_rows, max_bytes=max_bytes, timeout_seconds=timeout_seconds)


#: What DuckDB says when one Arrow batch would hold more than 2 GiB of strings (32-bit offsets).
_ARROW_OVERFLOW = re.compile(r"maximum total string size|offset overflow|capacity error", re.IGNORECASE)
ARROW_STRING_LIMIT = 2**31 - 1


def _run(
    central: Central,
    statement: str,
    params: list[object] | None,
    *,
    max_rows: int | None,
    max_bytes: int | None = None,
    timeout_seconds: float | None,
) -> QueryResult:
    """Run a statement into one Arrow table; every failure comes out as one of this module's errors, with a reason.

    Errors DuckDB raises while streaming batches arrive as `OSError` from the Arrow reader; they are sorted here too,
    so that nothing a query does becomes a traceback or a 500.
    """
    timer = threading.Timer(timeout_seconds, _interrupt, [central.con]) if timeout_seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        relation = _named_apart(central.con.sql(statement, params=params))
        reader = relation.to_arrow_reader(min(max_rows + 1, 100_000)) if max_rows else relation.to_arrow_reader()
        table, truncated = _read_at_most(reader, max_rows, max_bytes)
    except duckdb.Error as exc:
        raise _failure(exc, timeout_seconds, max_bytes) from None
    except (OSError, _arrow_error()) as exc:
        text = str(exc)
        if "interrupt" in text.lower() and timeout_seconds:
            raise _timeout(timeout_seconds) from None
        if _ARROW_OVERFLOW.search(text) or isinstance(exc, _arrow_error("ArrowCapacityError")):
            raise _too_large(max_bytes) from None
        raise QueryFailed(text.splitlines()[0] if text else type(exc).__name__) from None
    finally:
        if timer is not None:
            timer.cancel()
    return QueryResult(table, truncated, central.publication)


def _named_apart(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The relation, if each of its columns has a name of its own: CSV cannot hold a name twice, and JSON rows
    (objects) would keep only the last column of each name, silently."""
    repeated = sorted({name for name in relation.columns if relation.columns.count(name) > 1})
    if repeated:
        raise QueryFailed(f"the result repeats the column name(s) {', '.join(repeated)}: name each column (AS)")
    return relation


def _failure(exc: duckdb.Error, timeout_seconds: float | None, max_bytes: int | None) -> Exception:
    """This module's error, with its reason, for what DuckDB raised running a statement."""
    first = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.InterruptException):
        return _timeout(timeout_seconds)
    if isinstance(exc, duckdb.PermissionException):
        return QueryRefused(f"refused: {first}")
    if "read-only mode" in first:  # a write the check did not see, refused by the engine
        return QueryRefused(f"refused, the rollups are read-only: {first}")
    if _ARROW_OVERFLOW.search(str(exc)):
        return _too_large(max_bytes)
    if "failed to offload" in first:  # past the memory limit, and the spill beside the reader file is full too
        return QueryFailed(
            f"the query needs more memory and disk than analyst SQL may use here (KANDA_DUCKDB_MEMORY, "
            f"KANDA_QUERY_SPILL): aggregate or filter sooner ({first})"
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryFailed(
            f"the query needs more memory than analyst SQL may use here (KANDA_DUCKDB_MEMORY, "
            f"KANDA_ANALYST_MEMORY) ({first})"
        )
    return QueryFailed(first)


def _arrow_error(name: str = "ArrowException") -> type[Exception]:
    """One of pyarrow's errors (looked up when one may have been raised: an Arrow reader was reading, so pyarrow is
    imported already)."""
    import pyarrow as pa

    return getattr(pa, name)


def _timeout(seconds: float | None) -> QueryTimeout:
    if seconds is None:
        return QueryTimeout("the query was interrupted")
    return QueryTimeout(f"the query ran longer than the time limit of {seconds:g} s and was stopped")


def _too_large(max_bytes: int | None) -> AnswerTooLarge:
    limit = min(max_bytes, ARROW_STRING_LIMIT) if max_bytes else ARROW_STRING_LIMIT
    return AnswerTooLarge(
        f"the answer is larger than the limit of {limit:,} bytes ({limit / 2**20:,.0f} MiB); select fewer rows or "
        "columns, shorter text, or aggregate"
    )


def _interrupt(con: duckdb.DuckDBPyConnection) -> None:
    with suppress(duckdb.Error):  # the query may have finished and its connection closed in the meantime
        con.interrupt()


def _read_at_most(
    reader: pa.RecordBatchReader, max_rows: int | None, max_bytes: int | None = None
) -> tuple[pa.Table, bool]:
    """Read batches until the row limit (then say so) or past the byte limit (then refuse the answer)."""
    import pyarrow as pa

    if max_rows is None and max_bytes is None:
        return reader.read_all(), False
    batches, count, size = [], 0, 0
    for batch in reader:
        batches.append(batch)
        count += batch.num_rows
        size += batch.nbytes
        if max_bytes is not None and size > max_bytes:
            raise _too_large(max_bytes)
        if max_rows is not None and count > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    if max_rows is None:
        return table, False
    return table.slice(0, max_rows), count > max_rows


def run_query(settings: Settings, sql: str, *, as_of: AsOf | None = None, explain: bool = False) -> pa.Table:
    """`kanda query`: one read-only statement at one publication (the newest unless `as_of`), as an Arrow table.

    Raises `QueryRefused`, `QueryFailed`, `AnswerTooLarge`, `DataUnavailable`, `NothingPublished` or
    `UnknownPublication`, each with a message for the analyst."""
    with central_reader(settings, as_of=as_of) as central, _stopped_by_ctrl_c(central.con):
        timeout = settings.query_timeout_seconds or None
        return execute(central, sql, explain=explain, timeout_seconds=timeout).table


@dataclass(frozen=True)
class Rows:
    """An answer as DuckDB's own Python values, row by row: what `kanda query` prints as a table or JSON."""

    columns: list[str]
    rows: list[tuple]


def run_query_rows(settings: Settings, sql: str, *, as_of: AsOf | None = None, explain: bool = False) -> Rows:
    """`run_query` without Arrow: the same statement, checks and errors, answered in Python rows.

    A one-shot `kanda query` prints a few rows; converting them through Arrow costs it pyarrow's import (and numpy's),
    a quarter of its start-up. DuckDB's own conversion also keeps what Arrow would not (a UUID, a zoned TIME, an
    infinite date). No row or byte limit here; the time limit is `KANDA_QUERY_TIMEOUT`.
    """
    timeout = settings.query_timeout_seconds or None
    with central_reader(settings, as_of=as_of) as central, _stopped_by_ctrl_c(central.con):
        statement = _checked(central, sql, explain)
        timer = threading.Timer(timeout, _interrupt, [central.con]) if timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            relation = _named_apart(central.con.sql(statement))
            return Rows(list(relation.columns), relation.fetchall())
        except duckdb.Error as exc:
            raise _failure(exc, timeout, None) from None
        finally:
            if timer is not None:
                timer.cancel()


@contextmanager
def _stopped_by_ctrl_c(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Ctrl-C interrupts the running statement (DuckDB does not see the signal while it works), and is then
    raised as the `KeyboardInterrupt` it is, not reported as a time limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = threading.Event()

    def stop(signum: int, frame: object) -> None:
        pressed.set()
        _interrupt(con)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pressed.is_set():
            raise KeyboardInterrupt  # in place of the "time limit" the interrupted statement reports


def explain_text(answer: pa.Table | Rows) -> str:
    """DuckDB's plan as the text it prints (EXPLAIN returns it as rows of key and value)."""
    if isinstance(answer, Rows):
        at = answer.columns.index("explain_value") if "explain_value" in answer.columns else -1
        return "\n".join(str(row[at]) for row in answer.rows)
    column = "explain_value" if "explain_value" in answer.column_names else answer.column_names[-1]
    return "\n".join(str(v) for v in answer.column(column).to_pylist())
