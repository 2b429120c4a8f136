"""The BI snapshot file: refreshed after every publish, equal to `kanda query`, swapped atomically, read-only."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import duckdb
import pytest

from kanda.analyst.snapshot import connect_snapshot, refresh_snapshot, snapshot_info
from kanda.central.catalog import latest_publication, open_catalog
from kanda.central.publish import publish_region
from kanda.central.query import NothingPublished, run_query
from kanda.flow import refresh_readers
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings, load_settings
from tests.support.files import START, make_files

TABLES = ("creator_daily", "product_daily", "region_daily", "publications")
TOTALS = "SELECT region, sum(net_minor) AS net, sum(orders) AS orders FROM rollups.creator_daily GROUP BY 1 ORDER BY 1"


def publish(settings: Settings, regions: list[str], **files: object) -> None:
    """Ingest and publish each region, then refresh the readers, as the region flow does."""
    make_files(settings, regions=regions, **files)
    for code in regions:
        ingest_landing(settings, code)
        publish_region(settings, code)
        refresh_readers(settings)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One published installation for the tests that only read it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(tmp_path_factory.mktemp("shared") / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        current = load_settings()
        current.ensure_dirs()
        publish(current, ["KE"], rows=200, days=1)
        yield current


def from_snapshot(settings: Settings, sql: str) -> list[tuple]:
    con = connect_snapshot(settings)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_publish_leaves_a_read_only_snapshot_equal_to_kanda_query(settings: Settings):
    publish(settings, ["EG", "KE"], rows=400, days=3)
    path = settings.snapshot_path
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind
    newest = latest_publication(open_catalog(settings))
    info = snapshot_info(path)
    assert (info.publish_id, info.published_at) == (newest.publish_id, newest.published_at)
    for table in TABLES:
        sql = f"SELECT * FROM rollups.{table} ORDER BY ALL"
        central = [tuple(row.values()) for row in run_query(settings, sql).to_pylist()]
        assert from_snapshot(settings, sql) == central, table
    assert {r[0] for r in from_snapshot(settings, TOTALS)} == {"EG", "KE"}


def test_a_bi_tool_can_open_the_file_by_path_read_only(settings: Settings):
    """What `duckdb:///...rollups.duckdb` or a DuckDB path in a BI tool does: the same names as `kanda query`."""
    publish(settings, ["NG"], rows=300, days=2)
    with duckdb.connect(str(settings.snapshot_path), read_only=True) as con:
        assert con.execute(TOTALS).fetchall() == [tuple(r.values()) for r in run_query(settings, TOTALS).to_pylist()]
        assert con.execute("SELECT count(*) FROM creator_daily").fetchall()[0][0] > 0
        with pytest.raises(duckdb.Error, match="read-only mode"):
            con.execute("DELETE FROM rollups.creator_daily")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO rollups.creator_daily SELECT * FROM rollups.creator_daily", "read-only mode"),
        ("CREATE TABLE rollups.leak AS SELECT 1", "read-only mode"),
        ("DROP TABLE rollups.region_daily", "read-only mode"),
        ("COPY rollups.creator_daily TO '/tmp/kanda-snapshot-leak.csv'", "file system operations are disabled"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("ATTACH '/tmp/kanda-snapshot-other.duckdb' AS other", "file system operations are disabled"),
        ("SET enable_external_access = true", "configuration has been locked"),
        ("SET memory_limit = '1GB'", "configuration has been locked"),
    ],
)
def test_snapshot_connections_refuse_writes_files_attach_and_settings(shared: Settings, sql: str, message: str):
    con = connect_snapshot(shared)
    try:
        with pytest.raises(duckdb.Error, match=message):
            con.execute(sql)
        assert con.execute("SELECT count(*) FROM rollups.region_daily").fetchall()[0][0] > 0  # still usable
    finally:
        con.close()
    assert not os.path.exists("/tmp/kanda-snapshot-leak.csv")


def test_a_reader_keeps_its_snapshot_while_a_newer_publish_replaces_the_file(settings: Settings):
    publish(settings, ["EG"], rows=400, days=2)
    old_info = snapshot_info(settings.snapshot_path)
    held = duckdb.connect(str(settings.snapshot_path), read_only=True)  # a BI session left open
    try:
        old_totals = held.execute(TOTALS).fetchall()
        inode = settings.snapshot_path.stat().st_ino

        publish(settings, ["EG", "TZ"], rows=300, days=2, seed=11, start=START + dt.timedelta(days=10))

        assert settings.snapshot_path.stat().st_ino != inode  # replaced, not rewritten in place
        assert held.execute(TOTALS).fetchall() == old_totals  # the open session still reads one whole publication
        assert held.execute("SELECT publish_id FROM snapshot_info").fetchall() == [(old_info.publish_id,)]
    finally:
        held.close()
    new_info = snapshot_info(settings.snapshot_path)
    assert new_info.order > old_info.order
    assert new_info.publish_id == latest_publication(open_catalog(settings)).publish_id
    assert from_snapshot(settings, TOTALS) == [tuple(r.values()) for r in run_query(settings, TOTALS).to_pylist()]
    assert {r[0] for r in from_snapshot(settings, TOTALS)} == {"EG", "TZ"}


def kanda_publish(region: str) -> subprocess.Popen[str]:
    code = "import sys; from kanda.cli import app; sys.argv = ['kanda', *sys.argv[1:]]; app()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "publish", "-r", region],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_publishes_refresh_the_snapshot_forwards_only(settings: Settings):
    """Three regions publish at once in three processes, each refreshing the snapshot; a reader polls the file."""
    regions = ["EG", "KE", "NG"]
    make_files(settings, regions=regions, rows=300, days=2)
    for code in regions:
        ingest_landing(settings, code)
    publish_region(settings, "EG")
    refresh_readers(settings)
    make_files(settings, regions=["EG"], rows=100, days=1, seed=5, start=START + dt.timedelta(days=7))
    ingest_landing(settings, "EG")

    children = [kanda_publish(code) for code in regions]
    seen: list[tuple] = []  # (order, publish_id, totals) as a reader saw them
    while any(child.poll() is None for child in children):
        con = connect_snapshot(settings)
        try:
            (publish_id, published_at), *_ = con.execute(
                "SELECT publish_id, published_at FROM snapshot_info"
            ).fetchall()
            seen.append(((published_at, publish_id), con.execute(TOTALS).fetchall()))
        finally:
            con.close()
        time.sleep(0.05)
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err

    orders = [order for order, _ in seen]
    assert orders == sorted(orders), "a refresh replaced a snapshot with an older publication"
    catalog = open_catalog(settings)
    newest = latest_publication(catalog)
    assert snapshot_info(settings.snapshot_path).publish_id == newest.publish_id
    # every state a reader saw is exactly one complete publication
    for (_, publish_id), totals in {order: totals for order, totals in seen}.items():
        expected = run_query(settings, TOTALS, as_of=publish_id).to_pylist()
        assert totals == [tuple(r.values()) for r in expected], publish_id
    assert len(catalog.load_table("rollups.publications").scan().to_arrow()) == 4


def test_a_failed_refresh_does_not_undo_the_publish_and_the_next_publish_repairs_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    blocker = settings.snapshot_path.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the snapshot folder cannot be created
    make_files(settings, regions=["GH"], rows=300, days=2)
    ingest_landing(settings, "GH")
    with caplog.at_level(logging.WARNING, logger="kanda.analyst.snapshot"):
        result = publish_region(settings, "GH")
        why = refresh_readers(settings)  # the flow's step after a publish
    assert result.published and why is not None
    assert "BI snapshot" in caplog.text and "not refreshed" in caplog.text
    assert run_query(settings, TOTALS).num_rows == 1  # the publication is visible all the same
    # `kanda publish` says so and exits 1 (it exited 0: BI tools went on reading the older publication unseen)
    from typer.testing import CliRunner

    from kanda.cli import app

    make_files(settings, regions=["GH"], rows=50, days=1, seed=3, start=START + dt.timedelta(days=5))
    ingest_landing(settings, "GH")
    published = CliRunner().invoke(app, ["publish"])
    assert published.exit_code == 1 and "GH: published" in published.output, published.output
    assert "was not refreshed" in published.output and "still holds an older publication" in published.output
    newest = latest_publication(open_catalog(settings)).publish_id

    blocker.unlink()
    blocker.mkdir()
    (blocker / f".{settings.snapshot_path.name}.999.dead.tmp").write_bytes(b"half a file")  # a crashed refresh
    assert publish_region(settings, "GH").published is False  # nothing new to publish ...
    refresh_readers(settings)
    assert snapshot_info(settings.snapshot_path).publish_id == newest  # ... but the snapshot caught up
    assert [p.name for p in blocker.iterdir()] == [settings.snapshot_path.name]  # and the crash's leftovers are gone


def test_nothing_published_means_no_snapshot(settings: Settings):
    with pytest.raises(NothingPublished):
        refresh_snapshot(settings)
    with pytest.raises(NothingPublished, match="no BI snapshot"):
        connect_snapshot(settings)
    assert snapshot_info(settings.snapshot_path) is None


def test_a_host_without_stores_gets_its_snapshot_from_kanda_publish(
    shared: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """The central host of a deployment holds no store: `kanda publish` there ran no region, so its BI snapshot was
    never made, although the docs put the file on that host. It now brings its readers up to the newest publication."""
    from typer.testing import CliRunner

    from kanda.cli import app

    monkeypatch.setenv("KANDA_HOME", str(tmp_path / "central"))
    monkeypatch.setenv("KANDA_CATALOG_URL", shared.catalog_url)
    monkeypatch.setenv("KANDA_WAREHOUSE", shared.warehouse_uri)
    central = load_settings()
    assert not central.snapshot_path.exists()
    done = CliRunner().invoke(app, ["publish"])
    assert done.exit_code == 0, done.output
    assert snapshot_info(central.snapshot_path).publish_id == latest_publication(open_catalog(shared)).publish_id
    assert from_snapshot(central, TOTALS) == from_snapshot(shared, TOTALS)
    # refreshing is all this command does on such a host: when it cannot, the command fails, naming why
    monkeypatch.setenv("KANDA_WAREHOUSE", str(tmp_path / "elsewhere"))
    (tmp_path / "central" / "bi" / "rollups.duckdb").chmod(0o644)
    (tmp_path / "central" / "bi" / "rollups.duckdb").unlink()
    failed = CliRunner().invoke(app, ["publish"])
    assert failed.exit_code == 1 and "was not refreshed" in failed.output, failed.output
