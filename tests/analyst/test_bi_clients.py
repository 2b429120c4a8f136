"""What BI tools do with the snapshot file: open it from a DuckDB 1.x driver, and list tables and columns through
SQLAlchemy, both in kanda's own environment (DuckDB 2) and in a separate one (DuckDB 1.x, an older SQLAlchemy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from filelock import FileLock

import kanda.analyst.bi_dialect  # noqa: F401 (registers `duckdb+kanda://`, as the installed entry point does)
from kanda.analyst.snapshot import connect_snapshot, refresh_snapshot
from kanda.settings import Settings
from warehouse_models import column_docs, published

ROOT = Path(__file__).resolve().parents[2]
TABLES = [*published(), "publications", "snapshot_info"]
#: A BI tool's own environment: DuckDB 1.x (what the CLI 1.5 and the JDBC/ODBC drivers are built on), duckdb-engine,
#: and an SQLAlchemy from before the `pg_collation` change (Superset and most BI tools pin older ones).
CLIENT_PACKAGES = ["duckdb==1.*", "duckdb-engine==0.17.*", "sqlalchemy>=2.0,<2.0.45"]
VENV = Path(os.environ.get("KANDA_TEST_CACHE", Path.home() / ".cache" / "kanda-tests")) / "duckdb1-venv"


@pytest.fixture(scope="session")
def duckdb1_python() -> Path:
    """A Python with DuckDB 1.x, made once and kept between runs (`~/.cache/kanda-tests/duckdb1-venv`).

    CI must run this (it installs from PyPI); without network on a developer machine the tests are skipped."""
    python = VENV / "bin" / "python"
    marker = VENV / "kanda-packages.json"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(VENV.parent / "duckdb1-venv.lock")):
        if marker.exists() and json.loads(marker.read_text()) == CLIENT_PACKAGES and python.exists():
            return python
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *CLIENT_PACKAGES],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            message = f"could not make a DuckDB 1.x environment: {getattr(exc, 'stderr', '') or exc}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        marker.write_text(json.dumps(CLIENT_PACKAGES))
    return python


@pytest.fixture(scope="module")
def snapshot(published: Settings) -> Path:
    return refresh_snapshot(published)


def in_duckdb1(python: Path, script: str, *args: str) -> object:
    """Run `script` with the DuckDB 1.x interpreter; it prints one JSON value."""
    done = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, timeout=120, env={"PATH": os.defpath}
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


OPEN_WITH_DUCKDB1 = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = sys.argv[2].split(",")
out = {"version": duckdb.__version__, "tables": {}}
for table in tables:
    # As text: a BI driver renders values itself, and the plain 1.x wheel needs pytz for TIMESTAMPTZ objects.
    rows = con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM rollups.{table} ORDER BY ALL").fetchall()
    out["tables"][table] = [list(r) for r in rows]
try:
    con.execute("CREATE TABLE rollups.x (a INTEGER)")
    out["write"] = "allowed"
except duckdb.Error as exc:
    out["write"] = type(exc).__name__
print(json.dumps(out))
"""


def test_a_duckdb_1x_client_opens_the_snapshot_and_reads_every_table(
    duckdb1_python: Path, published: Settings, snapshot: Path
):
    seen = in_duckdb1(duckdb1_python, OPEN_WITH_DUCKDB1, str(snapshot), ",".join(TABLES))
    assert seen["version"].startswith("1."), seen["version"]
    ours = snapshot_rows(published, TABLES)
    for table in TABLES:
        assert seen["tables"][table], f"{table} is empty in DuckDB {seen['version']}"
        assert seen["tables"][table] == ours[table], table
    assert seen["write"] != "allowed"


def snapshot_rows(settings: Settings, tables: list[str]) -> dict[str, list[list[str]]]:
    """The same rows through kanda's own DuckDB 2, rendered the same way."""
    con = connect_snapshot(settings)
    try:
        return {
            t: [list(r) for r in con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {t} ORDER BY ALL").fetchall()]
            for t in tables
        }
    finally:
        con.close()


REFLECT = """
import json, sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1])
inspector = sa.inspect(engine)
tables = inspector.get_table_names()
columns = {t: [[c["name"], c["comment"]] for c in inspector.get_columns(t)] for t in tables}
print(json.dumps({"tables": tables, "columns": columns, "sqlalchemy": sa.__version__}))
"""


def expected_columns(table: str) -> list[list[str]]:
    return [[c.name, c.doc] for c in column_docs(table).values()]


#: The connection arguments docs/analysts.md gives BI tools.
LOCKED_DOWN = {"read_only": True, "config": {"enable_external_access": False, "lock_configuration": True}}


def test_sqlalchemy_in_kandas_environment_lists_tables_and_columns_with_their_docs(snapshot: Path):
    """The documented URL: duckdb-engine under kanda's DuckDB 2 and SQLAlchemy, through `duckdb+kanda://`."""
    engine = sa.create_engine(f"duckdb+kanda:///{snapshot}", connect_args=LOCKED_DOWN)
    try:
        inspector = sa.inspect(engine)
        assert sorted(inspector.get_table_names()) == sorted(TABLES)
        for table in published():
            columns = inspector.get_columns(table)
            assert [[c["name"], c["comment"]] for c in columns] == expected_columns(table)
            assert inspector.get_table_comment(table)["text"]
        assert {c["name"] for c in inspector.get_columns("publications")} >= {"publish_id", "published_at"}
        # What ORMs and Superset's dataset import do: reflect whole tables, keys and constraints included.
        reflected = sa.MetaData()
        reflected.reflect(bind=engine)
        assert sorted(reflected.tables) == sorted(TABLES)
        creator_daily = reflected.tables["creator_daily"]
        assert [c.name for c in creator_daily.columns] == [c.name for c in column_docs("creator_daily").values()]
        assert creator_daily.c.net_usd_minor.comment == column_docs("creator_daily")["net_usd_minor"].doc
        assert list(creator_daily.primary_key) == []  # the file declares no keys (the dictionary names them)
        with engine.connect() as con:
            assert con.execute(sa.text("SELECT count(*) FROM creator_daily")).scalar() > 0
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                con.execute(sa.text("CREATE TABLE x (a INTEGER)"))
            with pytest.raises(sa.exc.DBAPIError, match="Permission"):
                con.execute(sa.text("SELECT * FROM read_csv('/etc/passwd')"))
    finally:
        engine.dispose()


def test_sqlalchemy_in_a_bi_tools_environment_lists_tables_and_columns(duckdb1_python: Path, snapshot: Path):
    """A BI tool with its own DuckDB 1.x and an SQLAlchemy before 2.0.45: the plain `duckdb:///` URL works."""
    seen = in_duckdb1(duckdb1_python, REFLECT, f"duckdb:///{snapshot}?access_mode=read_only")
    assert tuple(int(part) for part in seen["sqlalchemy"].split(".")[:3]) < (2, 0, 45)
    assert sorted(seen["tables"]) == sorted(TABLES)
    for table in published():
        assert seen["columns"][table] == expected_columns(table), table


def test_the_dialect_is_registered_for_installed_kanda():
    """`pip install kanda[bi]` makes `duckdb+kanda://` known to any SQLAlchemy in that environment."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["sqlalchemy.dialects"]["duckdb.kanda"] == "kanda.analyst.bi_dialect:Dialect"
    assert any(d.startswith("duckdb-engine") for d in project["optional-dependencies"]["bi"])
