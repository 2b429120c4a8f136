"""Files under the central tables' folders that no table references: what a publish killed before its commit left.

A publish writes its Parquet data files and manifests first and commits after; a host killed in between leaves
files that no snapshot names (the next publish rolls the table's pointer back, `rollback_orphans`, but does not
know those files). Nothing reads them, and pyiceberg has no clean-up for them, so they would stay in the bucket for
good. An orphan is what Iceberg's own `remove_orphan_files` calls one: a file under a table's location that none
of the table's metadata files, snapshots, manifest lists, manifests, statistics or data and delete files names,
and that is older than a safety margin, so that the files of a publish still being written are never taken.
kanda expires only the snapshots that no kept publication names (`kanda.central.retention`), so every file a
readable publication reads stays referenced; the files only expired snapshots named become orphans here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from pyarrow.fs import FileInfo, FileSelector, FileType
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from kanda.central.catalog import NAMESPACE

#: The least age of a file taken as an orphan: a publish writes its files and commits within seconds to minutes.
MIN_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Orphan:
    table: str
    path: str  # as the table's filesystem names it: "bucket/key" on S3, an absolute path on disk
    size: int
    modified: dt.datetime


def find_orphans(catalog: SqlCatalog, *, older_than: dt.timedelta, now: dt.datetime | None = None) -> list[Orphan]:
    """Every orphan file of the catalog's tables last modified before `now - older_than` (at least `MIN_AGE`).

    Call under the publish lock: a commit landing between listing the files and reading the references would make
    its new files look unreferenced (the age margin guards them too).
    """
    if older_than < MIN_AGE:
        raise ValueError(f"older_than must be at least {MIN_AGE}: younger files may be a publish's, not yet committed")
    cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
    found = []
    for identifier in sorted(catalog.list_tables(NAMESPACE)):
        table = catalog.load_table(identifier)
        keep = {_key(table, location) for location in _referenced(table)}
        for info in _files_under(table):
            modified = info.mtime if info.mtime.tzinfo else info.mtime.replace(tzinfo=dt.UTC)
            if info.path not in keep and modified < cutoff:
                found.append(Orphan(".".join(identifier), info.path, info.size or 0, modified))
    return found


def remove_orphans(catalog: SqlCatalog, orphans: list[Orphan]) -> int:
    """Delete the files `find_orphans` returned; returns how many were deleted (a file gone since is skipped)."""
    removed = 0
    for orphan in orphans:
        table = catalog.load_table(orphan.table)
        filesystem = _filesystem(table)
        if filesystem.get_file_info(orphan.path).type == FileType.File:
            filesystem.delete_file(orphan.path)
            removed += 1
    return removed


def _referenced(table: Table) -> Iterator[str]:
    """Every location the table's metadata names, over all its snapshots (deleted manifest entries included)."""
    metadata = table.metadata
    yield table.metadata_location
    yield from (entry.metadata_file for entry in metadata.metadata_log)
    yield from (statistics.statistics_path for statistics in metadata.statistics)
    yield from (statistics.statistics_path for statistics in metadata.partition_statistics)
    for snapshot in metadata.snapshots:
        yield snapshot.manifest_list
        for manifest in snapshot.manifests(table.io):
            yield manifest.manifest_path
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                yield entry.data_file.file_path


def _key(table: Table, location: str) -> str:
    """A location as the table's filesystem lists it (a moved local warehouse maps recorded names to real ones)."""
    return type(table.io).parse_location(location, table.io.properties)[2]


def _filesystem(table: Table):
    scheme, netloc, _ = type(table.io).parse_location(table.location(), table.io.properties)
    return table.io.fs_by_scheme(scheme, netloc)


def _files_under(table: Table) -> list[FileInfo]:
    selector = FileSelector(_key(table, table.location()), recursive=True, allow_not_found=True)
    return [info for info in _filesystem(table).get_file_info(selector) if info.type == FileType.File]
