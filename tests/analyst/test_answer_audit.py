"""Answers an analyst would take at their word: a grouped figure's flags must not claim more than its rows say, and a
filter must not silently match nothing because of how an id was typed."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyiceberg.expressions import EqualTo

from kanda.analyst.answer_cache import etag_of
from kanda.analyst.api import ANSWER_VERSION
from kanda.analyst.keys import KeyStore
from kanda.central.catalog import NAMESPACE, open_catalog
from kanda.central.query import run_query
from kanda.settings import Settings
from tests.support.analyst import client_for, publish_regions


def rows_of(client: TestClient, path: str, **params) -> list[dict]:
    response = client.get(path, params={"limit": 100_000, **params})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_a_total_over_rows_of_unknown_fee_status_does_not_say_fees_were_stated(settings: Settings):
    """Until a region publishes again after `fees_stated` was added, its files from before lack the column and read
    NULL there (tests/central/test_iceberg_docs.py): nobody knows whether those events' fees were sent. A total
    over them and over rows that do state fees must not answer `fees_stated: true`, which tells the analyst that
    `fees_minor` holds every charge and net is after them."""
    publish_regions(settings, ["EG", "NG"], rows=200, days=2)
    table = open_catalog(settings).load_table(f"{NAMESPACE}.creator_daily")
    nigeria = [task.file.file_path.removeprefix("file://") for task in table.scan(EqualTo("region", "NG")).plan_files()]
    for path in nigeria:  # as an older kanda wrote them: the same rows, no fees_stated
        pq.write_table(pq.read_table(path).drop_columns(["fees_stated"]), path)
    flags = "SELECT region, list(DISTINCT fees_stated) AS flags FROM rollups.creator_daily GROUP BY 1 ORDER BY 1"
    assert run_query(settings, flags).to_pylist() == [
        {"region": "EG", "flags": [True]},
        {"region": "NG", "flags": [None]},
    ]
    client = client_for(settings, "fees-unknown")

    usd_total = rows_of(client, "/api/rollups/creator_daily", group_by="", currency="usd")
    assert len(usd_total) == 1 and usd_total[0]["fees_stated"] is None
    by_region = rows_of(client, "/api/rollups/creator_daily", group_by="region", currency="usd")
    assert {r["region"]: r["fees_stated"] for r in by_region} == {"EG": True, "NG": None}
    by_day = rows_of(client, "/api/rollups/creator_daily", group_by="local_date", currency="usd")
    assert by_day and all(r["fees_stated"] is None for r in by_day)


def test_a_false_among_unknown_fee_statuses_still_says_false(settings: Settings):
    """Where one row is known not to state fees, the group certainly does not, whatever the others say."""
    publish_regions(settings, ["KE", "NG"], rows=200, days=2)
    table = open_catalog(settings).load_table(f"{NAMESPACE}.creator_daily")
    nigeria = [task.file.file_path.removeprefix("file://") for task in table.scan(EqualTo("region", "NG")).plan_files()]
    for path in nigeria:
        pq.write_table(pq.read_table(path).drop_columns(["fees_stated"]), path)
    client = client_for(settings, "fees-false")
    usd_total = rows_of(client, "/api/rollups/creator_daily", group_by="", currency="usd")
    assert len(usd_total) == 1 and usd_total[0]["fees_stated"] is False


def test_a_creator_or_product_typed_in_lower_case_finds_its_rows(client: TestClient, published: Settings):
    """Ids are upper case by the sale contract (`NG-C0001`, `NG-P00001`), and `region=ke` already finds KE. A creator
    typed as `ke-c0001` matched nothing and answered an empty 200, which reads as "no sales"."""
    first = run_query(published, "select creator_id, product_id from rollups.product_daily limit 1").to_pylist()[0]
    creator, product = first["creator_id"], first["product_id"]
    exact = rows_of(client, "/api/rollups/creator_daily", creator=creator)
    assert exact
    assert rows_of(client, "/api/rollups/creator_daily", creator=creator.lower()) == exact
    assert rows_of(client, "/api/rollups/creator_daily", creator=f" {creator.lower()} ") == exact
    products = rows_of(client, "/api/rollups/product_daily", product=product)
    assert products and rows_of(client, "/api/rollups/product_daily", product=product.lower()) == products

    # The next page's link names the id as stored.
    assert len(exact) > 1
    paged = client.get("/api/rollups/creator_daily", params={"creator": creator.lower(), "limit": 1}).json()
    assert paged["rows"] == exact[:1] and f"creator={creator}&" in paged["next"]


CLOCKED = [
    "select count(*) as n, current_date as today from rollups.creator_daily",
    "select sum(net_usd_minor) as usd from rollups.creator_daily where local_date >= today() - 7",
    "select count(*) filter (where random() < 0.5) as about_half from rollups.creator_daily",
    # the time since the newest day: DuckDB's one-argument age() measures up to now
    "select age(max(local_date)::timestamp) as since_last from rollups.creator_daily",
    # a sample draws other rows each run; a seed repeats only on one thread
    "select creator_id, local_date from rollups.creator_daily using sample 3 rows",
    "select count(*) as n from (select * from rollups.creator_daily tablesample 50%)",
    "select creator_id from rollups.creator_daily using sample 3 rows (reservoir, 42)",
]


@pytest.mark.parametrize("statement", CLOCKED)
def test_an_answer_that_depends_on_the_clock_or_chance_is_never_served_again(published: Settings, statement: str):
    """An answer is cached per publication because a publication never changes; "the last 7 days" does, at
    midnight, with no new publication. Served again from memory (or kept by the client for a year, with `as_of` a
    publish id) it was yesterday's figure with nothing saying so. Such a statement is run on every request, its
    answer carries no ETag and `Cache-Control: no-store`, and no ETag, however computed, gets a 304 for it."""
    from kanda.web.app import create_app

    token = KeyStore(published.app_db_url).create(f"clocked-{CLOCKED.index(statement)}")
    client = TestClient(create_app(published), headers={"Authorization": f"Bearer {token}"})
    publish_id = client.get("/api/publications").headers["x-kanda-publication"]
    for as_of in (None, publish_id):
        body = {"sql": statement, "as_of": as_of}
        answers = [client.post("/api/sql", json=body) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        for response in answers:
            assert response.headers["x-kanda-cache"] == "off"
            assert response.headers["cache-control"] == "no-store" and "etag" not in response.headers
            assert response.headers["x-kanda-publication"] == publish_id
        forged = etag_of((ANSWER_VERSION, "sql", publish_id, statement, 10_000, "json"))
        validated = client.post("/api/sql", json=body, headers={"If-None-Match": forged})
        assert validated.status_code == 200 and validated.json()["rows"]

    # A statement of the data alone is still kept.
    plain = [client.post("/api/sql", json={"sql": "select count(*) as n from rollups.creator_daily"}) for _ in "ab"]
    assert [r.headers["x-kanda-cache"] for r in plain] == ["miss", "hit"]
    between = "select age(max(local_date)::timestamp, min(local_date)::timestamp) as span from rollups.creator_daily"
    spans = [client.post("/api/sql", json={"sql": between}) for _ in "ab"]
    assert [r.headers["x-kanda-cache"] for r in spans] == ["miss", "hit"]
