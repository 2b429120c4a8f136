"""A statement of analyst SQL is stopped at its time limit even when one value takes all the time.

DuckDB's interrupt is checked between batches of rows; this statement computes four values of 30 million additions
each (about 30 s on one core) and, run in the API worker, answered 200 long after a 1 s limit. The API runs analyst
statements in processes it kills at the limit (`kanda.analyst.sql_processes`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kanda.analyst import api, sql_processes
from kanda.analyst.answer_cache import AnswerCache
from kanda.analyst.keys import KeyStore
from kanda.central.query import run_query
from kanda.settings import Settings

ONE_HEAVY_VALUE = "select len(list_transform(range(4), lambda i: list_reduce(range(30000000), lambda a,b: a+b))) as n"
TOTALS = "select region, sum(net_usd_minor) as usd from rollups.creator_daily group by 1 order by 1"


@pytest.fixture
def one_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A pool of one process: the query after a killed one can only be answered by its replacement."""
    sql_processes.stop()
    monkeypatch.setenv("KANDA_API_SQL_PROCESSES", "1")
    sql_processes.start()
    yield
    sql_processes.stop()  # the next test starts a pool of the default size


def test_a_statement_past_its_time_limit_is_stopped_and_the_next_one_answers(published: Settings, one_process):
    cache = AnswerCache(2**20)
    app = FastAPI()
    limits = api.Limits(sql_max_rows=1000, sql_timeout_seconds=10)
    app.include_router(api.build_router(published, KeyStore(published.app_db_url), limits, cache))
    client = TestClient(app, headers={"Authorization": f"Bearer {KeyStore(published.app_db_url).create('deadline')}"})

    stopped = client.post("/api/sql", json={"sql": ONE_HEAVY_VALUE, "timeout_seconds": 1})
    assert stopped.status_code == 408, stopped.text
    assert stopped.json()["detail"] == "the query ran longer than the time limit of 1 s and was stopped"
    assert len(cache) == 0  # nothing kept: the next request runs it again

    answer = client.post("/api/sql", json={"sql": TOTALS})
    assert answer.status_code == 200, answer.text
    expected = run_query(published, TOTALS).to_pylist()
    assert answer.json()["rows"] == expected
    assert len(cache) == 1  # the normal answer only


def test_the_app_starts_its_sql_processes_and_stops_them_at_shutdown(published: Settings):
    """Started with the app, so the first statement pays no process start-up; stopped with it, so that a `kanda
    serve` worker does not wait at exit for processes that wait for work."""
    from kanda.web.app import create_app

    def running() -> int:
        return sum(1 for p in multiprocessing.active_children() if p.name == "pebble_pool_worker")

    sql_processes.stop()
    token = KeyStore(published.app_db_url).create("lifespan")
    with TestClient(create_app(published), headers={"Authorization": f"Bearer {token}"}) as client:
        assert running() == sql_processes.processes_wanted()
        assert client.post("/api/sql", json={"sql": TOTALS}).json()["rows"] == run_query(published, TOTALS).to_pylist()
    assert running() == 0


def test_a_process_that_dies_under_a_statement_is_one_clear_error_and_the_next_statement_answers(
    published: Settings, one_process
):
    """A pool process can die on its own (the kernel's OOM killer, an operator's kill): the request gets the
    process's end in words, not a hang or a traceback, nothing is cached, and a new process answers the next one."""
    cache = AnswerCache(2**20)
    app = FastAPI()
    limits = api.Limits(sql_max_rows=1000, sql_timeout_seconds=60)
    app.include_router(api.build_router(published, KeyStore(published.app_db_url), limits, cache))
    client = TestClient(app, headers={"Authorization": f"Bearer {KeyStore(published.app_db_url).create('killed')}"})
    (worker,) = [p for p in multiprocessing.active_children() if p.name == "pebble_pool_worker"]

    with ThreadPoolExecutor(1) as background:
        pending = background.submit(client.post, "/api/sql", json={"sql": ONE_HEAVY_VALUE, "timeout_seconds": 60})
        time.sleep(1.0)  # the statement is running in the one process
        assert not pending.done()
        os.kill(worker.pid, signal.SIGKILL)
        ended = pending.result(timeout=30)

    assert ended.status_code == 400, ended.text
    assert ended.json()["detail"].startswith("query failed: the process running the query ended abruptly (signal 9)")
    assert len(cache) == 0
    answer = client.post("/api/sql", json={"sql": TOTALS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == run_query(published, TOTALS).to_pylist()


def test_checking_a_huge_statement_costs_the_api_worker_nothing_and_counts_toward_the_limit(published: Settings):
    """The statement check walks DuckDB's parse tree in Python: a long `IN` list of a few hundred kilobytes costs
    seconds to check. In the API worker nothing stopped that, and a few such requests at once stalled every other
    analyst's answers; now the check runs in the SQL process, inside the statement's time limit."""
    from kanda.analyst.reader_pool import shared_reader
    from kanda.central.query import check_read_only, resolve

    huge = "select count(*) as n from rollups.creator_daily where orders in (" + ",".join(["1"] * 200_000) + ")"
    with shared_reader(published, resolved=resolve(published)) as central:
        started = time.process_time()
        check_read_only(central.con, huge)
        in_process = time.process_time() - started

    cache = AnswerCache(2**20)
    app = FastAPI()
    limits = api.Limits(sql_max_rows=1000, sql_timeout_seconds=10)
    app.include_router(api.build_router(published, KeyStore(published.app_db_url), limits, cache))
    client = TestClient(app, headers={"Authorization": f"Bearer {KeyStore(published.app_db_url).create('huge')}"})
    client.post("/api/sql", json={"sql": TOTALS})  # the pool's processes and the worker's reader are warm

    started = time.process_time()
    answer = client.post("/api/sql", json={"sql": huge, "timeout_seconds": 1})
    in_worker = time.process_time() - started
    # Checked, then run, under the 1 s limit: stopped there, or answered if this machine checks it fast enough.
    assert answer.status_code in (200, 408), answer.text
    assert in_worker < in_process / 4, (in_worker, in_process)


def test_one_key_cannot_hold_every_sql_process(published: Settings, monkeypatch: pytest.MonkeyPatch):
    """Two slow statements of one analyst took both processes of a worker, and everybody else's statement waited
    behind them, as long as that analyst kept sending. A key's next statement now waits for the key's own running
    one (and past its waiting share is refused, 429); other keys are answered meanwhile."""
    sql_processes.stop()
    monkeypatch.setenv("KANDA_API_SQL_PROCESSES", "2")  # one key may then run one
    monkeypatch.setenv("KANDA_API_SQL_WAITING_PER_KEY", "1")
    sql_processes.start()
    app = FastAPI()
    keys = KeyStore(published.app_db_url)
    app.include_router(api.build_router(published, keys, api.Limits(sql_max_rows=1000, sql_timeout_seconds=30)))
    alice = TestClient(app, headers={"Authorization": f"Bearer {keys.create('alice')}"})
    carol = TestClient(app, headers={"Authorization": f"Bearer {keys.create('carol')}"})

    def counted(table: object) -> Callable[[], int]:
        return lambda: getattr(sql_processes, table, {}).get("alice", 0)  # type: ignore[arg-type]

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(alice.post, "/api/sql", json={"sql": "select sleep_ms(8000) as first"})
            until(lambda: counted("_RUNNING")() == 1)
            second = pool.submit(alice.post, "/api/sql", json={"sql": "select 2 as second"})
            until(lambda: counted("_WAITING")() == 1)
            third = alice.post("/api/sql", json={"sql": "select 3 as third"})
            assert third.status_code == 429 and "1 statement(s) running here and 1 waiting" in third.json()["detail"]
            assert third.headers["retry-after"] == "1"
            other = carol.post("/api/sql", json={"sql": TOTALS})
            assert other.status_code == 200 and other.json()["rows"] == run_query(published, TOTALS).to_pylist()
            assert not first.done() and not second.done()  # carol did not wait for alice; alice's second did
            assert first.result().status_code == 200
            assert second.result().json()["rows"] == [{"second": 2}]
    finally:
        sql_processes.stop()


def test_one_statement_asked_by_many_at_once_is_run_once_for_all(published: Settings, monkeypatch: pytest.MonkeyPatch):
    """A new publication's first requests, twenty clients of one dashboard behind one key, each ran the same
    statement; with a key's share of the processes, the ones past it were refused 429. They now share one run."""
    sql_processes.stop()
    monkeypatch.setenv("KANDA_API_SQL_PROCESSES", "2")
    monkeypatch.setenv("KANDA_API_SQL_WAITING_PER_KEY", "1")
    sql_processes.start()
    app = FastAPI()
    keys = KeyStore(published.app_db_url)
    app.include_router(api.build_router(published, keys, api.Limits(sql_max_rows=1000, sql_timeout_seconds=30)))
    statement = {"sql": "select sum(i) as n from range(300000000) t(i)"}
    headers = {"Authorization": f"Bearer {keys.create('dashboard')}"}
    try:
        with TestClient(app, headers=headers) as client, ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: client.post("/api/sql", json=statement), range(12)))
    finally:
        sql_processes.stop()
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers if a.status_code != 200]
    assert {a.json()["rows"][0]["n"] for a in answers} == {sum(range(300000000))}
