"""The read-only HTTP API: filters, grouping, currency, paging, formats, the SQL endpoint's limits, and that every
answer equals what `kanda query` answers over the same publication."""

from __future__ import annotations

import io

import pyarrow.csv
import pyarrow.parquet
import pytest
from fastapi.testclient import TestClient

from kanda.analyst.api import Limits
from kanda.analyst.keys import KeyStore
from kanda.central.query import run_query
from kanda.settings import Settings
from tests.support.analyst import REGIONS, client_for


def sql_rows(settings: Settings, sql: str) -> list[dict]:
    """`kanda query`'s answer, with 128-bit sums as plain ints like the API's JSON."""
    return [
        {k: int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float) else v for k, v in r.items()}
        for r in run_query(settings, sql).to_pylist()
    ]


def api_rows(client: TestClient, path: str, **params) -> list[dict]:
    response = client.get(path, params={"limit": 100_000, **params})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def dated(rows: list[dict]) -> list[dict]:
    return [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()} for r in rows]


def test_grouped_answers_equal_kanda_query(client: TestClient, published: Settings):
    by_region = api_rows(client, "/api/rollups/creator_daily", group_by="region")
    expected = sql_rows(
        published,
        "select region, currency, sum(orders) as orders, sum(gross_minor) as gross_minor,"
        " sum(refunds_minor) as refunds_minor, sum(reversals_minor) as reversals_minor, sum(fees_minor) as fees_minor,"
        " sum(net_minor) as net_minor, bool_and(fees_stated) as fees_stated"
        " from rollups.creator_daily group by all order by region",
    )
    assert by_region == expected
    assert [r["region"] for r in by_region] == REGIONS
    # M-Pesa statements state no fees: Kenya's fees_minor is 0 because nothing was sent, and the answer says so.
    assert {r["region"]: (r["fees_stated"], r["fees_minor"] > 0) for r in by_region} == {
        "EG": (True, True),
        "KE": (False, False),
        "NG": (True, True),
    }

    usd = api_rows(client, "/api/rollups/product_daily", group_by=["region", "local_date"], currency="usd")
    expected = sql_rows(
        published,
        "select region, local_date, sum(orders) as orders, sum(net_usd_minor) as net_usd_minor,"
        " bool_and(fees_stated) as fees_stated from rollups.product_daily group by all order by region, local_date",
    )
    assert usd == dated(expected)
    assert all("currency" not in r and "net_minor" not in r for r in usd)


def test_filters_narrow_the_rows(client: TestClient, published: Settings):
    creator = run_query(published, "select creator_id from rollups.creator_daily where region = 'KE' limit 1")
    creator_id = creator.to_pylist()[0]["creator_id"]
    rows = api_rows(
        client,
        "/api/rollups/creator_daily",
        region="ke",
        creator=creator_id,
        date_from="2026-10-06",
        date_to="2026-10-07",
    )
    expected = sql_rows(
        published,
        f"select * from rollups.creator_daily where region = 'KE' and creator_id = '{creator_id}'"
        " and local_date between '2026-10-06' and '2026-10-07'",
    )
    assert rows and len(rows) == len(expected)
    assert {(r["local_date"], r["net_minor"]) for r in rows} == {
        (r["local_date"].isoformat(), r["net_minor"]) for r in expected
    }

    both = api_rows(client, "/api/rollups/region_daily", region=["EG", "NG"])
    assert {r["region"] for r in both} == {"EG", "NG"}

    product = run_query(published, "select product_id from rollups.product_daily limit 1").to_pylist()[0]["product_id"]
    products = api_rows(client, "/api/rollups/product_daily", product=product, group_by="product_id")
    assert [r["product_id"] for r in products] == [product]


def test_grouping_by_creator_and_month_equals_kanda_query(client: TestClient, published: Settings):
    rows = api_rows(client, "/api/rollups/creator_daily", region="KE", group_by="creator_id,month", currency="usd")
    expected = sql_rows(
        published,
        "select creator_id, strftime(local_date, '%Y-%m') as month, sum(orders) as orders,"
        " sum(net_usd_minor) as net_usd_minor, bool_and(fees_stated) as fees_stated"
        " from rollups.creator_daily where region = 'KE'"
        " group by all order by creator_id, month",
    )
    assert rows == expected and len(rows) > 1


def test_filter_values_are_parameters_not_sql(client: TestClient):
    for hostile in ("KE' OR '1'='1", "KE') UNION SELECT * FROM read_csv('/etc/passwd') --"):
        response = client.get("/api/rollups/creator_daily", params={"region": hostile})
        assert response.status_code == 200 and response.json()["rows"] == []


def test_local_currency_never_mixes_currencies(client: TestClient):
    by_month = api_rows(client, "/api/rollups/region_daily", group_by="month")
    assert {r["currency"] for r in by_month} == {"EGP", "KES", "NGN"}  # grouped by currency too, not summed across
    total = api_rows(client, "/api/rollups/creator_daily", group_by="")
    assert sorted(r["currency"] for r in total) == ["EGP", "KES", "NGN"]
    usd_total = api_rows(client, "/api/rollups/creator_daily", group_by="", currency="usd")
    assert len(usd_total) == 1 and usd_total[0]["net_usd_minor"] > 0


def test_region_daily_rates_are_recomputed_from_their_parts(client: TestClient):
    (row,) = api_rows(client, "/api/rollups/region_daily", region="KE", group_by="region")
    assert row["payment_failure_rate"] == pytest.approx(row["failed_payments"] / row["payments"])
    assert row["quarantine_rate"] == pytest.approx(
        row["rows_quarantined"] / (row["rows_loaded"] + row["rows_quarantined"])
    )
    assert "reversal_rate" not in row  # not additive: only the rollup's own rows carry it
    assert "reversal_rate" in api_rows(client, "/api/rollups/region_daily", region="KE")[0]


def test_money_rows_say_whether_the_rail_stated_fees(client: TestClient):
    listed = client.get("/api/rollups").json()
    assert {name: info["flags"] for name, info in listed.items()} == {
        "creator_daily": ["fees_stated"],
        "product_daily": ["fees_stated"],
        "region_daily": ["fees_stated"],
        "channel_daily": [],
    }
    kenya = api_rows(client, "/api/rollups/region_daily", region="KE")
    egypt = api_rows(client, "/api/rollups/region_daily", region="EG")
    assert kenya and {(r["fees_stated"], r["fees_minor"]) for r in kenya} == {(False, 0)}
    assert egypt and {r["fees_stated"] for r in egypt} == {True}


def test_channel_daily_serves_rates_by_region_and_channel(client: TestClient, published: Settings):
    listed = client.get("/api/rollups").json()["channel_daily"]
    assert "channel" in listed["dimensions"] and listed["grain"] == ["region", "local_date", "channel", "currency"]
    assert listed["measures"]["local"] == ["payments", "failed_payments", "successful_payments", "reversed_payments"]
    assert listed["rates"] == ["payment_failure_rate", "reversal_rate"]

    rows = api_rows(client, "/api/rollups/channel_daily", group_by="region,channel")
    expected = sql_rows(
        published,
        "select region, channel, currency, sum(payments) as payments, sum(failed_payments) as failed_payments,"
        " sum(successful_payments) as successful_payments, sum(reversed_payments) as reversed_payments"
        " from rollups.channel_daily group by all order by region, channel",
    )
    assert [{k: r[k] for k in expected[0]} for r in rows] == expected
    for row in rows:
        assert row["payment_failure_rate"] == pytest.approx(row["failed_payments"] / row["payments"])
        assert row["reversal_rate"] == pytest.approx(row["reversed_payments"] / row["successful_payments"])
    (kenya,) = api_rows(client, "/api/rollups/region_daily", region="KE", group_by="region")
    ke_channels = [r for r in rows if r["region"] == "KE"]
    assert sum(r["payments"] for r in ke_channels) == kenya["payments"]
    assert sum(r["failed_payments"] for r in ke_channels) == kenya["failed_payments"]

    usd = api_rows(client, "/api/rollups/channel_daily", region="NG", currency="usd")
    assert usd and all("currency" not in r and "fx_date" not in r and r["channel"] for r in usd)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/rollups/region_daily", {"creator": "x"}, "region_daily has no creator_id"),
        ("/api/rollups/channel_daily", {"group_by": "creator_id"}, "cannot group channel_daily by 'creator_id'"),
        ("/api/rollups/creator_daily", {"product": "x"}, "creator_daily has no product_id"),
        ("/api/rollups/creator_daily", {"group_by": "product_id"}, "cannot group creator_daily by 'product_id'"),
        ("/api/rollups/creator_daily", {"date_from": "2026-10-07", "date_to": "2026-10-05"}, "is after"),
    ],
)
def test_filters_that_do_not_apply_are_refused_with_the_reason(client: TestClient, path, params, message):
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_unknown_table_and_bad_values_are_422(client: TestClient):
    assert client.get("/api/rollups/sale_events").status_code == 422
    assert client.get("/api/rollups/creator_daily", params={"currency": "eur"}).status_code == 422
    assert client.get("/api/rollups/creator_daily", params={"date_from": "yesterday"}).status_code == 422


def test_a_number_json_cannot_hold_is_a_422_naming_it(published: Settings):
    """Python's json reads `NaN` and `Infinity`; FastAPI's own 422 echoed them and could not be written (500)."""
    from kanda.web.app import create_app

    token = KeyStore(published.app_db_url).create("not-a-number")
    app = TestClient(create_app(published), headers={"Authorization": f"Bearer {token}"})
    for field, text in (("timeout_seconds", "NaN"), ("max_rows", "Infinity")):
        body = f'{{"sql": "select 1 as one", "{field}": {text}}}'
        response = app.post("/api/sql", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", field] and error["input"] in ("nan", "inf")


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "99999999999999999999"},
        {"offset": str(2**63)},
        {"offset": str(10**18 + 1)},
        {"offset": "-1"},
        {"limit": "99999999999999999999"},
        {"limit": "100001"},
        {"limit": "0"},
    ],
)
def test_paging_values_out_of_range_are_422(client: TestClient, params: dict):
    """An offset or limit beyond its bounds (or beyond 64 bits) is an invalid parameter, not a failed query."""
    response = client.get("/api/rollups/creator_daily", params=params)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(params))]


def test_the_largest_offset_is_an_empty_page(client: TestClient):
    response = client.get("/api/rollups/creator_daily", params={"offset": str(10**18), "limit": 100_000})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [] and response.json()["next"] is None
    huge = client.post("/api/sql", json={"sql": "select 1 as one", "max_rows": 10**30})  # capped, not refused
    assert huge.status_code == 200 and huge.json()["max_rows"] > 0


def test_pages_follow_next_links_to_the_whole_answer(client: TestClient):
    whole = api_rows(client, "/api/rollups/creator_daily")
    response = client.get("/api/rollups/creator_daily", params={"limit": 7, "count": "true"})
    pages, link_header = [], response.headers.get("link")
    while True:
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == len(whole) == int(response.headers["x-total-count"])
        pages.extend(body["rows"])
        if body["next"] is None:
            assert "link" not in response.headers
            break
        response = client.get(body["next"])
    assert link_header and 'rel="next"' in link_header
    assert pages == whole and len(whole) > 7


def test_csv_and_parquet_answers_hold_the_same_rows(client: TestClient):
    params = {"group_by": ["region", "local_date"], "currency": "usd", "limit": 100_000}
    as_json = client.get("/api/rollups/creator_daily", params=params)
    as_csv = client.get("/api/rollups/creator_daily", params={**params, "format": "csv"})
    as_parquet = client.get(
        "/api/rollups/creator_daily", params=params, headers={"Accept": "application/vnd.apache.parquet"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert as_json.headers["content-type"] == "application/json"
    for response in (as_json, as_csv, as_parquet):
        assert response.headers["x-kanda-publication"] == as_json.json()["publication"]["publish_id"]
    from_csv = pyarrow.csv.read_csv(io.BytesIO(as_csv.content)).to_pylist()
    from_parquet = pyarrow.parquet.read_table(io.BytesIO(as_parquet.content)).to_pylist()
    assert dated(from_csv) == dated(from_parquet) == as_json.json()["rows"]
    assert (
        client.get("/api/rollups/creator_daily", headers={"Accept": "text/csv"})
        .headers["content-type"]
        .startswith("text/csv")
    )


def test_the_sql_endpoint_answers_like_kanda_query(client: TestClient, published: Settings):
    sql = "select region, sum(net_usd_minor) as usd from rollups.creator_daily group by 1 order by 1"
    response = client.post("/api/sql", json={"sql": sql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == sql_rows(published, sql)
    assert body["truncated"] is False and body["row_count"] == len(REGIONS)
    assert body["publication"]["publish_id"] == response.headers["x-kanda-publication"]
    parquet = client.post("/api/sql", params={"format": "parquet"}, json={"sql": sql})
    assert pyarrow.parquet.read_table(io.BytesIO(parquet.content)).num_rows == len(REGIONS)
    bad = client.post("/api/sql", json={"sql": "select no_such_column from rollups.creator_daily"})
    assert bad.status_code == 400 and "no_such_column" in bad.json()["detail"]
    nested = client.post("/api/sql", params={"format": "csv"}, json={"sql": "select [1, 2] as pair"})
    assert nested.status_code == 406 and "json or parquet" in nested.json()["detail"]
    assert client.post("/api/sql", json={"sql": "select [1, 2] as pair"}).json()["rows"] == [{"pair": [1, 2]}]
    twice = client.post("/api/sql", json={"sql": "select 1 as a, 2 as a"})  # JSON rows kept only the last `a`
    assert twice.status_code == 400 and "repeats the column name(s) a" in twice.json()["detail"]


def test_the_sql_endpoint_stops_at_the_row_limit_and_says_so(published: Settings):
    capped = client_for(published, "capped", Limits(sql_max_rows=5, sql_timeout_seconds=10))
    body = capped.post("/api/sql", json={"sql": "select * from rollups.creator_daily"}).json()
    assert body["row_count"] == 5 and body["truncated"] is True and body["max_rows"] == 5
    fewer = capped.post("/api/sql", json={"sql": "select * from rollups.creator_daily", "max_rows": 2}).json()
    assert fewer["row_count"] == 2 and fewer["truncated"] is True
    more = capped.post("/api/sql", json={"sql": "select * from rollups.creator_daily", "max_rows": 500}).json()
    assert more["row_count"] == 5  # a request cannot raise the server's cap
    exact = capped.post("/api/sql", json={"sql": "select * from range(5)"})
    assert exact.json()["truncated"] is False
    as_csv = capped.post("/api/sql", params={"format": "csv"}, json={"sql": "select * from range(100)"})
    assert as_csv.headers["x-kanda-truncated"] == "true" and len(as_csv.text.splitlines()) == 1 + 5


def test_the_sql_endpoint_stops_a_slow_query_at_the_time_limit(published: Settings):
    limited = client_for(published, "hurried", Limits(sql_max_rows=10, sql_timeout_seconds=0.5))
    slow = "select count(*) from range(1000000000) a, range(1000000) b where a.range + b.range = -1"
    response = limited.post("/api/sql", json={"sql": slow})
    assert response.status_code == 408
    assert "time limit of 0.5 s" in response.json()["detail"]
    assert limited.post("/api/sql", json={"sql": "select 1 as one"}).json()["rows"] == [{"one": 1}]


def test_publications_list_the_ids_as_of_takes(client: TestClient, published: Settings):
    body = client.get("/api/publications").json()
    assert [r["region"] for r in body["rows"]] == list(reversed(REGIONS))  # newest first
    assert body["publication"]["publish_id"] == body["rows"][0]["publish_id"]
    assert {"creator_daily_snapshot", "product_daily_snapshot", "region_daily_snapshot"} <= set(body["rows"][0])
    first = body["rows"][-1]["publish_id"]
    earlier = client.get("/api/publications", params={"as_of": first}).json()
    assert [r["publish_id"] for r in earlier["rows"]] == [first]
    missing = client.get("/api/rollups/creator_daily", params={"as_of": "no-such-publication"})
    assert missing.status_code == 404 and "kanda query --history" in missing.json()["detail"]


def test_keys_are_required_and_checked(published: Settings, client: TestClient):
    from kanda.analyst.keys import KeyStore

    anonymous = TestClient(client.app)
    for method, path in (("get", "/api/rollups/creator_daily"), ("post", "/api/sql"), ("get", "/api/publications")):
        response = anonymous.request(method, path, json={"sql": "select 1"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key is required" in response.json()["detail"]
    wrong = anonymous.get("/api/publications", headers={"Authorization": "Bearer kanda_not-a-real-key"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown API key"

    store = KeyStore(published.app_db_url)
    token = store.create("leaving-analyst")
    assert anonymous.get("/api/publications", headers={"X-API-Key": token}).status_code == 200
    store.revoke("leaving-analyst")
    revoked = anonymous.get("/api/publications", headers={"X-API-Key": token})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_kanda_serve_mounts_the_api_with_public_docs(published: Settings):
    from kanda.web.app import create_app

    served = TestClient(create_app(published))
    assert served.get("/api/publications").status_code == 401
    assert served.get("/docs").status_code == 200
    spec = served.get("/openapi.json").json()
    rollups = spec["paths"]["/api/rollups/{table}"]["get"]
    assert "group_by" in {p["name"] for p in rollups["parameters"]}
    assert all(p.get("description") for p in rollups["parameters"])
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    assert "/api/sql" in spec["paths"] and "/api/publications" in spec["paths"]


def test_a_catalog_database_out_of_reach_is_a_503_that_says_so_not_a_500(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """With the catalog's database down (a PostgreSQL restarting: nothing listens on its port), the API answered
    a bare 500 and logged a traceback, where an unreadable data file already gave a 503 naming the cause."""
    from kanda.settings import load_settings

    monkeypatch.setenv("KANDA_CATALOG_URL", "postgresql+psycopg://kanda@127.0.0.1:9/catalog")
    client = client_for(load_settings(), "analyst")
    for answer in (
        client.get("/api/publications"),
        client.post("/api/sql", json={"sql": "select 1"}),
        client.get("/api/rollups/region_daily"),
    ):
        assert answer.status_code == 503, answer.text
        assert "catalog's database cannot be reached" in answer.json()["detail"]
