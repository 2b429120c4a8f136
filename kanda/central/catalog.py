"""The central query layer: Iceberg tables in namespace `rollups`, through pyiceberg's SQL catalog.

Iceberg commits one table at a time, but a publish touches every rollup. Visibility is therefore decided by one
more commit: a row in `rollups.publications` naming the snapshot of every rollup table. Readers resolve the newest
publication and read exactly those snapshots, so they see all of a publish or none of it; publishes are serialised
by a lock so that each publication's snapshots contain every earlier publish.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy.exc
from filelock import FileLock
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.types import LongType

from kanda.settings import Settings
from warehouse_models import published

NAMESPACE = "rollups"
PUBLICATIONS = "publications"

PUBLICATIONS_SCHEMA = pa.schema(
    [
        pa.field("publish_id", pa.string(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("days", pa.int64(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        *[pa.field(f"{table}_snapshot", pa.int64(), nullable=False) for table in published()],
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
        # new column is optional (null there). `needs_full_publish` then republishes each region once.
        with table.update_schema() as update:
            for column in missing:
                update.add_column(column.name, LongType())
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
    return any(newest.get(f"{name}_snapshot") is None for name in published())


@dataclass(frozen=True)
class Publication:
    publish_id: str
    region: str
    published_at: dt.datetime
    snapshots: dict[str, int | None]  # None: the table did not exist yet at this publication


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
        {table_name: newest.get(f"{table_name}_snapshot") for table_name in published()},
    )


def read_published(catalog: SqlCatalog, publication: Publication, table_name: str) -> pa.Table:
    """A rollup table exactly as of a publication (empty if the table was added to kanda after it)."""
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    snapshot = publication.snapshots[table_name]
    if snapshot is None:
        return table.schema().as_arrow().empty_table()
    return table.scan(snapshot_id=snapshot).to_arrow()


def published_files(catalog: SqlCatalog, publication: Publication, table_name: str) -> list[str] | None:
    """The Parquet files of a rollup as of a publication, or None when delete files make a plain read wrong."""
    if publication.snapshots[table_name] is None:
        return None
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    tasks = list(table.scan(snapshot_id=publication.snapshots[table_name]).plan_files())
    if any(task.delete_files for task in tasks):
        return None
    return [task.file.file_path for task in tasks]
