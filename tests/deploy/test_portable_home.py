"""A data folder moved or restored elsewhere (`cp -a`) publishes into and reads its own warehouse only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.checks.verify import verify
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings, load_settings
from tests.support.files import make_files

TOTALS = "SELECT region, sum(net_minor) AS net FROM rollups.region_daily GROUP BY 1 ORDER BY 1"


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_a_copied_home_publishes_into_its_own_warehouse_and_reads_its_own_data(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    make_files(settings, regions=["KE"], rows=200, days=2)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    original = settings.home
    before = files_under(original / "warehouse")
    ke_only = run_query(settings, TOTALS).to_pylist()

    copy = tmp_path / "restored" / "home"
    shutil.copytree(original, copy, symlinks=True)
    monkeypatch.setenv("KANDA_HOME", str(copy))
    moved = load_settings()
    make_files(moved, regions=["NG"], rows=200, days=2)
    ingest_landing(moved, "NG")
    publish_region(moved, "NG")

    assert [r["region"] for r in run_query(moved, TOTALS).to_pylist()] == ["KE", "NG"]
    assert files_under(original / "warehouse") == before, "the copy wrote into the original's warehouse"
    assert run_query(settings, TOTALS).to_pylist() == ke_only

    # The original gone (the copy was a restore): the copy still reads everything from its own files.
    shutil.rmtree(original)
    assert [r["region"] for r in run_query(load_settings(), TOTALS).to_pylist()] == ["KE", "NG"]
    failed = [r for r in verify(load_settings()) if not r.passed and r.severity == "error"]
    assert failed == []


def test_a_catalog_whose_tables_are_in_another_kind_of_warehouse_is_refused_with_both_names(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    from kanda.central.catalog import open_catalog
    from kanda.settings import WarehouseMismatch

    open_catalog(settings)
    monkeypatch.setenv("KANDA_WAREHOUSE", "s3://some-bucket/warehouse")
    with pytest.raises(WarehouseMismatch, match="s3://some-bucket/warehouse") as refused:
        open_catalog(load_settings())
    assert str(settings.home / "warehouse") in str(refused.value)
