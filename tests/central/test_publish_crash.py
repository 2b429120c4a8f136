"""A `kanda publish` killed between any two of its commits: no reader ever sees half of it, and a rerun converges.

Each case kills a real publish process at one step (`KANDA_FAULT`, test-only), lets another region publish on top
of what the dead one left behind, then checks every publication row anyone can read, and finally reruns and
compares the central tables with a home that never crashed, built from the same input files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kanda.central.catalog import NAMESPACE, latest_publication, open_catalog, publication_rows, read_published
from kanda.central.catalog import Publication as CatalogPublication
from kanda.central.publish import FAULT_ENV, publish_region
from kanda.checks.verify import verify
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings, load_settings
from tests.support.files import make_files
from warehouse_models import PUBLISHED

ROOT = Path(__file__).resolve().parents[2]
CRASHED, SECOND, EARLIER = "KE", "NG", "EG"  # the region killed, one publishing after it, one published before
REGIONS = [CRASHED, SECOND, EARLIER]
#: Between every pair of a publish's commits: each rollup table, then the publication row, then the store.
CRASH_POINTS = [f"after_commit:{name}" for name in list(PUBLISHED)[:-1]] + ["before_publication", "after_publication"]


def use_home(mp: pytest.MonkeyPatch, home: Path) -> Settings:
    mp.setenv("KANDA_HOME", str(home))
    mp.setenv("KANDA_BUYER_SALT", "test-salt")
    mp.setenv("KANDA_BATCH_ROWS", "400")
    mp.delenv("KANDA_CATALOG_URL", raising=False)
    mp.delenv("KANDA_WAREHOUSE", raising=False)
    mp.delenv(FAULT_ENV, raising=False)
    return load_settings()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with every region's files ingested and nothing published: copied into each case as its input."""
    home = tmp_path_factory.mktemp("ingested") / "home"
    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, home)
        settings.ensure_dirs()
        make_files(settings, regions=REGIONS, rows=240, days=2)
        for code in REGIONS:
            ingest_landing(settings, code)
    assert not (home / "warehouse").exists() or not any((home / "warehouse").rglob("*.parquet"))
    yield home


@pytest.fixture(scope="module")
def clean(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The central tables of a home that published the same stores without ever crashing."""
    home = tmp_path_factory.mktemp("clean") / "home"
    shutil.copytree(ingested, home)
    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, home)
        for code in REGIONS:
            assert publish_region(settings, code).published
        return central_tables(settings)


@pytest.fixture
def home(ingested: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    shutil.copytree(ingested, tmp_path / "home")
    return use_home(monkeypatch, tmp_path / "home")


def kanda_publish(settings: Settings, region: str, fault: str) -> subprocess.CompletedProcess[str]:
    """`python -m kanda.cli publish -r REGION` in a child process of this checkout, told to die at `fault`."""
    env = {
        **os.environ,
        "KANDA_HOME": str(settings.home),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        FAULT_ENV: f"publish:{fault}",
    }
    return subprocess.run(
        [sys.executable, "-m", "kanda.cli", "publish", "-r", region],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ordered(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def central_tables(settings: Settings) -> dict[str, pa.Table]:
    """Every rollup as readers see it (the newest publication), in a canonical row order."""
    catalog = open_catalog(settings)
    publication = latest_publication(catalog)
    return {name: ordered(read_published(catalog, publication, name)) for name in PUBLISHED}


def of_region(table: pa.Table, region: str) -> pa.Table:
    return ordered(table.filter(pc.equal(table["region"], region)))


def assert_every_publication_is_one_state(settings: Settings, clean: dict[str, pa.Table]) -> list[dict]:
    """Each publication row, read table by table, holds each region either whole (as the clean home has it) or
    not at all, and the same way in every table: never one table of one publish and another of the next."""
    catalog = open_catalog(settings)
    rows = publication_rows(catalog)
    for row in rows:
        publication = CatalogPublication(
            row["publish_id"], row["region"], row["published_at"], {n: row[f"{n}_snapshot"] for n in PUBLISHED}
        )
        tables = {name: read_published(catalog, publication, name) for name in PUBLISHED}
        for region in REGIONS:
            present = set()
            for name, table in tables.items():
                got = of_region(table, region)
                if got.num_rows:
                    assert got.equals(of_region(clean[name], region)), (row["publish_id"], region, name)
                present.add(bool(got.num_rows))
            assert len(present) == 1, f"publication {row['publish_id']} holds {region} in some tables only"
    return rows


@pytest.mark.parametrize(
    ("step", "published_before"),
    # every crash point on top of an earlier publication, and once as the very first publish (nothing to roll
    # back to: the orphaned table is emptied)
    [(step, True) for step in CRASH_POINTS] + [(CRASH_POINTS[1], False)],
)
def test_a_publish_killed_between_commits_is_never_half_visible_and_a_rerun_converges(
    home: Settings, clean: dict[str, pa.Table], step: str, published_before: bool
):
    if published_before:
        publish_region(home, EARLIER)

    killed = kanda_publish(home, CRASHED, step)
    assert killed.returncode == 99, killed.stderr  # it died where it was told to, not of something else
    catalog = open_catalog(home)
    publication = latest_publication(catalog)
    if step.startswith("after_commit:"):  # the dead publish left a committed table no publication names
        name = step.removeprefix("after_commit:")
        orphan = catalog.load_table(f"{NAMESPACE}.{name}").current_snapshot().snapshot_id
        assert publication is None or orphan != publication.snapshots[name]
    assert_every_publication_is_one_state(home, clean)

    # another region publishes on top of whatever the dead one left behind
    assert publish_region(home, SECOND).published
    rows = assert_every_publication_is_one_state(home, clean)
    newest = central_tables(home)
    crashed_visible = step == "after_publication"  # only a publication row makes a publish visible
    assert {bool(of_region(t, CRASHED).num_rows) for t in newest.values()} == {crashed_visible}
    assert [r["region"] for r in rows][-1] == SECOND

    # the rerun (every region, as `kanda publish` does) finishes the dead publish: its days were still dirty
    rerun = {code: publish_region(home, code) for code in REGIONS}
    assert rerun[CRASHED].published
    assert not rerun[SECOND].published
    assert_every_publication_is_one_state(home, clean)
    after = central_tables(home)
    for name in PUBLISHED:
        assert after[name].equals(clean[name]), name  # byte for byte, as Arrow tables in one row order
    assert all(r.passed or r.severity == "warn" for r in verify(home)), [r.message for r in verify(home)]
