"""Shape (2): region hosts publishing into one PostgreSQL catalog and one S3 bucket; a central host with no stores.

Each "host" is a data folder of its own with the installation's environment (catalog, app DB, warehouse, AWS_*
variables, salt): what a region host or the central host would be given. The region flows run for real; the
central host then answers `kanda query`, the API, the BI snapshot and `kanda verify` from the shared services
alone, and so does a copy of the central host's folder moved elsewhere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import sqlalchemy
from pyiceberg.catalog.sql import SqlCatalog
from typer.testing import CliRunner

from kanda import flow
from kanda.analyst.snapshot import refresh_snapshot
from kanda.central.catalog import open_catalog
from kanda.central.query import DataUnavailable, publications_location, run_query
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.analyst.test_query_startup import NOT_NEEDED, kanda_query, top_level
from tests.deploy.conftest import Installation
from tests.support.analyst import client_for
from tests.support.files import make_files

pytestmark = pytest.mark.postgres
runner = CliRunner()
TOTALS = "SELECT region, count(*) AS days, sum(net_minor) AS net FROM rollups.region_daily GROUP BY 1 ORDER BY 1"


def region_host(installation: Installation, home: Path, code: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """A region host: its own landing folder and store; runs the whole region flow. Returns its true totals."""
    settings = installation.host(home, monkeypatch, KANDA_REGIONS=code)
    make_files(settings, regions=[code], rows=300, days=2)
    run = flow.run_region(settings, code)
    assert run.publish is not None and run.publish.published
    with open_store(settings, code, read_only=True) as con:
        truth = con.execute("SELECT region, count(*), sum(net_minor) FROM region_daily GROUP BY 1").fetchall()[0]
    return tuple(int(v) if not isinstance(v, str) else v for v in truth)


def central_answers(settings: Settings) -> list[tuple]:
    """The totals as the central host's analysts see them: `kanda query --format json`."""
    result = runner.invoke(app, ["query", TOTALS, "--format", "json"])
    assert result.exit_code == 0, result.output
    return [(r["region"], r["days"], r["net"]) for r in json.loads(result.stdout)]


def test_two_region_hosts_publish_into_one_catalog_and_bucket_and_the_central_host_reports_true_totals(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    truth = [
        region_host(installation, tmp_path / "ke-host", "KE", monkeypatch),
        region_host(installation, tmp_path / "ng-host", "NG", monkeypatch),
    ]

    central = installation.host(tmp_path / "central", monkeypatch)
    assert not central.stores_dir.exists() or not any(central.stores_dir.iterdir())
    assert central_answers(central) == truth

    # The API on the central host.
    client = client_for(central, "analyst")
    answer = client.post("/api/sql", json={"sql": TOTALS}).json()
    assert [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in answer["rows"]] == truth

    # The BI snapshot file, written on the central host from the bucket.
    snapshot = refresh_snapshot(central)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert [tuple(r) for r in con.execute(TOTALS).fetchall()] == truth

    # Central verification: it checks what it can and says what it could not; it does not pass by seeing nothing.
    results = {(r.name, r.message.split(":")[0]): r for r in verify(central)}
    for name in ("anchors_present", "rollups_consistent"):
        for code in ("KE", "NG"):
            assert results[(name, code)].passed, results[(name, code)].message
    assert all(r.passed for (name, _), r in results.items() if name in {"publications_complete", "central_data_files"})
    not_checked = next(r for (name, _), r in results.items() if name == "regional_not_checked")
    assert not not_checked.passed and not_checked.severity == "warn"
    assert "KE, NG" in not_checked.message
    cli = runner.invoke(app, ["verify"])
    assert cli.exit_code == 0, cli.output
    assert "not checked on this host" in cli.output and "nothing to verify" not in cli.output

    # Locations: every table lives in the bucket; nothing was written to a local warehouse on any host.
    engine = sqlalchemy.create_engine(installation.catalog_url)
    with engine.connect() as conn:
        locations = [r[0] for r in conn.execute(sqlalchemy.text("SELECT metadata_location FROM iceberg_tables"))]
    engine.dispose()
    assert locations and all(loc.startswith(installation.store.warehouse + "/") for loc in locations)
    assert any(key.endswith(".parquet") for key in installation.store.object_keys())
    for host in ("ke-host", "ng-host", "central"):
        assert not (tmp_path / host / "warehouse").exists()

    # The same central host, its folder moved (as a restore from backup would put it): the same answers.
    moved = tmp_path / "elsewhere" / "central"
    shutil.copytree(tmp_path / "central", moved, symlinks=True)
    shutil.rmtree(tmp_path / "central")
    installation.host(moved, monkeypatch)
    assert central_answers(central) == truth
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_a_data_file_lost_from_the_bucket_is_named_not_answered_around(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Rollups on object storage are streamed into the publication's reader file; a file gone from the bucket stops
    that build with the table's name instead of a partial answer or a traceback."""
    region_host(installation, tmp_path / "ke-host", "KE", monkeypatch)
    central = installation.host(tmp_path / "central", monkeypatch)
    store = installation.store
    lost = next(k for k in store.object_keys() if "/creator_daily/data/" in k and k.endswith(".parquet"))
    store.delete(lost)

    result = runner.invoke(app, ["query", TOTALS])
    assert result.exit_code == 1 and "rollups.creator_daily cannot be read" in result.output, result.output
    with pytest.raises(DataUnavailable, match=r"rollups\.creator_daily"):
        run_query(central, TOTALS)


def test_an_object_store_out_of_reach_is_named_as_such_not_as_a_lost_file(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An endpoint nobody listens on was reported as a data file missing on the server, sending an operator to
    restore files that are fine; the message now points at the store and its settings."""
    region_host(installation, tmp_path / "ke-host", "KE", monkeypatch)
    from tests.deploy.conftest import free_port

    installation.host(tmp_path / "central", monkeypatch, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["query", TOTALS])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())  # as one line: the console wraps it at its width
    assert "the object store cannot be reached or refused access" in said, said
    assert "AWS_ENDPOINT_URL" in said and "restore" not in said
    # `kanda verify` as the console script runs it: one line, not a traceback of pyarrow's S3 client
    import os
    import subprocess
    import sys

    main = "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"
    done = subprocess.run(
        [sys.executable, "-c", main, "verify"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert "the object store cannot be reached or refused access" in line and "AWS_ENDPOINT_URL" in line


def test_a_reader_that_is_not_kanda_reads_the_latest_publication_as_kanda_query_does(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """pyiceberg given only the catalog URI and the storage settings, as Trino or Spark would be configured."""
    region_host(installation, tmp_path / "ke-host", "KE", monkeypatch)
    installation.host(tmp_path / "central", monkeypatch)
    store = installation.store
    catalog = SqlCatalog(
        "kanda",
        uri=installation.catalog_url,
        **{
            "s3.endpoint": store.endpoint,
            "s3.access-key-id": "test",
            "s3.secret-access-key": "test",
            "s3.region": "us-east-1",
        },
    )
    publications = catalog.load_table("rollups.publications").scan().to_arrow().to_pylist()
    latest = max(publications, key=lambda r: (r["published_at"], r["publish_id"]))
    table = catalog.load_table("rollups.creator_daily")
    theirs = table.scan(snapshot_id=latest["creator_daily_snapshot"]).to_arrow()
    ours = runner.invoke(app, ["query", "SELECT * FROM rollups.creator_daily", "--format", "json"])
    assert ours.exit_code == 0, ours.output
    key = ("local_date", "creator_id", "currency")

    def rows(items: list[dict]) -> list[tuple]:
        return sorted((str(r["local_date"]), r["creator_id"], r["currency"], r["net_minor"]) for r in items)

    assert rows(json.loads(ours.stdout)) == rows(theirs.to_pylist())
    assert len(theirs) > 0 and all(k in theirs.column_names for k in key)


def test_the_catalog_tables_have_icebergs_jdbc_catalog_layout(installation: Installation, monkeypatch, tmp_path):
    """Iceberg's JdbcCatalog (which Trino's and Spark's JDBC catalogs use) reads these two tables, V1 schema."""
    settings = installation.host(tmp_path / "central", monkeypatch)
    open_catalog(settings)
    engine = sqlalchemy.create_engine(installation.catalog_url)
    with engine.connect() as conn:
        columns = {
            table: [
                r[0]
                for r in conn.execute(
                    sqlalchemy.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = :t ORDER BY 1"
                    ),
                    {"t": table},
                )
            ]
            for table in ("iceberg_tables", "iceberg_namespace_properties")
        }
        keys = {
            table: sorted(
                r[0]
                for r in conn.execute(
                    sqlalchemy.text(
                        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary"
                    ),
                    {"t": table},
                )
            )
            for table in columns
        }
    engine.dispose()
    assert columns["iceberg_tables"] == sorted(
        [
            "catalog_name",
            "table_namespace",
            "table_name",
            "metadata_location",
            "previous_metadata_location",
            "iceberg_type",
        ]
    )
    assert columns["iceberg_namespace_properties"] == sorted(
        ["catalog_name", "namespace", "property_key", "property_value"]
    )
    assert keys["iceberg_tables"] == ["catalog_name", "table_name", "table_namespace"]
    assert keys["iceberg_namespace_properties"] == ["catalog_name", "namespace", "property_key"]


def test_a_one_shot_query_on_a_server_catalog_starts_without_pyiceberg(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The newest publication is found by one row of the PostgreSQL catalog, as of a SQLite one: once its reader file
    is built, `kanda query` imports neither pyiceberg nor pandas, and still sees the next publication. The API keys
    its remembered answers by the same row."""
    truth = [region_host(installation, tmp_path / "ke-host", "KE", monkeypatch)]
    central = installation.host(tmp_path / "central", monkeypatch)
    run_query(central, "select 1")  # the newest publication's reader file is built, as the first query does
    engine = sqlalchemy.create_engine(installation.catalog_url)
    with engine.connect() as conn:
        (current,) = conn.execute(
            sqlalchemy.text("SELECT metadata_location FROM iceberg_tables WHERE table_name = 'publications'")
        ).fetchone()
    engine.dispose()
    assert publications_location(central) == current

    done, modules = kanda_query(central, TOTALS, "--format", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not top_level(modules) & set(NOT_NEEDED), sorted(top_level(modules) & set(NOT_NEEDED))
    assert [(r["region"], r["days"], r["net"]) for r in json.loads(done.stdout)] == truth

    truth.append(region_host(installation, tmp_path / "ng-host", "NG", monkeypatch))
    central = installation.host(tmp_path / "central", monkeypatch)
    assert publications_location(central) != current
    done, _ = kanda_query(central, TOTALS, "--format", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(r["region"], r["days"], r["net"]) for r in json.loads(done.stdout)] == sorted(truth)
