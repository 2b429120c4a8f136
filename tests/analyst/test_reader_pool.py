"""The API's shared readers: a cursor of a prepared, cached publication database is as locked down as a private
reader, shows times in UTC, reads exactly its publication, and a time limit stops only its own request."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from kanda.analyst import reader_pool
from kanda.analyst.api import Limits
from kanda.analyst.reader_pool import shared_reader
from kanda.central.query import publication_history, run_query
from kanda.settings import Settings
from tests.support.analyst import client_for

TOTALS = "select region, sum(net_minor) as net from rollups.creator_daily group by 1 order by 1"
ENGINE_REFUSES = [
    "set threads = 1",
    "set TimeZone = 'Asia/Tokyo'",
    "set enable_external_access = true",
    "attach '/tmp/kanda-pool-leak.duckdb' as other",
    "copy (select 1) to '/tmp/kanda-pool-leak.csv'",
    "select * from read_csv('/etc/passwd')",
]


@pytest.mark.parametrize("sql", ENGINE_REFUSES)
def test_a_cursor_of_a_cached_database_refuses_settings_and_files(published: Settings, sql: str):
    with shared_reader(published) as first:  # builds the database (or takes it from the pool)
        first.con.execute("select 1").fetchall()
    with shared_reader(published) as central:  # a later request: a cursor of the cached database
        with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
            central.con.execute(sql).fetchall()
        assert central.con.execute("select current_setting('enable_external_access')").fetchall() == [(False,)]
        assert central.con.execute("select count(*) from rollups.creator_daily").fetchall()[0][0] > 0


def test_cursors_show_times_in_utc_whatever_the_machine_zone(published: Settings, monkeypatch: pytest.MonkeyPatch):
    reader_pool.clear()
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        with shared_reader(published) as central:
            zone, shown = central.con.execute(
                "select current_setting('TimeZone'), TIMESTAMPTZ '2026-11-23 20:00:00+03'::VARCHAR"
            ).fetchall()[0]
            published_at = central.con.execute("select max(published_at)::VARCHAR from rollups.publications")
            assert published_at.fetchall()[0][0].endswith("+00")
    finally:
        monkeypatch.undo()
        time.tzset()
        reader_pool.clear()
    assert (zone, shown) == ("UTC", "2026-11-23 17:00:00+00")


def test_each_publication_is_read_whole_even_when_its_database_leaves_the_pool(
    published: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(reader_pool, "POOL_SIZE", 1)
    history = publication_history(published)
    first, newest = history[0]["publish_id"], history[-1]["publish_id"]
    with shared_reader(published, as_of=first) as old:
        for row in history[1:]:  # other publications push the first one's database out of the pool
            with shared_reader(published, as_of=row["publish_id"]) as other:
                assert other.publication.publish_id == row["publish_id"]
        # still readable by the request that holds it, and still exactly the first publication
        regions = old.con.execute("select distinct region from rollups.creator_daily").fetchall()
        assert regions == [(history[0]["region"],)]
        assert old.con.execute("select count(*) from rollups.publications").fetchall() == [(1,)]
    with shared_reader(published) as central:
        assert central.publication.publish_id == newest
        assert central.con.execute(TOTALS).fetchall() == [
            tuple(r.values()) for r in run_query(published, TOTALS).to_pylist()
        ]


def test_a_time_limit_stops_only_its_own_request(published: Settings):
    """Another analyst's requests are answered while one statement runs to its time limit (one key's own wait for
    it: `tests/analyst/test_sql_deadline.py`)."""
    limited = client_for(published, "pool-hurried", Limits(sql_max_rows=100, sql_timeout_seconds=1.5))
    other = client_for(published, "pool-other", Limits(sql_max_rows=100, sql_timeout_seconds=1.5))
    slow = "select count(*) from range(1000000000) a, range(1000000) b where a.range + b.range = -1"
    answers: dict[str, object] = {}
    finished = threading.Event()

    def slow_request() -> None:
        answers["slow"] = limited.post("/api/sql", json={"sql": slow})
        finished.set()

    thread = threading.Thread(target=slow_request, daemon=True)
    thread.start()
    during: list[int] = []
    while not finished.is_set():  # requests on the same publication while the slow one runs
        response = other.post("/api/sql", json={"sql": TOTALS})
        if not finished.is_set():
            during.append(response.status_code)
        assert response.status_code == 200, response.text
    thread.join(30)
    assert answers["slow"].status_code == 408
    assert during, "no request ran while the slow one did"
    assert limited.post("/api/sql", json={"sql": TOTALS}).status_code == 200
