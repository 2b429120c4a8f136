"""`kanda serve` as analysts meet it: several worker processes answering the API, and docs that work offline and
describe every answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from kanda.analyst.keys import KeyStore
from kanda.settings import Settings
from kanda.web.app import create_app


def test_kanda_serve_answers_from_several_worker_processes(published: Settings, served: str):
    def worker(_: int) -> int:
        # A new connection each time, so that the kernel hands it to whichever worker accepts first.
        with httpx.Client(base_url=served, timeout=30) as http:
            return http.get("/healthz").json()["worker"]

    seen: set[int] = set()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(25):  # bounded: 25 rounds of 8 concurrent connections
            seen |= set(pool.map(worker, range(8)))
            if len(seen) >= 2:
                break
    assert len(seen) == 2, f"only worker(s) {seen} answered"

    token = KeyStore(published.app_db_url).create("served-analyst")
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    for _ in range(4):
        with httpx.Client(base_url=served, headers=headers, timeout=60) as http:
            answers.append(http.get("/api/rollups/region_daily", params={"group_by": "region"}))
    assert all(r.status_code == 200 for r in answers)
    assert len({r.headers["etag"] for r in answers}) == 1 and len({r.content for r in answers}) == 1
    with httpx.Client(base_url=served, timeout=60) as anonymous:
        refused = anonymous.get(
            "/api/rollups/region_daily",
            params={"group_by": "region"},
            headers={"If-None-Match": answers[0].headers["etag"]},
        )
    assert refused.status_code == 401


def test_every_endpoint_describes_its_answer(published: Settings):
    spec = TestClient(create_app(published)).get("/openapi.json").json()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert {"/api/rollups", "/api/rollups/{table}", "/api/sql", "/api/publications", "/healthz"} <= set(spec["paths"])
    for path, method, op in operations:
        schema = op["responses"]["200"]["content"]["application/json"].get("schema")
        assert schema, f"{method.upper()} {path} has no 200 response schema"
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            assert spec["components"]["schemas"][name]["properties"], f"{name} is empty"
    answer = spec["components"]["schemas"]["RollupAnswer"]["properties"]
    assert {"publication", "rows", "columns", "next", "total"} <= set(answer)
    rollups = spec["paths"]["/api/rollups/{table}"]["get"]["responses"]
    assert {"text/csv", "application/vnd.apache.parquet"} <= set(rollups["200"]["content"])
    assert "304" in rollups and "401" in rollups


@pytest.mark.browser
@pytest.mark.parametrize(("path", "shown"), [("/docs", ".opblock-summary"), ("/redoc", "h1")])
def test_the_api_docs_render_without_internet(browser, served: str, path: str, shown: str):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    blocked: dict[str, str | None] = {}
    page.on("requestfailed", lambda request: blocked.__setitem__(request.url, request.failure))
    outside: list[str] = []

    def only_this_server(route) -> None:
        host = urlparse(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:  # what a machine without internet does to a CDN request
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    try:
        page.goto(served + path)
        page.wait_for_selector(shown)
        text = page.inner_text("body")
        assert "Rollup rows, filtered, grouped and paged" in text
        assert "Read-only SQL over the rollup tables" in text
        assert outside == [] and requested
        # ReDoc's bundle asks for its vendor's logo; the page's Content-Security-Policy stops that inside the
        # browser, before any network (and the route above never saw it).
        elsewhere = [url for url in requested if urlparse(url).hostname != "127.0.0.1" and not url.startswith("data:")]
        assert all("csp" in (blocked.get(url) or "").lower() for url in elsewhere), (elsewhere, blocked)
    finally:
        context.close()


def test_a_served_worker_refuses_a_statement_past_its_memory_cap_and_keeps_serving(published: Settings, served: str):
    """A constant folded while planning (16 GB here) is allocated outside DuckDB's memory limit and its time limit;
    the worker's address-space cap (KANDA_ANALYST_MEMORY, 8 GiB) makes it fail at once, for that request alone."""
    token = KeyStore(published.app_db_url).create("served-memory")
    with httpx.Client(base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        refused = http.post("/api/sql", json={"sql": "select len(range(2000000000)) as n"})
        assert refused.status_code in (400, 413), refused.text
        assert "memory" in refused.json()["detail"]
        assert http.post("/api/sql", json={"sql": "select 1 as n"}).json()["rows"] == [{"n": 1}]
