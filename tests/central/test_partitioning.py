"""Rollup files are kept per (region, month): a one-day change rewrites its month's files, not the region's history."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pyiceberg.table import Table

import kanda.central.catalog
from kanda.central.catalog import MONTH_PARTITION, latest_publication, open_catalog, read_published
from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files
from warehouse_models import published

#: Six days across a month's end, so that every region's rollups lie in two months.
START = dt.date(2026, 9, 28)
LATE_DAY = dt.date(2026, 10, 2)


def month_number(day: dt.date) -> int:
    """Iceberg's month transform: months since 1970-01."""
    return (day.year - 1970) * 12 + day.month - 1


def files_by_partition(table: Table, snapshot: int) -> dict[str, tuple]:
    """Data file path -> (spec id, region, month or None) for the files a snapshot reads."""
    found = {}
    for task in table.scan(snapshot_id=snapshot).plan_files():
        spec = table.specs()[task.file.spec_id]
        values = dict(zip([f.name for f in spec.fields], task.file.partition, strict=True))
        found[task.file.file_path] = (task.file.spec_id, values["region"], values.get(MONTH_PARTITION))
    return found


def publication_files(settings: Settings) -> dict[str, dict[str, tuple]]:
    catalog = open_catalog(settings)
    publication = latest_publication(catalog)
    return {
        name: files_by_partition(catalog.load_table(f"rollups.{name}"), publication.snapshots[name])
        for name in published()
    }


def rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def publish_a_late_day(settings: Settings) -> set[int]:
    """A late file for one day in Kenya, ingested and published; the months its publish touched."""
    (late,) = make_files(settings, regions=["KE"], rows=40, days=1, seed=99, start=LATE_DAY)
    ingest_files(settings, "KE", [late.path])
    result = publish_region(settings, "KE")
    assert result.published and LATE_DAY in result.days
    return {month_number(day) for day in result.days}


def test_a_one_day_change_rewrites_only_its_months_files(settings: Settings):
    make_files(settings, regions=["KE", "NG"], rows=600, days=6, start=START)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
        publish_region(settings, code)
    before = publication_files(settings)
    for files in before.values():  # every region's rollups are split by month
        assert {(region, month) for _, region, month in files.values()} >= {
            (code, month_number(day)) for code in ("KE", "NG") for day in (START, LATE_DAY)
        }

    touched = publish_a_late_day(settings)

    after = publication_files(settings)
    changed = {("KE", month) for month in touched}
    for name in published():
        outside = [
            {p for p, (_, *where) in files[name].items() if tuple(where) not in changed} for files in (before, after)
        ]
        assert outside[0] == outside[1], f"{name}: files outside the change's months were rewritten"
        inside = {p for p, (_, *where) in after[name].items() if tuple(where) in changed}
        assert inside - set(before[name]), f"{name}: the late day's month got no new file"
    assert all(r.passed or r.severity == "warn" for r in verify(settings))


def test_tables_from_before_the_month_partition_move_to_it_as_days_are_republished(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A catalog whose rollups were partitioned by region alone keeps every publication readable, and a region's
    next publish writes its changed rows into monthly files; the other region's files stay as they were."""

    def region_only(table: Table) -> Table:  # the previous release
        if not table.spec().fields and "region" in {c.name for c in table.schema().columns}:
            with table.update_spec() as spec:
                spec.add_identity("region")
            return table.refresh()
        return table

    make_files(settings, regions=["KE", "NG"], rows=600, days=6, start=START)
    with monkeypatch.context() as before:
        before.setattr(kanda.central.catalog, "_partitioned", region_only)
        for code in ("KE", "NG"):
            ingest_landing(settings, code)
            publish_region(settings, code)
    catalog = open_catalog(settings)
    old = latest_publication(catalog)
    old_rows = {name: rows(read_published(catalog, old, name)) for name in published()}
    old_files = publication_files(settings)
    assert all(month is None for files in old_files.values() for _, _, month in files.values())

    publish_a_late_day(settings)

    catalog = open_catalog(settings)
    new_files = publication_files(settings)
    for name in published():
        table = catalog.load_table(f"rollups.{name}")
        assert [f.name for f in table.spec().fields] == ["region", MONTH_PARTITION]
        nigeria = [
            {p for p, (_, region, _) in files[name].items() if region == "NG"} for files in (old_files, new_files)
        ]
        assert nigeria[0] == nigeria[1], name
        kenya_months = {month for _, region, month in new_files[name].values() if region == "KE"}
        # the late day was in Kenya's one old file, so all of that file's rows were rewritten, into monthly files
        assert month_number(LATE_DAY) in kenya_months and None not in kenya_months, name
        # the publication from before the change still reads exactly as it did
        assert rows(read_published(catalog, old, name)) == old_rows[name], name
    assert all(r.passed or r.severity == "warn" for r in verify(settings))
