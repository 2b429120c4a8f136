"""The central query layer: Iceberg tables in namespace `rollups`, through pyiceberg's SQL catalog.

Iceberg commits one table at a time, but a publish touches every rollup. Visibility is therefore decided by one
more commit: a row in `rollups.publications` naming the snapshot of every rollup table. Readers resolve the newest
publication and read exactly those snapshots, so they see all of a publish or none of it; publishes are serialised
by a lock so that each publication's snapshots contain every earlier publish.

A publish that dies between its table commits leaves orphans: rollup tables whose current snapshot is newer than
the newest publication names. `rollback_orphans` (run by every publish under the lock, before it commits) puts
such tables back on the published snapshots, so no publication is ever built on half of another publish.

Each publication also anchors its region's ledger head (seq, batch id, hash, cumulative counts) outside the
region: someone who can rewrite a regional store can recompute its hash chain, but not the anchors already
published here, so `kanda verify` compares the chain with every anchored head.
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
from filelock import FileLock
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.types import IcebergType, LongType, StringType

from kanda.central.publication import NAMESPACE, PUBLICATIONS, Publication
from kanda.settings import Settings
from warehouse_models import PUBLISHED

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
#: Iceberg types for columns added to an existing publications table (all optional: older rows have none).
_ADDED_COLUMN_TYPES: dict[pa.DataType, IcebergType] = {pa.int64(): LongType(), pa.string(): StringType()}

PUBLICATIONS_SCHEMA = pa.schema(
    [
        pa.field("publish_id", pa.string(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("days", pa.int64(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        *[pa.field(f"{table}_snapshot", pa.int64(), nullable=False) for table in PUBLISHED],
        # The region's ledger head when it published (null in publications made before anchoring existed).
        *LEDGER_ANCHOR,
    ]
)


def open_catalog(settings: Settings) -> SqlCatalog:
    if settings.catalog_url.startswith("sqlite:///"):
        Path(settings.catalog_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if settings.warehouse_uri.startswith("file://"):
        Path(settings.warehouse_uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        try:
            catalog = SqlCatalog("kanda", uri=settings.catalog_url, warehouse=settings.warehouse_uri)
            with suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(NAMESPACE)
            return catalog
        except sqlalchemy.exc.DBAPIError:
            # Two processes creating a new catalog at the same moment: one of them loses the insert of the
            # namespace row (or of the catalog tables). The winner's work is what we wanted; look again.
            if attempt == 5:
                raise
            time.sleep(0.05 * attempt)
            attempt += 1


@contextmanager
def publish_lock(settings: Settings) -> Iterator[None]:
    """Serialise publishes: a file lock beside a SQLite catalog, an advisory lock on PostgreSQL."""
    if settings.catalog_url.startswith("postgresql"):
        import sqlalchemy

        engine = sqlalchemy.create_engine(settings.catalog_url)
        key = zlib.crc32(b"kanda-publish")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
        return
    settings.ensure_dirs()
    with FileLock(str(settings.locks_dir / "publish.lock")):
        yield


def ensure_table(catalog: SqlCatalog, name: str, schema: pa.Schema) -> Table:
    identifier = f"{NAMESPACE}.{name}"
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = catalog.create_table(identifier, schema=schema)
        if "region" in schema.names:
            with table.update_spec() as spec:
                spec.add_identity("region")
        return table
    missing = [f for f in schema if f.name not in {c.name for c in table.schema().columns}]
    if name == PUBLICATIONS and missing:
        # A rollup table added since this catalog was made: older publications have no snapshot for it, so the
        # new column is optional (null there). `needs_full_publish` then republishes each region once. The same
        # goes for the ledger anchor columns: publications made before them simply anchor nothing.
        with table.update_schema() as update:
            for column in missing:
                update.add_column(column.name, _ADDED_COLUMN_TYPES[column.type])
        table = table.refresh()
    return table


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
    return any(newest.get(f"{name}_snapshot") is None for name in PUBLISHED)


def latest_publication(catalog: SqlCatalog, *, as_of: dt.datetime | None = None) -> Publication | None:
    """The newest complete publication (optionally: the newest at or before `as_of`)."""
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
        {table_name: newest.get(f"{table_name}_snapshot") for table_name in PUBLISHED},
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


def publication_rows(catalog: SqlCatalog) -> list[dict]:
    """Every row of `rollups.publications`, oldest first (empty before the first publish)."""
    try:
        table = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
    except NoSuchTableError:
        return []
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: (r["published_at"], r["publish_id"]))


def rollback_orphans(catalog: SqlCatalog) -> list[str]:
    """Put every rollup table back on the snapshot the newest publication names; say what was rolled back.

    Call under the publish lock, before committing. A table whose current snapshot differs from the publication's
    was committed by a publish that died before its publication row: building on it would make the next
    publication mix two states. Rolling back only moves the table's current pointer, so every snapshot an older
    publication names stays readable. The dead publish's days are still dirty in its store (they are cleared only
    after the publication commits), so that region's next publish redoes them.
    """
    publication = latest_publication(catalog)
    undone = []
    for name in PUBLISHED:
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
    for name in PUBLISHED:
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


def published_files(catalog: SqlCatalog, publication: Publication, table_name: str) -> list[str] | None:
    """The Parquet files of a rollup as of a publication, or None when delete files make a plain read wrong."""
    if publication.snapshots[table_name] is None:
        return None
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    tasks = list(table.scan(snapshot_id=publication.snapshots[table_name]).plan_files())
    if any(task.delete_files for task in tasks):
        return None
    return [task.file.file_path for task in tasks]
