"""Analyst SQL can never write, attach, read or write files, or change settings: on every path, case by case.

Two layers are tested separately, so that neither is assumed: kanda's statement check refuses each case with a
clear message (CLI function, `kanda query`, `POST /api/sql`), and DuckDB itself on the reader (a read-only file,
external access off, configuration locked) refuses the write, file and settings cases even when the check is
bypassed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kanda.central.query import QueryRefused, connect_central, run_query
from kanda.cli import app
from kanda.settings import Settings
from tests.support.spill import killed_while_spilling

LEAK = Path("/tmp/kanda-lockdown-leak")
TOTALS = "select region, sum(net_minor) as net from rollups.creator_daily group by 1 order by 1"

NOT_READ_ONLY = "only read-only queries are allowed"
NOT_A_ROLLUP = "is not a rollup table"
REFUSED_CASES = [
    ("create table rollups.x as select 1", NOT_READ_ONLY),
    ("insert into rollups.creator_daily select * from rollups.creator_daily", NOT_READ_ONLY),
    ("update rollups.creator_daily set net_minor = 0", NOT_READ_ONLY),
    ("delete from rollups.creator_daily", NOT_READ_ONLY),
    ("drop view rollups.creator_daily", NOT_READ_ONLY),
    ("with t as (select 1) insert into rollups.creator_daily select * from t", NOT_READ_ONLY),
    ("with x as (delete from rollups.publications returning *) select count(*) from x", "not DELETE"),
    (
        "with x as (insert into rollups.creator_daily select * from rollups.creator_daily returning *) select 1",
        "INSERT",
    ),
    ("with x as (update rollups.creator_daily set net_minor = 0 returning *) select count(*) from x", "not UPDATE"),
    ("select * from (with x as (delete from rollups.region_daily returning *) select * from x)", "not DELETE"),
    ("select 1 union all (with x as (delete from rollups.creator_daily returning 1) select * from x)", "not DELETE"),
    ("select current_setting('home_directory')", "describes the server"),
    ("select current_setting('temp_directory') as t from rollups.creator_daily", "current_setting"),
    ("select getenv('HOME')", "refused: getenv"),
    ("select * from duckdb_databases()", "table function duckdb_databases"),
    ("select * from duckdb_extensions()", "table function duckdb_extensions"),
    ("select * from pragma_database_list()", "table function pragma_database_list"),
    ("select (select count(*) from duckdb_settings()) as n", "table function duckdb_settings"),
    (f"copy (select 1) to '{LEAK}.csv'", NOT_READ_ONLY),
    (f"copy rollups.creator_daily to '{LEAK}.parquet' (format parquet)", NOT_READ_ONLY),
    (f"export database '{LEAK}'", NOT_READ_ONLY),
    (f"attach '{LEAK}.duckdb' as other", NOT_READ_ONLY),
    ("attach ':memory:' as other", NOT_READ_ONLY),
    ("set threads = 1", NOT_READ_ONLY),
    ("reset memory_limit", NOT_READ_ONLY),
    ("set enable_external_access = true", NOT_READ_ONLY),
    ("pragma threads = 1", NOT_READ_ONLY),
    ("install httpfs", NOT_READ_ONLY),
    ("load httpfs", NOT_READ_ONLY),
    ("call pragma_version()", NOT_READ_ONLY),
    ("checkpoint", NOT_READ_ONLY),
    ("pivot rollups.creator_daily on region using sum(net_minor)", NOT_READ_ONLY),
    ("select 1; select 2", "exactly one statement"),
    ("select * from rollups.creator_daily; drop view rollups.creator_daily", "exactly one statement"),
    ("select * from read_csv('/etc/passwd')", "table function read_csv"),
    ("select * from read_text('/etc/hostname')", "table function read_text"),
    ("select * from glob('/etc/*')", "table function glob"),
    ("select * from read_parquet('/etc/*.parquet')", "table function read_parquet"),
    ("select * from query('select 1')", "table function query"),
    ("select * from duckdb_settings()", "table function duckdb_settings"),
    ("select * from '/etc/passwd'", NOT_A_ROLLUP),
    ("select * from rollups.creator_daily, '/etc/passwd'", NOT_A_ROLLUP),
    ("select * from _kanda_publications", NOT_A_ROLLUP),
    ("select * from information_schema.tables", NOT_A_ROLLUP),
    ("select (select count(*) from read_csv('/etc/passwd')) as n", "table function read_csv"),
    ("explain analyze select * from read_csv('/etc/passwd')", "table function read_csv"),
    ("this is not sql", "could not parse"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED_CASES)
def test_run_query_refuses_with_a_clear_message(published: Settings, sql: str, message: str):
    with pytest.raises(QueryRefused, match=message):
        run_query(published, sql)
    assert not any(LEAK.parent.glob(f"{LEAK.name}*")), "a refused statement left a file behind"


@pytest.mark.parametrize(("sql", "message"), REFUSED_CASES)
def test_the_sql_endpoint_refuses_with_403_and_the_reason(client, sql: str, message: str):
    response = client.post("/api/sql", json={"sql": sql})
    assert response.status_code == 403, response.text
    assert message in response.json()["detail"]


def test_the_cli_refuses_and_exits_1_and_the_rollups_are_unchanged(published: Settings):
    runner = CliRunner()
    before = run_query(published, TOTALS)
    for sql in (
        "drop view rollups.creator_daily",
        f"copy (select 1) to '{LEAK}.csv'",
        "set threads = 1",
        "with x as (delete from rollups.creator_daily returning *) select count(*) from x",
    ):
        result = runner.invoke(app, ["query", sql])
        assert result.exit_code == 1
        assert NOT_READ_ONLY in " ".join(result.output.split())
    result = runner.invoke(app, ["query", "select * from read_csv('/etc/passwd')"])
    assert result.exit_code == 1 and "read_csv" in result.output
    assert run_query(published, TOTALS) == before


# What DuckDB itself refuses on the reader's connection, the statement check bypassed.
ENGINE_REFUSES = [
    f"copy (select 1) to '{LEAK}.csv'",
    f"copy rollups.creator_daily to '{LEAK}.parquet' (format parquet)",
    f"export database '{LEAK}'",
    f"attach '{LEAK}.duckdb' as other",
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv('{secret}')",
    "select * from '{secret}'",
    "select * from read_text('/etc/hostname')",
    "select * from glob('/etc/*')",
    "set threads = 1",
    "set enable_external_access = true",
    "set allowed_directories = ['/']",
    "reset memory_limit",
    "pragma threads = 1",
    "install httpfs",
    "load httpfs",
]


@pytest.mark.parametrize("sql", ENGINE_REFUSES)
def test_duckdb_itself_refuses_files_and_settings_on_the_reader(published: Settings, sql: str, tmp_path: Path):
    secret = tmp_path / "secret.csv"  # a readable file outside the warehouse
    secret.write_text("password\nhunter2\n")
    con = connect_central(published)
    try:
        with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
            con.execute(sql.format(secret=secret)).fetchall()
        # and the reader still works, with its settings as they were
        assert con.execute("select current_setting('enable_external_access')").fetchall() == [(False,)]
        assert con.execute("select count(*) from rollups.creator_daily").fetchall()[0][0] > 0
    finally:
        con.close()
    assert not any(LEAK.parent.glob(f"{LEAK.name}*"))


ENGINE_READ_ONLY = [
    "insert into rollups.creator_daily select * from rollups.creator_daily",
    "update rollups.creator_daily set net_minor = 0",
    "delete from rollups.creator_daily",
    "drop table rollups.creator_daily",
    "create table rollups.x as select 1",
    "create view rollups.v as select 1",
    "alter table rollups.creator_daily rename to gone",
    "with x as (delete from rollups.publications returning *) select count(*) from x",
    "with x as (update rollups.region_daily set rows_loaded = 0 returning *) select count(*) from x",
]


@pytest.mark.parametrize("sql", ENGINE_READ_ONLY)
def test_writes_that_slip_past_the_check_are_refused_by_duckdb(published: Settings, sql: str):
    """The reader is a read-only file: even unchecked, DuckDB refuses the write and nothing changes for anyone."""
    before = run_query(published, TOTALS)
    publications = run_query(published, "select count(*) as n from rollups.publications")
    con = connect_central(published)
    try:
        with pytest.raises(duckdb.Error, match="read-only mode"):
            con.execute(sql).fetchall()
        assert con.execute(TOTALS).fetchall() == [tuple(r.values()) for r in before.to_pylist()]
    finally:
        con.close()
    assert run_query(published, TOTALS) == before
    assert run_query(published, "select count(*) as n from rollups.publications") == publications


@pytest.mark.parametrize(
    "sql",
    [
        "describe rollups.creator_daily",
        "summarize rollups.region_daily",
        "with top as (select creator_id, sum(net_minor) as net from rollups.creator_daily group by 1)"
        " select * from top order by net desc limit 3",
        "select d.region, count(*) from rollups.region_daily d join rollups.creator_daily c using (region, local_date)"
        " group by 1",
        "select * from range(3)",
        "select count(*) from rollups.publications",
        "from rollups.product_daily limit 1",
        "explain select * from rollups.creator_daily",
    ],
)
def test_ordinary_analyst_queries_still_run(published: Settings, sql: str):
    assert run_query(published, sql).num_rows > 0


def test_a_killed_query_s_spill_files_are_removed_by_the_next_reader(published: Settings):
    """A query killed while it spilled (kill -9, the OOM killer) left 1.4-1.8 GB beside the reader file, outside the
    spill cap, and no later query removed them: each killed query took that much more of KANDA_HOME's disk."""
    from kanda.central.query import central_reader

    with central_reader(published) as central:  # the newest publication's reader file, built
        paths = central.con.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall()
    (path,) = {row[0] for row in paths}
    left = killed_while_spilling(Path(path))
    assert left and sum(p.stat().st_size for p in left) > 1_000_000
    assert run_query(published, TOTALS).num_rows > 0
    assert not any(p.exists() for p in left)
