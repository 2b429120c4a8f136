"""Answers of a publication never change, so the API serves them again from memory, with an ETag a client can send
back for `304 Not Modified`; a new publication is a new answer, and the API key is checked on every request."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kanda.analyst.answer_cache import Answer, AnswerCache, etag_of, matches
from kanda.analyst.api import ANSWER_VERSION
from kanda.analyst.keys import KeyStore
from kanda.central.query import run_query
from kanda.settings import Settings
from tests.support.analyst import client_for, publish_regions

GROUPED = ("/api/rollups/creator_daily", {"group_by": "region"})
SQL = {"sql": "select region, sum(net_usd_minor) as usd from rollups.creator_daily group by 1 order by 1"}


def test_the_same_request_twice_is_answered_from_the_cache(published: Settings):
    client = client_for(published, "cache-twice")
    first = client.get(*GROUPED[:1], params=GROUPED[1])
    second = client.get(*GROUPED[:1], params=GROUPED[1])
    assert first.status_code == second.status_code == 200
    assert first.headers["x-kanda-cache"] == "miss" and second.headers["x-kanda-cache"] == "hit"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")

    # Spelled differently, asked the same: one answer.
    respelled = client.get("/api/rollups/creator_daily", params={"group_by": "region", "currency": "local"})
    assert respelled.headers["x-kanda-cache"] == "hit" and respelled.json()["rows"] == first.json()["rows"]

    sql = [client.post("/api/sql", json=SQL) for _ in range(2)]
    assert [r.headers["x-kanda-cache"] for r in sql] == ["miss", "hit"]
    assert sql[0].json() == sql[1].json()
    as_csv = client.post("/api/sql", params={"format": "csv"}, json=SQL)
    assert as_csv.headers["x-kanda-cache"] == "miss" and as_csv.headers["etag"] != sql[0].headers["etag"]


def test_a_client_with_the_etag_gets_304_and_no_body(published: Settings):
    client = client_for(published, "cache-304")
    first = client.get(*GROUPED[:1], params=GROUPED[1])
    etag = first.headers["etag"]
    again = client.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["x-kanda-publication"] == first.headers["x-kanda-publication"]
    listed = client.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    stale = client.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": '"not-this-answer"'})
    assert stale.status_code == 200 and stale.content == first.content

    # Another worker process (here: another app) gives the same ETag, so a client's validator survives restarts.
    other = client_for(published, "cache-304-other-worker")
    assert other.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": etag}).status_code == 304

    sql = client.post("/api/sql", json=SQL)
    assert client.post("/api/sql", json=SQL, headers={"If-None-Match": sql.headers["etag"]}).status_code == 304


def test_an_api_key_is_still_required_for_cached_answers_and_304s(published: Settings):
    client = client_for(published, "cache-keys")
    cached = client.get(*GROUPED[:1], params=GROUPED[1])
    etag = cached.headers["etag"]
    anonymous = TestClient(client.app)
    for headers in ({}, {"If-None-Match": etag}, {"If-None-Match": etag, "Authorization": "Bearer kanda_forged"}):
        response = anonymous.get(*GROUPED[:1], params=GROUPED[1], headers=headers)
        assert response.status_code == 401 and "rows" not in response.text
        assert "etag" not in response.headers and "x-kanda-publication" not in response.headers

    store = KeyStore(published.app_db_url)
    token = store.create("cache-leaving")
    as_leaver = {"X-API-Key": token}
    assert anonymous.get(*GROUPED[:1], params=GROUPED[1], headers=as_leaver).headers["x-kanda-cache"] == "hit"
    store.revoke("cache-leaving")
    for headers in (as_leaver, {**as_leaver, "If-None-Match": etag}):
        revoked = anonymous.get(*GROUPED[:1], params=GROUPED[1], headers=headers)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_a_refused_statement_is_refused_whatever_etag_is_sent(published: Settings):
    """ETags are hashes anyone can compute: for analyst SQL a matching one is only honoured for an answer this
    process checked and ran, so a forbidden statement never gets a 304 (nor anything but its 403)."""
    client = client_for(published, "cache-refused")
    publish_id = client.get("/api/publications").headers["x-kanda-publication"]
    statement = "select * from read_csv('/etc/passwd')"
    forged = etag_of((ANSWER_VERSION, "sql", publish_id, statement, 10_000, "json"))
    for _ in range(2):
        response = client.post("/api/sql", json={"sql": statement}, headers={"If-None-Match": forged})
        assert response.status_code == 403 and "x-kanda-cache" not in response.headers
    failing = [client.post("/api/sql", json={"sql": "select no_such_column from rollups.region_daily"}) for _ in "ab"]
    assert [r.status_code for r in failing] == [400, 400]  # errors are decided again, never cached


def test_an_answer_at_a_named_publication_may_be_kept_for_good(published: Settings):
    client = client_for(published, "cache-pinned")
    first = client.get("/api/publications").json()["rows"][-1]["publish_id"]
    pinned = client.get(*GROUPED[:1], params={**GROUPED[1], "as_of": first})
    assert pinned.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert pinned.headers["x-kanda-publication"] == first
    newest = client.get(*GROUPED[:1], params=GROUPED[1])
    assert "immutable" not in newest.headers["cache-control"] and newest.headers["etag"] != pinned.headers["etag"]


def test_a_new_publication_is_a_new_answer_with_a_new_etag(settings: Settings):
    publish_regions(settings, ["EG"], rows=200, days=2)
    client = client_for(settings, "cache-new-publication")
    before = client.get(*GROUPED[:1], params=GROUPED[1])
    assert [r["region"] for r in before.json()["rows"]] == ["EG"]
    assert client.get(*GROUPED[:1], params=GROUPED[1]).headers["x-kanda-cache"] == "hit"

    publish_regions(settings, ["KE"], rows=200, days=2)
    after = client.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["x-kanda-cache"] == "miss"
    assert after.headers["etag"] != before.headers["etag"]
    assert after.headers["x-kanda-publication"] != before.headers["x-kanda-publication"]
    assert [r["region"] for r in after.json()["rows"]] == ["EG", "KE"]
    assert after.json()["rows"] == [
        {k: v if k in ("region", "currency", "fees_stated") else int(v) for k, v in r.items()}
        for r in run_query(
            settings,
            "select region, currency, sum(orders) as orders, sum(gross_minor) as gross_minor,"
            " sum(refunds_minor) as refunds_minor, sum(reversals_minor) as reversals_minor,"
            " sum(fees_minor) as fees_minor, sum(net_minor) as net_minor, bool_and(fees_stated) as fees_stated"
            " from rollups.creator_daily group by all order by region",
        ).to_pylist()
    ]


def test_the_total_is_counted_only_when_asked(client: TestClient):
    plain = client.get("/api/rollups/creator_daily", params={"limit": 5})
    assert plain.json()["total"] is None and "x-total-count" not in plain.headers
    assert plain.json()["next"] and len(plain.json()["rows"]) == 5
    counted = client.get("/api/rollups/creator_daily", params={"limit": 5, "count": "true"})
    everything = client.get("/api/rollups/creator_daily", params={"limit": 100_000}).json()["rows"]
    assert counted.json()["total"] == int(counted.headers["x-total-count"]) == len(everything)
    assert counted.json()["rows"] == plain.json()["rows"] == everything[:5]
    last = client.get("/api/rollups/creator_daily", params={"limit": 5, "offset": len(everything) - 5}).json()
    assert last["next"] is None and last["rows"] == everything[-5:]


def test_a_cached_page_links_to_the_next_page_of_each_analysts_own_request(published: Settings):
    """Alice's request with a note of her own answered first; Carol's, pinned to the publication, is the same
    answer from the cache. Her `next` link must be hers: pinned (as_of), and without Alice's note."""
    alice, carol = client_for(published, "alice-next"), client_for(published, "carol-next")
    newest = alice.get("/api/publications").json()["rows"][0]["publish_id"]
    mine = alice.get("/api/rollups/creator_daily", params={"limit": 3, "secret_note": "alice-private"})
    theirs = carol.get("/api/rollups/creator_daily", params={"limit": 3, "as_of": newest})
    assert mine.json()["rows"] == theirs.json()["rows"]
    assert "alice-private" not in mine.json()["next"] and "alice-private" not in theirs.text
    assert f"as_of={newest}" in theirs.json()["next"] and "as_of" not in mine.json()["next"]
    assert theirs.headers["link"] == f'<{theirs.json()["next"]}>; rel="next"'
    following = carol.get(theirs.json()["next"])  # the link is a request the API answers: the second page
    everything = carol.get("/api/rollups/creator_daily", params={"limit": 6, "as_of": newest}).json()["rows"]
    assert following.json()["rows"] == everything[3:6]


def test_the_cache_is_bounded_by_bytes_and_keeps_the_recently_used():
    cache = AnswerCache(max_bytes=800)
    for name in "abcd":
        cache.put(name, Answer(b"x" * 100, "application/json"))
    assert cache.size == 400 and len(cache) == 4
    cache.get("a")  # used: kept over b
    for name in "efghi":
        cache.put(name, Answer(b"y" * 100, "application/json"))
    assert cache.size <= 800
    assert cache.get("a") is not None and cache.get("b") is None
    cache.put("huge", Answer(b"z" * 101, "application/json"))  # over an eighth of the budget: served, not kept
    assert cache.get("huge") is None
    assert cache.hits == 2 and cache.misses == 2


@pytest.mark.parametrize("header", ['"a"', "*", '"b", "a"', 'W/"a"'])
def test_if_none_match_names_the_etag(header: str):
    assert matches(header, '"a"')
    assert not matches(None, '"a"') and not matches('"b"', '"a"')


def test_kanda_serve_answers_repeated_requests_before_parsing_them_and_still_checks_keys(published: Settings):
    """The app `kanda serve` runs answers a byte-identical repeat from the cache in front of FastAPI: same answer,
    same headers, 304 with the ETag; a revoked key, a new spelling or a refused statement still go the full way."""
    from kanda.web.app import create_app

    app = create_app(published)
    store = KeyStore(published.app_db_url)
    token = store.create("fast-path")
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    (fast,) = [m.kwargs["answers"] for m in app.user_middleware if "answers" in m.kwargs]

    first = client.get(*GROUPED[:1], params=GROUPED[1])
    repeats = [client.get(*GROUPED[:1], params=GROUPED[1]) for _ in range(3)]
    assert fast.served == 3
    for again in repeats:
        assert again.content == first.content and again.headers["x-kanda-cache"] == "hit"
        assert {k: v for k, v in again.headers.items() if k != "x-kanda-cache"} == {
            k: v for k, v in first.headers.items() if k != "x-kanda-cache"
        }
    validated = client.get(*GROUPED[:1], params=GROUPED[1], headers={"If-None-Match": first.headers["etag"]})
    assert validated.status_code == 304 and validated.content == b""
    assert fast.served == 4
    as_csv = client.get(*GROUPED[:1], params={**GROUPED[1], "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.content != first.content

    sql = [client.post("/api/sql", json=SQL) for _ in range(2)]
    assert sql[0].json() == sql[1].json() and fast.served == 5
    refused = {"sql": "select * from read_csv('/etc/passwd')"}
    assert [client.post("/api/sql", json=refused).status_code for _ in range(2)] == [403, 403]

    store.revoke("fast-path")
    for headers in ({}, {"If-None-Match": first.headers["etag"]}):
        revoked = client.get(*GROUPED[:1], params=GROUPED[1], headers=headers)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert TestClient(app).post("/api/sql", json=SQL).status_code == 401
    assert fast.served == 5


def test_remembered_requests_cost_a_digest_each_not_their_bodies(published: Settings):
    """The fast path remembers up to 20,000 requests; keyed by their bodies (up to 64 KiB of SQL each) that was
    over a gigabyte per worker, outside the answer cache's byte limit."""
    import sys

    from kanda.analyst.api_fast import MAX_BODY, FastAnswers

    answers = FastAnswers(published, KeyStore(published.app_db_url), AnswerCache(max_bytes=1000))
    scope = {"method": "POST", "path": "/api/sql", "query_string": b"", "headers": [], "scheme": "http"}
    for index in range(200):
        body = b'{"sql": "select %d as n /* %s */"}' % (index, b"x" * (MAX_BODY - 100))
        answers.remember(scope, body, "metadata.json", f"etag-{index}", {})
        assert answers.lookup_at(scope, body, "metadata.json").etag == f"etag-{index}"
    held = sum(sys.getsizeof(part) for key in answers._aliases for part in key)
    assert held < 200 * 1024  # 200 bodies of 64 KiB would be 12.8 MB
    assert answers.lookup_at(scope, b'{"sql": "select 1 as n"}', "metadata.json") is None
