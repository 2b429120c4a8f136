"""The central query layer: Iceberg tables in namespace `rollups`, through pyiceberg's SQL catalog.

Iceberg commits one table at a time, but a publish touches every rollup. Visibility is therefore decided by one
more commit: a row in `rollups.publications` naming the snapshot of every rollup table. Readers resolve the newest
publication and read exactly those snapshots, so they see all of a publish or none of it; publishes are serialised
by a lock so that each publication's snapshots contain every earlier publish. The lock is not trusted alone: a
publish builds on exactly the snapshots of the publication it started from and appends its row only if that is
still the newest (`kanda.central.publish`), so one that lost the lock to a database restart fails, never mixes.

A publish that dies between its table commits leaves orphans: rollup tables whose current snapshot is newer than
the newest publication names. `rollback_orphans` (run by every publish under the lock, before it commits) puts
such tables back on the published snapshots, so no publication is ever built on half of another publish.

Each publication also anchors its region's ledger head (seq, batch id, hash, cumulative counts) outside the
region: someone who can rewrite a regional store can recompute its hash chain, but not the anchors already
published here, so `kanda verify` compares the chain with every anchored head.

Locations. Iceberg stores absolute locations (metadata files, manifests, data files), so the warehouse a catalog
was created with is recorded in the catalog itself (namespace property `kanda.warehouse`). In object storage that
location is the same from every host. A local warehouse whose data folder was moved or restored elsewhere (a
`cp -a` of `KANDA_HOME`) keeps those recorded names as *logical* names: the catalog is opened with a FileIO that
maps them onto the configured warehouse, so the copy reads and writes its own files, never the original's. A
catalog whose recorded warehouse is of another kind than the configured one (object store vs local) is refused
with both names, rather than written to the wrong place.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy.exc
from filelock import FileLock, Timeout
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo
from pyiceberg.io import PY_IO_IMPL
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.transforms import MonthTransform

from kanda.central.publication import NAMESPACE, PUBLICATION_DOCS, PUBLICATIONS, Publication
from kanda.regional.store import StoreBusy
from kanda.settings import Settings, WarehouseMismatch, masked_url
from warehouse_models import column_docs, published

__all__ = ["NAMESPACE", "PUBLICATIONS", "Publication"]  # defined beside, for readers that need no pyiceberg


#: The ledger head anchored with each publication: the newest batch's seq, id and hash, and the totals up to it.
LEDGER_ANCHOR = [
    pa.field("ledger_seq", pa.int64()),
    pa.field("ledger_batch_id", pa.string()),
    pa.field("ledger_hash", pa.string()),
    pa.field("ledger_rows_read", pa.int64()),
    pa.field("ledger_loaded", pa.int64()),
    pa.field("ledger_quarantined", pa.int64()),
    pa.field("ledger_duplicates", pa.int64()),
]

PUBLICATIONS_SCHEMA = pa.schema(
    [
        pa.field("publish_id", pa.string(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("days", pa.int64(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        *[pa.field(f"{table}_snapshot", pa.int64(), nullable=False) for table in published()],
        # The region's ledger head when it published (null in publications made before anchoring existed).
        *LEDGER_ANCHOR,
    ]
)


#: Namespace property recording the warehouse the catalog's locations were written under.
WAREHOUSE_PROPERTY = "kanda.warehouse"
#: FileIO properties of a relocated local warehouse: the recorded root and where its files are now.
RECORDED_ROOT = "kanda.recorded-warehouse"
ACTUAL_ROOT = "kanda.actual-warehouse"


class PublishBusy(StoreBusy):
    """Another publish held the global publish lock for longer than `KANDA_LOCK_WAIT`."""


class RelocatedFileIO(PyArrowFileIO):
    """PyArrow's FileIO, reading and writing a moved local warehouse under the names it was created with.

    Every location pyiceberg opens, writes or deletes goes through `parse_location`, so mapping the recorded root
    onto the actual one there covers metadata, manifests and data files alike; the names stored in the catalog and
    in the metadata stay the recorded ones, so a second move is mapped the same way.
    """

    @staticmethod
    def parse_location(location: str, properties: dict[str, str] | None = None) -> tuple[str, str, str]:
        properties = properties or {}
        recorded, actual = properties.get(RECORDED_ROOT), properties.get(ACTUAL_ROOT)
        if recorded and actual and (location == recorded or location.startswith(recorded + "/")):
            location = actual + location[len(recorded) :]
        return PyArrowFileIO.parse_location(location, properties)


def _root(uri: str) -> str:
    return uri.rstrip("/")


def _is_local(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


def local_path(uri: str) -> Path:
    """The folder of a `file://` URI (percent-decoded, as `Path.as_uri` encodes it)."""
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)


def catalog_properties(settings: Settings) -> dict[str, str]:
    """What pyiceberg needs besides the URL and warehouse: endpoint and credentials of an object store, etc."""
    return dict(settings.catalog_properties)


def open_catalog(settings: Settings) -> SqlCatalog:
    """The central catalog, its FileIO configured for this host's warehouse (see "Locations" above)."""
    if settings.catalog_url.startswith("sqlite:///"):
        Path(settings.catalog_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if settings.warehouse_uri.startswith("file:"):
        local_path(settings.warehouse_uri).mkdir(parents=True, exist_ok=True)
    configured = _root(settings.warehouse_uri)
    attempt = 1
    # A server's pooled connections are checked before use (pyiceberg's `pool_pre_ping`): a long-lived reader (the
    # API) keeps its catalog, and after the database restarted each of its dead connections failed one request.
    server = {} if settings.catalog_url.startswith("sqlite") else {"pool_pre_ping": "true"}
    while True:
        try:
            properties = {**server, **catalog_properties(settings), "warehouse": configured}
            catalog = SqlCatalog("kanda", uri=settings.catalog_url, **properties)
            with suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(NAMESPACE, {WAREHOUSE_PROPERTY: configured})
            recorded = _recorded_warehouse(catalog, configured)
            break
        except sqlalchemy.exc.DBAPIError:
            # Two processes creating a new catalog at the same moment: one of them loses the insert of the
            # namespace row (or of the catalog tables). The winner's work is what we wanted; look again.
            if attempt == 5:
                raise
            time.sleep(0.05 * attempt)
            attempt += 1
    if recorded == configured:
        return catalog
    if not (_is_local(recorded) and _is_local(configured)):
        raise WarehouseMismatch(
            f"the catalog {masked_url(settings.catalog_url)} keeps its tables in {recorded}, but this host is"
            f" configured with KANDA_WAREHOUSE={configured}: set KANDA_WAREHOUSE to the catalog's warehouse"
            " (every host of an installation uses the same one)"
        )
    catalog.engine.dispose()
    # A moved or restored data folder: keep the recorded names, find the files under the configured folder.
    relocated = {
        **properties,
        "warehouse": recorded,
        PY_IO_IMPL: f"{RelocatedFileIO.__module__}.{RelocatedFileIO.__name__}",
        RECORDED_ROOT: recorded,
        ACTUAL_ROOT: configured,
    }
    return SqlCatalog("kanda", uri=settings.catalog_url, **relocated)


def _recorded_warehouse(catalog: SqlCatalog, configured: str) -> str:
    """The warehouse the catalog's locations were written under; recorded now if the catalog predates recording.

    An older catalog's warehouse is read off its publications table's metadata location
    (`<warehouse>/rollups/publications/metadata/...`), else it is the configured one.
    """
    recorded = catalog.load_namespace_properties(NAMESPACE).get(WAREHOUSE_PROPERTY)
    if recorded:
        return _root(recorded)
    found = configured
    with catalog.engine.connect() as conn:
        row = conn.execute(
            sqlalchemy.text(
                "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = :c AND table_namespace = :n"
                " AND metadata_location IS NOT NULL ORDER BY table_name LIMIT 1"
            ),
            {"c": catalog.name, "n": NAMESPACE},
        ).fetchone()
    if row and f"/{NAMESPACE}/" in row[0]:
        found = _root(row[0].rsplit(f"/{NAMESPACE}/", 1)[0])
    catalog.update_namespace_properties(NAMESPACE, updates={WAREHOUSE_PROPERTY: found})
    return found


def physical_location(catalog: SqlCatalog, location: str) -> str:
    """Where a location the catalog names actually is on this host (differs only for a moved local warehouse)."""
    recorded, actual = catalog.properties.get(RECORDED_ROOT), catalog.properties.get(ACTUAL_ROOT)
    if recorded and actual and (location == recorded or location.startswith(recorded + "/")):
        return actual + location[len(recorded) :]
    return location


@contextmanager
def publish_lock(settings: Settings) -> Iterator[None]:
    """Serialise publishes across every host: an advisory lock on PostgreSQL, else a file lock beside the data.

    Either way the wait is bounded by `KANDA_LOCK_WAIT`; past it the publish fails with `PublishBusy` (its days
    stay dirty, so the next run publishes them).
    """
    if settings.catalog_url.startswith("postgresql"):
        with _advisory_lock(settings):
            yield
        return
    settings.ensure_dirs()
    lock = FileLock(str(settings.locks_dir / "publish.lock"))
    try:
        lock.acquire(timeout=settings.lock_wait_seconds)
    except Timeout:
        raise PublishBusy(
            f"another publish held {lock.lock_file} for more than KANDA_LOCK_WAIT={settings.lock_wait_seconds:g} s"
        ) from None
    try:
        yield
    finally:
        lock.release()


#: The advisory lock key of publishes (any 64-bit number; the same on every host of an installation).
PUBLISH_LOCK_KEY = zlib.crc32(b"kanda-publish")


@contextmanager
def _advisory_lock(settings: Settings) -> Iterator[None]:
    """`pg_try_advisory_lock` on a connection of its own, in autocommit, polled until `KANDA_LOCK_WAIT`.

    A session lock taken outside any transaction: the connection is never "idle in transaction", so a server's
    `idle_in_transaction_session_timeout` cannot end it mid-publish (and `idle_session_timeout` is switched off
    for this session). It is released in `finally`, and by the server if this process dies.
    """
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(settings.catalog_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + settings.lock_wait_seconds
    try:
        with engine.connect() as conn:
            for setting in ("idle_in_transaction_session_timeout", "idle_session_timeout"):
                with suppress(sqlalchemy.exc.DBAPIError):  # idle_session_timeout exists from PostgreSQL 14
                    conn.execute(sqlalchemy.text(f"SET {setting} = 0"))
            pause, try_lock = 0.05, sqlalchemy.text("SELECT pg_try_advisory_lock(:k)")
            while not conn.execute(try_lock, {"k": PUBLISH_LOCK_KEY}).scalar():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishBusy(
                        f"another publish held the publish lock of {masked_url(settings.catalog_url)} for more than"
                        f" KANDA_LOCK_WAIT={settings.lock_wait_seconds:g} s"
                    )
                time.sleep(min(pause, left))
                pause = min(pause * 2, 1.0)
            try:
                yield
            finally:
                with suppress(sqlalchemy.exc.DBAPIError):  # a lost connection has released the lock already
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK_KEY})
    finally:
        engine.dispose()


def documented_schema(name: str, schema: pa.Schema) -> pa.Schema:
    """`schema` with each field's doc (Arrow metadata `doc`, which pyiceberg turns into the Iceberg field doc) and
    nullability as the models declare it: a models.yml `required` column is non-null, every other one nullable.

    Publish casts its frames to this, so the written Arrow data carries the same required flags as the table (Arrow
    refuses the cast when a required column holds a NULL, before anything is written).
    """
    if name == PUBLICATIONS:
        declared = {f.name: (PUBLICATION_DOCS.get(f.name), f.nullable) for f in PUBLICATIONS_SCHEMA}
    else:
        declared = {c.name: (c.doc, not c.required) for c in column_docs(name).values()}
    fields = []
    for field in schema:
        doc, nullable = declared.get(field.name, (None, field.nullable))
        metadata = {**(field.metadata or {}), **({b"doc": doc.encode()} if doc else {})}
        fields.append(pa.field(field.name, field.type, nullable=nullable, metadata=metadata or None))
    return pa.schema(fields, metadata=schema.metadata)


def ensure_table(catalog: SqlCatalog, name: str, schema: pa.Schema) -> Table:
    """The table `rollups.<name>`, created or brought up to date with `documented_schema`: columns, docs, required.

    A new table gets every field's doc and required flag. An existing one gets missing columns, changed docs, and
    required columns the models now allow to be NULL made optional. The other way round is left alone: Iceberg does
    not allow making an optional column required (files already written may hold NULLs), so a table created before
    the models declared `required` keeps those columns optional; its docs are still set.
    """
    schema = documented_schema(name, schema)
    identifier = f"{NAMESPACE}.{name}"
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return _partitioned(catalog.create_table(identifier, schema=schema))
    table = _partitioned(table)
    missing = [f for f in schema if f.name not in {c.name for c in table.schema().columns}]
    if missing:
        # Added to kanda since this catalog was made, so optional: rows written before have none (null). In the
        # publications table: a rollup table's snapshot (older publications have none, and `needs_full_publish`
        # republishes each region once) or the ledger anchor (older publications anchor nothing). In a rollup: a
        # new column, whose models changed the fingerprint, so each region's next publish sends all its days.
        with table.update_schema() as update:
            update.union_by_name(pa.schema([column.with_nullable(True) for column in missing]))
        table = table.refresh()
    return _document(table, schema)


#: The partition field of a rollup's month: a publish replaces (region, days), and Iceberg rewrites only the files of
#: the partitions those rows are in, so a region's files hold one month each and a one-day change rewrites about a
#: month of rollup rows, however long the history (partitioned by region alone, it rewrote all of the region's).
#: Days would make the files too many and too small for readers scanning all history (regions x days per table).
MONTH_PARTITION = "local_date_month"


def _partitioned(table: Table) -> Table:
    """`table` partitioned by region, then by the month of `local_date` where it has those columns.

    A table made before the month partition gets it added (partition evolution): its existing files stay as they
    are, readable by every publication that names them, and a publish that touches one of them rewrites its rows
    under the new partitioning, so each region's history moves to monthly files as its days are republished.
    """
    columns = {column.name for column in table.schema().columns}
    have = {field.name for field in table.spec().fields}
    add_region = "region" in columns and "region" not in have
    add_month = "local_date" in columns and MONTH_PARTITION not in have
    if not (add_region or add_month):
        return table
    with table.update_spec() as spec:
        if add_region:
            spec.add_identity("region")
        if add_month:
            spec.add_field("local_date", MonthTransform(), MONTH_PARTITION)
    return table.refresh()


def _doc(field: pa.Field) -> str | None:
    raw = (field.metadata or {}).get(b"doc")
    return raw.decode() if raw else None


def _document(table: Table, schema: pa.Schema) -> Table:
    """Bring an existing table's field docs and (loosening only) required flags in line with `schema`."""
    current = {field.name: field for field in table.schema().fields}
    changes = []
    for field in schema:
        have = current.get(field.name)
        if have is None:
            continue
        doc = _doc(field)
        loosen = have.required and field.nullable
        if (doc is not None and have.doc != doc) or loosen:
            changes.append((field.name, doc if doc is not None else have.doc, loosen))
    if not changes:
        return table
    with table.update_schema() as update:
        for column, doc, loosen in changes:
            update.update_column(column, doc=doc, required=False if loosen else None)
    return table.refresh()


def needs_full_publish(catalog: SqlCatalog, region: str) -> bool:
    """Whether the region's newest publication lacks a rollup table (one added since): then all its days go out."""
    try:
        table = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
    except NoSuchTableError:
        return False  # nothing published anywhere: the region's changed days are all of its days
    rows = [r for r in table.scan(row_filter=EqualTo("region", region)).to_arrow().to_pylist()]
    if not rows:
        return False
    newest = max(rows, key=lambda r: (r["published_at"], r["publish_id"]))
    return any(newest.get(f"{name}_snapshot") is None for name in published())


def latest_publication(
    catalog: SqlCatalog, *, as_of: dt.datetime | None = None, table: Table | None = None
) -> Publication | None:
    """The newest complete publication (optionally: the newest at or before `as_of`); read from `table`, the
    publications table as already loaded (a publish reads it once and appends to that same state), else loaded."""
    if table is None:
        try:
            table = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
        except NoSuchTableError:
            return None
    rows = table.scan().to_arrow().to_pylist()
    if as_of is not None:
        rows = [r for r in rows if r["published_at"] <= as_of]
    if not rows:
        return None
    newest = max(rows, key=lambda r: (r["published_at"], r["publish_id"]))
    return Publication(
        newest["publish_id"],
        newest["region"],
        newest["published_at"],
        {table_name: newest.get(f"{table_name}_snapshot") for table_name in published()},
    )


def read_published(
    catalog: SqlCatalog, publication: Publication, table_name: str, row_filter: BooleanExpression | None = None
) -> pa.Table:
    """A rollup table exactly as of a publication (empty if the table was added to kanda after it)."""
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    snapshot = publication.snapshots[table_name]
    if snapshot is None:
        return table.schema().as_arrow().empty_table()
    return table.scan(snapshot_id=snapshot, row_filter=row_filter or AlwaysTrue()).to_arrow()


def published_batches(catalog: SqlCatalog, publication: Publication, table_name: str) -> pa.RecordBatchReader:
    """`read_published` as a stream of Arrow batches, a few data files at a time.

    pyiceberg's own `to_arrow_batch_reader` hands every file of the scan to its thread pool at once, so files read
    faster than the stream is consumed pile up in memory until the whole table is there. Reading `FILES_AT_ONCE`
    files per round keeps a rollup read from object storage bounded by a few files, whatever the table's size.
    """
    from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow

    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    snapshot = publication.snapshots[table_name]
    if snapshot is None:
        return table.schema().as_arrow().empty_table().to_reader()
    scan = table.scan(snapshot_id=snapshot)
    tasks = list(scan.plan_files())
    schema = schema_to_pyarrow(scan.projection())
    reader = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter, scan.case_sensitive)

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(tasks), FILES_AT_ONCE):
            yield from reader.to_record_batches(tasks[start : start + FILES_AT_ONCE])

    return pa.RecordBatchReader.from_batches(schema, batches()).cast(schema)


#: Data files `published_batches` reads at once: enough to keep a 2-core host's reads overlapping.
FILES_AT_ONCE = 4


def publication_rows(catalog: SqlCatalog) -> list[dict]:
    """Every row of `rollups.publications`, oldest first (empty before the first publish)."""
    try:
        table = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
    except NoSuchTableError:
        return []
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: (r["published_at"], r["publish_id"]))


def rollback_orphans(catalog: SqlCatalog, *, publications: Table | None = None) -> list[str]:
    """Put every rollup table back on the snapshot the newest publication names; say what was rolled back.

    Call under the publish lock, before committing. A table whose current snapshot differs from the publication's
    was committed by a publish that died before its publication row: building on it would make the next
    publication mix two states. Rolling back only moves the table's current pointer, so every snapshot an older
    publication names stays readable. The dead publish's days are still dirty in its store (they are cleared only
    after the publication commits), so that region's next publish redoes them. `publications` is the publications
    table as the caller loaded it, so that it rolls back to the publication it will build on.
    """
    publication = latest_publication(catalog, table=publications)
    undone = []
    for name in published():
        try:
            table = catalog.load_table(f"{NAMESPACE}.{name}")
        except NoSuchTableError:
            continue
        current = table.current_snapshot()
        wanted = publication.snapshots.get(name) if publication else None
        if current is None or current.snapshot_id == wanted:
            continue
        if wanted is None:
            # No publication has ever named this table (a first publish died after creating it): published, it
            # is empty, so empty it. A delete of everything is a metadata-only commit (and may match nothing, if the
            # dead publish committed an empty frame: pyiceberg warns about that, which is expected here).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                table.delete(AlwaysTrue())
        else:
            table.manage_snapshots().set_current_snapshot(snapshot_id=wanted).commit()
        orphan = current.summary.additional_properties.get("kanda.publish_id") if current.summary else None
        undone.append(f"{name}: rolled back snapshot {current.snapshot_id} (publish {orphan or 'unknown'})")
    return undone


@dataclass(frozen=True)
class DamagedFile:
    """A data file a publication reads that is missing or unreadable, with the region whose partition holds it."""

    table: str
    path: str
    region: str | None
    problem: str


def damaged_files(catalog: SqlCatalog, publication: Publication) -> list[DamagedFile]:
    """Data files of the publication's snapshots that are missing, truncated or not Parquet (read from footers).

    Checks what a reader of this publication would open, without reading any rows: existence, the byte size the
    manifest recorded, and a Parquet footer whose row count matches the manifest.
    """
    found = []
    for name in published():
        snapshot = publication.snapshots.get(name)
        if snapshot is None:
            continue
        table = catalog.load_table(f"{NAMESPACE}.{name}")
        for task in table.scan(snapshot_id=snapshot).plan_files():
            for data_file in [task.file, *task.delete_files]:
                problem = _file_problem(table, data_file)
                if problem:
                    found.append(DamagedFile(name, data_file.file_path, _region_of(table, data_file), problem))
    return found


def _file_problem(table: Table, data_file: DataFile) -> str | None:
    source = table.io.new_input(data_file.file_path)
    if not source.exists():
        return "missing"
    size = len(source)
    if size != data_file.file_size_in_bytes:
        return f"{size} bytes, the manifest recorded {data_file.file_size_in_bytes}"
    try:
        with source.open() as stream:
            rows = pq.ParquetFile(stream).metadata.num_rows
    except Exception as exc:  # any unreadable footer is the finding, whatever pyarrow calls it
        return f"unreadable ({type(exc).__name__}: {exc})"
    if rows != data_file.record_count:
        return f"{rows} rows, the manifest recorded {data_file.record_count}"
    return None


def _region_of(table: Table, data_file: DataFile) -> str | None:
    fields = [field.name for field in table.specs()[data_file.spec_id].fields]
    return data_file.partition[fields.index("region")] if "region" in fields else None


@dataclass(frozen=True)
class PublishedFiles:
    """A rollup's local Parquet files as of a publication, and the table's schema at that snapshot.

    The files need not all have every column of the schema: a file written before a column was added lacks it,
    and a reader must show it as NULL there (as Iceberg does), not fail on the files' differing schemas.
    """

    paths: list[str]
    schema: pa.Schema


def published_files(catalog: SqlCatalog, publication: Publication, table_name: str) -> PublishedFiles | None:
    """The local Parquet files of a rollup as of a publication, where they are on this host.

    None when a plain read of the files would be wrong (delete files) or impossible without DuckDB extensions
    (object storage): the reader then reads the publication through pyiceberg and pyarrow.
    """
    if publication.snapshots[table_name] is None:
        return None
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    scan = table.scan(snapshot_id=publication.snapshots[table_name])
    tasks = list(scan.plan_files())
    if any(task.delete_files for task in tasks):
        return None
    paths = [physical_location(catalog, task.file.file_path) for task in tasks]
    if not all(_is_local(path) for path in paths):
        # Object storage: DuckDB would need its httpfs extension (a download); the reader reads through pyiceberg.
        return None
    return PublishedFiles(paths, scan.projection().as_arrow())
