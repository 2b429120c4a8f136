"""Issue "Trust": no analyst can change what other analysts see, learn the server's paths, plant a spreadsheet
formula in a CSV answer, or get a 500 for an answer that is too large or a data file that is gone.

The CTE write that used to pass (`with x as (delete from rollups.publications returning *) ...`) is refused on every
path: the CLI (exit 1 and the reason), the API (403 and the reason) and, with the statement check bypassed, by DuckDB
itself on the API's shared reader, on `kanda query`'s reader and on the BI snapshot file; nothing changes for the
next reader on any of them.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kanda.analyst.api import Limits
from kanda.analyst.reader_pool import shared_reader
from kanda.analyst.snapshot import connect_snapshot, refresh_snapshot
from kanda.central.catalog import latest_publication, open_catalog, published_files
from kanda.central.query import DataUnavailable, connect_central, publication_history, run_query
from kanda.central.reader_files import reader_path
from kanda.cli import app
from kanda.settings import Settings
from tests.support.analyst import client_for, publish_regions

CTE_DELETE = "with x as (delete from rollups.publications returning *) select count(*) as n from x"
CTE_WRITES = [
    CTE_DELETE,
    "with x as (insert into rollups.creator_daily select * from rollups.creator_daily returning *) select 1",
    "with x as (update rollups.creator_daily set net_minor = 0 returning *) select count(*) from x",
]
PUBLICATIONS = "select count(*) as n from rollups.publications"
TOTALS = "select region, sum(net_minor) as net from rollups.creator_daily group by 1 order by 1"


def fresh_client(settings: Settings, name: str, limits: Limits | None = None):
    """An API client with a key of its own (key names are unique per installation)."""
    return client_for(settings, f"{name}-{uuid.uuid4().hex[:6]}", limits)


def state(settings: Settings) -> tuple[list[dict], list[dict]]:
    """What every reader would see: the publication history's size and the totals."""
    return run_query(settings, PUBLICATIONS).to_pylist(), run_query(settings, TOTALS).to_pylist()


@pytest.mark.parametrize("sql", CTE_WRITES)
def test_the_api_refuses_cte_writes_and_no_other_client_sees_a_change(published: Settings, sql: str):
    before = state(published)
    alice, bob = fresh_client(published, "alice-cte"), fresh_client(published, "bob-cte")
    response = alice.post("/api/sql", json={"sql": sql})
    assert response.status_code == 403, response.text
    assert "only read-only queries are allowed" in response.json()["detail"]
    assert bob.post("/api/sql", json={"sql": PUBLICATIONS}).json()["rows"] == before[0]
    assert bob.get("/api/publications").json()["total"] == before[0][0]["n"]
    assert state(published) == before


@pytest.mark.parametrize("sql", CTE_WRITES)
def test_the_cli_refuses_cte_writes_with_exit_1_and_the_reason(published: Settings, sql: str):
    before = state(published)
    result = CliRunner().invoke(app, ["query", sql])
    assert result.exit_code == 1
    assert "only read-only queries are allowed" in " ".join(result.output.split())
    assert state(published) == before


@pytest.mark.parametrize("sql", [*CTE_WRITES, "delete from rollups.publications", "create table t as select 1"])
def test_the_shared_api_reader_refuses_writes_itself_when_the_check_is_bypassed(published: Settings, sql: str):
    """The API's cursors share one database per publication: it is a read-only file, so DuckDB refuses the write."""
    before = state(published)
    with shared_reader(published) as central, pytest.raises(duckdb.Error, match="read-only mode"):
        central.con.execute(sql).fetchall()
    with shared_reader(published) as later:  # the next request, on the same cached database
        assert later.con.execute(PUBLICATIONS).fetchall() == [(before[0][0]["n"],)]
    assert (
        fresh_client(published, "after-bypass").post("/api/sql", json={"sql": PUBLICATIONS}).json()["rows"] == before[0]
    )
    assert state(published) == before


def test_what_a_request_can_create_at_all_dies_with_its_cursor(published: Settings):
    """Temporary objects are all a read-only database allows; they belong to one cursor, never to the next request."""
    with shared_reader(published) as central:
        central.con.execute("create temp table creator_daily as select 'XX' as region, 1 as net_minor")
        central.con.execute("create temp macro net() as 0")
    with shared_reader(published) as later:
        assert {r[0] for r in later.con.execute("select region from creator_daily").fetchall()} != {"XX"}
        with pytest.raises(duckdb.CatalogException):
            later.con.execute("select net()")


def test_the_bi_snapshot_refuses_cte_writes_however_it_is_opened(published: Settings):
    path = refresh_snapshot(published)
    counts = []
    for con in (connect_snapshot(published), duckdb.connect(str(path), read_only=True)):
        try:
            counts.append(con.execute(PUBLICATIONS).fetchall())
            for sql in CTE_WRITES:
                with pytest.raises(duckdb.Error, match="read-only mode"):
                    con.execute(sql).fetchall()
            assert con.execute(PUBLICATIONS).fetchall() == counts[0]
        finally:
            con.close()
    assert counts[0] == [(state(published)[0][0]["n"],)]


@pytest.mark.parametrize(
    "sql",
    [
        "select current_setting('temp_directory') as t",
        "select current_setting('home_directory') as t",
        "select getenv('HOME') as t",
        "select * from duckdb_settings()",
        "select path from duckdb_databases()",
        "select * from pragma_database_size()",
        # a WITH name that is also a system view: outside the WITH's scope the name reads the system view
        "with pg_settings as (select * from pg_settings) select name, setting from pg_settings",
        "select * from (with pg_settings as (select 1) select 1) x, pg_settings",
        "select * from (with duckdb_databases as (select 1) select 1) x, duckdb_databases",
        "select * from (with pragma_database_list as (select 1) select 1) x, pragma_database_list",
    ],
)
def test_server_paths_and_settings_are_not_shown(published: Settings, client, sql: str):
    response = client.post("/api/sql", json={"sql": sql})
    assert response.status_code == 403, response.text
    assert str(published.home) not in response.text
    result = CliRunner().invoke(app, ["query", sql])
    assert result.exit_code == 1 and "refused" in result.output
    assert str(published.home) not in result.output


def test_the_readers_database_is_the_read_only_file_of_its_publication(published: Settings):
    """Where the answers come from: one file per publication under KANDA_HOME, opened read-only, locked down."""
    con = connect_central(published)
    try:
        newest = publication_history(published)[-1]["publish_id"]
        (path, read_only), *_ = con.execute(
            "select path, readonly from duckdb_databases() where not internal"
        ).fetchall()
        assert (Path(path), read_only) == (reader_path(published, newest), True)
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("set access_mode = 'read_write'")
    finally:
        con.close()


def test_csv_answers_neutralise_cells_a_spreadsheet_would_run(client, published: Settings):
    sql = (
        "select '=HYPERLINK(\"http://x\")' as eq, '+1+1' as plus, '-2+3' as minus, '@SUM(A1)' as at,"
        " 'a=b' as inner_eq, -3 as negative, 1.5 as number, null::varchar as missing"
    )
    expected = {
        "eq": '\'=HYPERLINK("http://x")',
        "plus": "'+1+1",
        "minus": "'-2+3",
        "at": "'@SUM(A1)",
        "inner_eq": "a=b",
        "negative": "-3",
        "number": "1.5",
        "missing": "",
    }
    response = client.post("/api/sql", params={"format": "csv"}, json={"sql": sql})
    assert response.status_code == 200, response.text
    assert next(csv.DictReader(io.StringIO(response.text))) == expected
    assert client.post("/api/sql", json={"sql": sql}).json()["rows"][0]["eq"] == '=HYPERLINK("http://x")'  # JSON as is
    result = CliRunner().invoke(app, ["query", sql, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert next(csv.DictReader(io.StringIO(result.stdout))) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "select region, list(distinct creator_id) as creators from rollups.creator_daily group by 1",
        "select 'infinity'::timestamptz as t",
        "select interval 3 day as i",
    ],
)
def test_rows_csv_cannot_hold_are_one_message_on_the_command_line(published: Settings, sql: str):
    """As the API's 406: nested values, and values polars cannot print, are a message and exit 1, not a traceback."""
    result = CliRunner().invoke(app, ["query", sql, "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "these rows cannot be written as CSV" in result.output and "use --format json" in result.output


def test_an_answer_over_the_size_limit_is_413_with_the_limit(published: Settings):
    small = client_for(
        published, "small-answers", Limits(sql_max_rows=10_000, sql_timeout_seconds=30, sql_max_bytes=10**6)
    )
    response = small.post("/api/sql", json={"sql": "select repeat('x', 100000) as s from range(50)"})
    assert response.status_code == 413, response.text
    assert "1,000,000 bytes" in response.json()["detail"]
    assert small.post("/api/sql", json={"sql": TOTALS}).status_code == 200


@pytest.mark.slow  # builds 2.2 GB of text to overflow an Arrow batch for real
def test_an_answer_too_large_for_arrow_is_413_not_500(published: Settings):
    roomy = fresh_client(published, "roomy", Limits(sql_max_rows=10, sql_timeout_seconds=120, sql_max_bytes=10**12))
    response = roomy.post("/api/sql", json={"sql": "select repeat('x', 1100000000) as s from range(2)"})
    assert response.status_code == 413, response.text
    assert "2,147,483,647 bytes" in response.json()["detail"]


def test_a_lost_data_file_is_503_naming_the_table(settings: Settings):
    publish_regions(settings, ["KE"], rows=120, days=1)
    first = latest_publication(open_catalog(settings))
    assert run_query(settings, TOTALS).num_rows == 1  # builds the first publication's read-only file
    publish_regions(settings, ["NG"], rows=120, days=1, seed=8)
    catalog = open_catalog(settings)
    files = published_files(catalog, latest_publication(catalog), "creator_daily")
    lost = next(f for f in files.paths if "region=KE" in f)
    Path(lost.removeprefix("file://")).unlink()

    response = fresh_client(settings, "lost-file").post(
        "/api/sql", json={"sql": "select count(*) from rollups.region_daily"}
    )
    assert response.status_code == 503, response.text
    assert "rollups.creator_daily" in response.json()["detail"]
    assert str(settings.home) not in response.text
    result = CliRunner().invoke(app, ["query", TOTALS])
    assert result.exit_code == 1 and "rollups.creator_daily" in result.output
    with pytest.raises(DataUnavailable, match=r"rollups\.creator_daily"):
        run_query(settings, TOTALS)
    # A publication whose file was built before the loss still answers: its file holds its rows.
    assert run_query(settings, TOTALS, as_of=first.publish_id).num_rows == 1


def test_a_query_too_deep_to_check_is_refused_with_the_reason_not_a_500(client):
    response = client.post("/api/sql", json={"sql": "select " + "+".join(["1"] * 600) + " as n"})
    assert response.status_code == 403, response.text
    assert "nested too deeply" in response.json()["detail"]


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(published: Settings):
    """Without a key too: nobody can make a worker hold an arbitrary upload in memory."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from kanda.analyst.api import install
    from kanda.analyst.api_fast import MAX_REQUEST_BODY

    app = FastAPI()
    install(app, published)  # the routes behind their middleware, as `kanda serve` mounts them
    client = TestClient(app)
    statement = "select 1 as n /* " + "x" * MAX_REQUEST_BODY + " */"
    response = client.post("/api/sql", json={"sql": statement})
    assert response.status_code == 413 and "request body over" in response.json()["detail"]

    def chunked():  # no Content-Length: refused as the body grows past the limit
        for _ in range(MAX_REQUEST_BODY // 65536 + 2):
            yield b" " * 65536

    response = client.post("/api/sql", content=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    # a statement of ordinary size still goes through to the key check
    assert client.post("/api/sql", json={"sql": "select 1 as n"}).status_code == 401


@pytest.mark.parametrize(
    ("sql", "fmt", "status"),
    [
        ("select 'infinity'::timestamptz as t", "json", 200),
        ("select 'infinity'::date as d", "json", 200),
        ("select {'a': 'nan'::double} as s", "json", 200),
        ("select ['inf'::double] as l", "json", 200),
        ("select interval 1 day as i", "parquet", 406),
    ],
)
def test_values_json_or_parquet_cannot_hold_are_an_answer_or_406_never_a_500(client, sql: str, fmt: str, status: int):
    response = client.post(f"/api/sql?format={fmt}", json={"sql": sql})
    assert response.status_code == status, response.text
    if status == 200:
        assert "NaN" not in response.text and "Infinity" not in response.text  # JSON has no such numbers


_CHILDREN: list = []


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    """A `kanda query` child of a failed test (an endless statement) must not run on, burning the CPU."""
    yield
    while _CHILDREN:
        child = _CHILDREN.pop()
        if child.poll() is None:
            child.kill()
            child.wait()


def _kanda_query(published: Settings, sql: str, **env: str):
    import os
    import subprocess
    import sys

    code = "import sys; from kanda.cli import main; sys.argv = ['kanda', 'query', sys.argv[1]]; main()"
    environment = {**os.environ, "KANDA_HOME": str(published.home), **env}
    child = subprocess.Popen(
        [sys.executable, "-c", code, sql], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _CHILDREN.append(child)
    return child


ENDLESS = "select count(*) as n from range(1000000000000) t(i) where i % 7 = 3"


def test_kanda_query_stops_a_statement_at_its_time_limit(published: Settings):
    child = _kanda_query(published, ENDLESS, KANDA_QUERY_TIMEOUT="1")
    _, err = child.communicate(timeout=120)
    assert child.returncode == 1
    assert "time limit of 1 s" in err and "Traceback" not in err


def test_ctrl_c_stops_kanda_query(published: Settings):
    import signal
    import time

    child = _kanda_query(published, ENDLESS, KANDA_QUERY_TIMEOUT="0")
    time.sleep(3)  # let it reach the statement; not a timing assertion: the statement would run for hours
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "stopped (Ctrl-C)" in err and "Traceback" not in err


def test_a_statement_that_would_spill_past_the_limit_is_stopped_with_the_reason(published: Settings):
    sql = "select count(*) as n from (select distinct repeat('x', 200) || i as s from range(20000000) t(i))"
    child = _kanda_query(published, sql, KANDA_QUERY_SPILL="20MB", KANDA_DUCKDB_MEMORY="64MB")
    out, err = child.communicate(timeout=300)
    assert child.returncode == 1, out
    assert "KANDA_QUERY_SPILL" in err and "Traceback" not in err


def test_a_statement_that_folds_a_huge_constant_fails_at_the_memory_cap_not_after_minutes(published: Settings):
    """DuckDB folds `range(300000000)` while planning, outside its memory limit and its time limit: 96 s and 15 GB
    in one process. Under the analyst address-space cap the allocation fails at once, for that statement alone."""
    child = _kanda_query(published, "select len(range(300000000)) as n", KANDA_ANALYST_MEMORY="3GiB")
    _, err = child.communicate(timeout=120)
    assert child.returncode == 1 and "KANDA_ANALYST_MEMORY" in err and "Traceback" not in err
    fine = _kanda_query(published, "select count(*) as n from rollups.creator_daily")  # the default cap
    _, err = fine.communicate(timeout=120)
    assert fine.returncode == 0, err
