"""The steward pages over HTTP (FastAPI's TestClient against the real app, real stores and review database):
fixing a record, bulk actions, filters, CSRF refusal, viewers who change nothing, and region scope by URL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kanda.settings import Settings, load_settings
from kanda.web.app import create_app
from tests.support.web_helpers import PASSWORD, build_queue, create_accounts, item, items, login, token


def _installation_with_a_queue(tmp_path_factory: pytest.TempPathFactory, name: str, regions: tuple[str, ...]) -> Path:
    """A home with the regions' dirty files ingested and enqueued, and the test accounts."""
    home = tmp_path_factory.mktemp(name) / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(home))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        for variable in ("KANDA_CATALOG_URL", "KANDA_WAREHOUSE", "KANDA_APP_DB_URL"):
            mp.delenv(variable, raising=False)
        settings = load_settings()
        settings.ensure_dirs()
        build_queue(settings, regions)
    return home


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One installation with a real queue (KE and NG ingested and enqueued), built once for the module."""
    return _installation_with_a_queue(tmp_path_factory, "web", ("KE", "NG"))


@pytest.fixture
def queue(settings: Settings, built: Path) -> Settings:
    """A private copy of the built installation: each test changes its own queue."""
    shutil.copytree(built, settings.home, dirs_exist_ok=True)
    return settings


def signed_in(settings: Settings, name: str) -> TestClient:
    client = TestClient(create_app(settings))
    assert login(client, name, PASSWORD).status_code == 200
    return client


def ids_on(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-item="(\d+)"', page)]


def test_a_steward_fixes_a_record_checked_by_the_contract(queue: Settings):
    broken = items(queue, "KE", rule="missing_or_unreadable", column="occurred_at")[0]
    client = signed_in(queue, "wanjiru")
    page = client.get(f"/records/{broken.id}")
    assert page.status_code == 200
    assert "missing_or_unreadable" in page.text and "Raw input" in page.text
    fields = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page.text))
    # the unreadable time is offered as the file wrote it, to be corrected rather than retyped
    assert fields["occurred_at"] == item(queue, broken.id).raw_record["Completion Time"]
    assert fields["transaction_id"] == broken.transaction_id
    csrf = token(client, f"/records/{broken.id}")

    # A value that is still wrong: the error is shown beside the field and nothing is saved. So is a time at the
    # calendar's edge, whose UTC instant falls outside it (it was a 500).
    for wrong in ("2026-13-45", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"):
        bad = client.post(
            f"/records/{broken.id}/edit", data=fields | {"occurred_at": wrong, "op": "check", "csrf_token": csrf}
        )
        assert bad.status_code == 422, wrong
        assert 'data-testid="error-occurred_at"' in bad.text and "an ISO time" in bad.text
    assert item(queue, broken.id).status == "new"

    # Approving a row that still breaks the contract is refused, with the reason on the page.
    refused = client.post(f"/records/{broken.id}/edit", data=fields | {"op": "approve", "csrf_token": csrf})
    assert refused.status_code == 422 and "Not approved" in refused.text
    assert item(queue, broken.id).status == "new"

    fixed = fields | {"occurred_at": "2026-10-05T10:00:00Z", "csrf_token": csrf}
    saved = client.post(f"/records/{broken.id}/edit", data=fixed | {"op": "save"})
    assert saved.status_code == 200 and "Edits saved; the row passes the contract" in saved.text
    assert item(queue, broken.id).status == "in_review"

    approved = client.post(f"/records/{broken.id}/edit", data=fixed | {"op": "approve", "note": "time from M-Pesa"})
    assert approved.status_code == 200 and "Fix approved" in approved.text
    detail = item(queue, broken.id)
    assert detail.status == "fixed" and detail.edits == {"occurred_at": "2026-10-05T10:00:00Z"}
    assert [(h.actor, h.action) for h in detail.history][-2:] == [("wanjiru", "edit"), ("wanjiru", "approve")]
    history = approved.text[approved.text.index('data-testid="history"') :]
    assert "wanjiru</strong> approve" in history and "time from M-Pesa" in history
    assert 'data-testid="edit-form"' not in approved.text  # decided: no more edits

    again = client.post(f"/records/{broken.id}/reject", data={"reason": "changed my mind", "csrf_token": csrf})
    assert again.status_code == 409 and "only possible while it is new or in review" in again.text


SEEN = re.compile(r'name="seen" value="([^"]+)"')


def test_a_decision_from_a_page_opened_before_a_colleagues_change_is_refused_not_applied_over_it(queue: Settings):
    """Two stewards open the same record. Amina saves a fix; Wanjiru then approves from the page she opened before
    it. The approval went through and silently dropped Amina's edits (the form's untouched fields equal the parsed
    values, so they read as "no edit"); it is refused now, and so are a stale save, rejection and "Assign to me"
    (two people taking a record at once both got "it is yours")."""
    broken = items(queue, "KE", rule="missing_or_unreadable", column="occurred_at")[0]
    wanjiru, amina = signed_in(queue, "wanjiru"), signed_in(queue, "amina")
    stale = wanjiru.get(f"/records/{broken.id}").text
    seen = SEEN.search(stale).group(1)
    fields = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', stale))
    csrf_w, csrf_a = token(wanjiru, f"/records/{broken.id}"), token(amina, f"/records/{broken.id}")
    fresh = amina.get(f"/records/{broken.id}").text
    amina_fix = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', fresh)) | {
        "occurred_at": "2026-10-05T10:00:00Z",
        "transaction_id": "AMINA-FIXED-1",
        "seen": SEEN.search(fresh).group(1),
        "csrf_token": csrf_a,
    }
    assert amina.post(f"/records/{broken.id}/edit", data=amina_fix | {"op": "save"}).status_code == 200
    saved = item(queue, broken.id).edits
    assert saved["transaction_id"] == "AMINA-FIXED-1"

    wanjiru_fix = fields | {"occurred_at": "2026-10-05T11:00:00Z", "seen": seen, "csrf_token": csrf_w}
    for path, data in [
        ("edit", wanjiru_fix | {"op": "approve"}),
        ("edit", wanjiru_fix | {"op": "save"}),
        ("reject", {"reason": "duplicate of another", "seen": seen, "csrf_token": csrf_w}),
        ("assign", {"op": "take", "seen": seen, "csrf_token": csrf_w}),
    ]:
        refused = wanjiru.post(f"/records/{broken.id}/{path}", data=data)
        assert refused.status_code == 409, (path, data.get("op"))
        assert "changed by someone else since you opened it" in refused.text
    after = item(queue, broken.id)
    assert (after.status, after.edits, after.assignee) == ("in_review", saved, None)
    # the refusal shows the record as it is now: approved from there, Amina's fix is what is approved
    current = SEEN.search(wanjiru.get(f"/records/{broken.id}").text).group(1)
    assert (
        wanjiru.post(
            f"/records/{broken.id}/edit", data={"op": "approve", "seen": current, "csrf_token": csrf_w}
        ).status_code
        == 200
    )
    assert item(queue, broken.id).edits == saved


def test_a_host_without_the_creator_registry_can_approve_a_fix(queue: Settings):
    """The central host serves the review pages and keeps no registry (docs/deployment.md): read as empty, every fix
    there was held as `unknown_creator` and none could be approved. Without the registry the host does not hold;
    the region's reprocess applies the fix through ingestion's validation, which holds a creator not onboarded."""
    from kanda.review.actor import Actor
    from kanda.review.service import approve

    broken = items(queue, "KE", rule="missing_or_unreadable", column="occurred_at")[0]
    shutil.rmtree(queue.registry_dir)
    verdict = approve(queue, Actor("amina", "steward", None), broken.id, edits={"occurred_at": "2026-10-05T10:00:00Z"})
    assert verdict.ok, verdict.errors
    assert item(queue, broken.id).status == "fixed"


def test_an_integer_beyond_64_bits_cannot_be_read(queue: Settings):
    """Minor units too large for 64 bits, typed canonically (`amount_minor`, as a script posts) or in the rail's
    notation (`amount`), are "cannot be read" with a 422 and the reason beside the field, never a 500."""
    client = signed_in(queue, "amina")
    huge = "99999999999999999999999"
    for region in ("KE", "NG"):  # M-Pesa writes major units, Paystack minor units
        target = items(queue, region)[0].id
        csrf = token(client, f"/records/{target}")
        # each fits in 64 bits, the net derived from them does not
        both = {"op": "check", "amount_minor": str(2**63 - 1), "fee_minor": "-1", "csrf_token": csrf}
        page = client.post(f"/records/{target}/edit", data=both)
        assert page.status_code == 422 and 'data-testid="error-net_minor"' in page.text
        for column in ("amount_minor", "fee_minor", "net_minor"):
            for op in ("check", "approve", "save"):  # a save keeps it as work in progress, like any unreadable edit
                page = client.post(f"/records/{target}/edit", data={"op": op, column: huge, "csrf_token": csrf})
                assert page.status_code == (200 if op == "save" else 422), (region, column, op, page.text[:300])
                assert f'data-testid="error-{column}"' in page.text and "64 bits" in page.text
            assert item(queue, target).status == "in_review"
        for name in ("amount", "fee", "net"):
            page = client.post(f"/records/{target}/edit", data={"op": "check", name: huge, "csrf_token": csrf})
            assert page.status_code == 422, (region, name, page.text[:300])
            assert "cannot be read" in page.text and "cannot read" in page.text
        assert item(queue, target).status == "in_review"  # never approved


def test_a_warning_is_waived_with_a_justification(queue: Settings):
    """A time in the future breaks only a warning-level rule: the waive form appears, and needs a justification."""
    target = items(queue, "KE", rule="missing_or_unreadable", column="occurred_at")[-1]
    client = signed_in(queue, "wanjiru")
    first = client.get(f"/records/{target.id}")
    assert 'data-testid="waive-form"' not in first.text  # an error-level rule cannot be waived
    csrf = token(client, f"/records/{target.id}")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    saved = client.post(f"/records/{target.id}/edit", data={"occurred_at": future, "op": "save", "csrf_token": csrf})
    assert "still breaks 1 rule(s)" in saved.text
    assert "not_in_future (warning, can be waived)" in saved.text
    assert 'data-testid="waive-form"' in saved.text

    bare = client.post(f"/records/{target.id}/waive", data={"justification": " ", "csrf_token": csrf})
    assert bare.status_code == 400 and "needs a justification" in bare.text
    waived = client.post(
        f"/records/{target.id}/waive", data={"justification": "rail clock is ahead", "csrf_token": csrf}
    )
    assert waived.status_code == 200 and "Warning waived" in waived.text
    detail = item(queue, target.id)
    assert (detail.status, detail.decided_by, detail.decision_reason) == ("waived", "wanjiru", "rail clock is ahead")


def test_filters_counts_and_bulk_reject(queue: Settings):
    client = signed_in(queue, "amina")
    everything = client.get("/queue?status=all")
    assert len(ids_on(everything.text)) == len(items(queue, "KE")) + len(items(queue, "NG"))

    held = client.get("/queue?region=NG&rule=unknown_creator")
    expected = [i.id for i in items(queue, "NG", rule="unknown_creator", column="creator_id")]
    assert expected and ids_on(held.text) == expected
    assert f"unknown_creator: {len(expected)}" in held.text

    by_file = client.get("/queue", params={"source_file": items(queue, "KE")[0].source_file})
    assert set(ids_on(by_file.text)) == {i.id for i in items(queue, "KE")}
    assert ids_on(client.get("/queue?min_age=1").text) == []  # everything was quarantined moments ago
    assert client.get("/queue?min_age=soon").status_code == 400

    csrf = token(client, "/queue")
    bulk = client.post(
        "/queue/bulk",
        data={
            "region": "NG",
            "rule": "unknown_creator",
            "status": "open",
            "action": "reject",
            "scope": "all",
            "reason": "test creators, never onboarded",
            "csrf_token": csrf,
        },
    )
    assert bulk.status_code == 200 and f"{len(expected)} record(s) rejected." in bulk.text
    assert {i.status for i in items(queue, "NG", rule="unknown_creator", column="creator_id")} == {"rejected"}
    assert ids_on(bulk.text) == []  # the open NG unknown-creator queue is now empty
    assert ids_on(client.get("/queue?region=NG&rule=unknown_creator&status=rejected").text) == expected

    # Selected rows only; approving rows that still break the contract skips them and says why.
    ke = [i.id for i in items(queue, "KE")][:2]
    picked = client.post(
        "/queue/bulk",
        data={"action": "approve", "scope": "selected", "item_id": ke, "status": "open", "csrf_token": csrf},
    )
    assert "0 record(s) approved. 2 skipped" in picked.text and "still breaks the contract" in picked.text
    no_reason = client.post(
        "/queue/bulk", data={"action": "reject", "scope": "selected", "item_id": ke, "csrf_token": csrf}
    )
    assert "needs a reason" in no_reason.text
    assert {item(queue, i).status for i in ke} == {"new"}


def test_forms_without_a_valid_csrf_token_are_refused(queue: Settings):
    target = items(queue, "KE")[0].id
    client = signed_in(queue, "wanjiru")
    missing = client.post(f"/records/{target}/reject", data={"reason": "spam"})
    assert missing.status_code == 403 and "without a valid security token (CSRF)" in missing.text
    wrong = client.post(f"/records/{target}/reject", data={"reason": "spam", "csrf_token": "forged"})
    assert wrong.status_code == 403

    other = signed_in(queue, "amina")  # a real token, but of another session
    stolen = client.post(f"/records/{target}/reject", data={"reason": "spam", "csrf_token": token(other, "/queue")})
    assert stolen.status_code == 403
    bulk = client.post("/queue/bulk", data={"action": "reject", "scope": "all", "reason": "spam"})
    assert bulk.status_code == 403
    assert {i.status for i in items(queue, "KE")} == {"new"}
    assert [h.action for h in item(queue, target).history] == ["enqueue"]

    # Signing in needs the token too (no login CSRF), and a session's token changes at sign-in.
    fresh = TestClient(create_app(queue))
    assert fresh.post("/login", data={"username": "amina", "password": PASSWORD}).status_code == 403
    before = token(fresh)
    login(fresh, "amina", PASSWORD)
    assert token(fresh, "/queue") != before


def test_a_viewer_sees_everything_and_changes_nothing(queue: Settings):
    client = signed_in(queue, "otieno")
    page = client.get("/queue?status=all")
    assert len(ids_on(page.text)) == len(items(queue, "KE")) + len(items(queue, "NG"))
    assert 'action="/queue/bulk"' in page.text  # the filter values travel in it, but it has no controls
    assert 'data-testid="bulk-actions"' not in page.text and 'name="item_id"' not in page.text
    target = items(queue, "NG")[0].id
    record = client.get(f"/records/{target}")
    assert record.status_code == 200
    for form in ("edit-form", "reject-form", "waive-form"):
        assert f'data-testid="{form}"' not in record.text

    csrf = token(client, "/queue")  # a valid token: the refusal is about the role
    for path, data in [
        (f"/records/{target}/reject", {"reason": "spam"}),
        (f"/records/{target}/edit", {"op": "save", "channel": "web"}),
        ("/queue/bulk", {"action": "reject", "scope": "all", "reason": "spam", "status": "all"}),
    ]:
        refused = client.post(path, data=data | {"csrf_token": csrf})
        assert refused.status_code == 403 and "viewers can look but not change" in refused.text
    assert {i.status for i in items(queue, "NG") + items(queue, "KE")} == {"new"}


def test_a_kenya_steward_cannot_reach_nigeria_records(queue: Settings):
    client = signed_in(queue, "wanjiru")
    queue_page = client.get("/queue?status=all")
    assert set(ids_on(queue_page.text)) == {i.id for i in items(queue, "KE")}
    assert ">NG<" not in queue_page.text
    assert ids_on(client.get("/queue?region=NG&status=all").text) == []

    nigeria = items(queue, "NG")[0].id
    by_url = client.get(f"/records/{nigeria}")
    nowhere = client.get("/records/999999")
    assert by_url.status_code == nowhere.status_code == 404  # indistinguishable from a record that does not exist
    assert "no record" in by_url.text.lower()

    csrf = token(client, "/queue")
    assert client.post(f"/records/{nigeria}/reject", data={"reason": "x", "csrf_token": csrf}).status_code == 404
    assert client.post(f"/records/{nigeria}/edit", data={"op": "save", "csrf_token": csrf}).status_code == 404
    selected = client.post(
        "/queue/bulk",
        data={"action": "reject", "scope": "selected", "item_id": [nigeria], "reason": "x", "csrf_token": csrf},
    )
    assert "0 record(s) rejected" in selected.text
    client.post(
        "/queue/bulk",
        data={"action": "reject", "scope": "all", "region": "NG", "status": "all", "reason": "x", "csrf_token": csrf},
    )
    assert {i.status for i in items(queue, "NG")} == {"new"}
    assert client.get("/quality/NG").status_code == 403


HUGE_IDS = ("99999999999999999999", str(2**63), str(-(2**63) - 1))


def test_a_record_number_beyond_64_bits_is_no_such_record(queue: Settings):
    """A record number too large for the database's integers answers exactly like one that does not exist (the
    same 404 page, for the record and every action on it); among selected records it selects nothing; an absurd
    page number shows the last page, as any page past the end does. Never a 500 (it used to overflow SQLite)."""
    client = signed_in(queue, "amina")
    csrf = token(client, "/queue")

    def same_page(path: str, response, missing: str = "999999") -> None:
        number = path.split("/")[2]
        assert response.status_code == 404, (path, response.status_code, response.text[:300])
        nowhere = client.request(response.request.method, path.replace(number, missing), data=posted.get(path))
        assert nowhere.status_code == 404 and response.text.replace(number, missing) == nowhere.text, path

    for huge in HUGE_IDS:
        posted: dict[str, dict] = {
            f"/records/{huge}/edit": {"op": "save", "amount": "1", "csrf_token": csrf},
            f"/records/{huge}/assign": {"op": "take", "csrf_token": csrf},
            f"/records/{huge}/waive": {"justification": "x", "csrf_token": csrf},
            f"/records/{huge}/reject": {"reason": "x", "csrf_token": csrf},
        }
        same_page(f"/records/{huge}", client.get(f"/records/{huge}"))
        assert "No such record" in client.get(f"/records/{huge}").text
        for path, data in posted.items():
            same_page(path, client.post(path, data=data))

    target = items(queue, "KE")[0].id
    form = {"action": "reject", "scope": "selected", "reason": "x", "csrf_token": csrf}
    selected = client.post("/queue/bulk", data=form | {"item_id": [*HUGE_IDS]})
    assert selected.status_code == 200 and "0 record(s) rejected" in selected.text
    selected = client.post("/queue/bulk", data=form | {"item_id": [target, *HUGE_IDS]})
    assert selected.status_code == 200 and "1 record(s) rejected" in selected.text
    assert item(queue, target).status == "rejected"

    last = client.get("/queue?status=all&page=999999")
    assert last.status_code == 200 and "page 1 of" not in last.text
    for page in HUGE_IDS:
        shown = client.get(f"/queue?status=all&page={page}")
        assert shown.status_code == 200, (page, shown.text[:300])
        expected = last if not page.startswith("-") else client.get("/queue?status=all&page=1")
        assert ids_on(shown.text) == ids_on(expected.text) != []


def test_an_absurd_age_filter_is_a_bad_filter_or_clamped_never_a_500(queue: Settings):
    """An age that is no number of days (inf, nan, negative) answers the usual 400 "Bad filter" page, on the queue,
    its CSV and in the bulk form; a finite age past the calendar is clamped: nothing is older than that, everything
    is newer. (These used to overflow computing the date: OverflowError or "date value out of range", a 500.)"""
    client = signed_in(queue, "amina")
    csrf = token(client, "/queue")
    everything = ids_on(client.get("/queue?status=all").text)
    assert everything
    form = {"action": "reject", "scope": "all", "reason": "x", "status": "all", "csrf_token": csrf}
    for field in ("min_age", "max_age"):
        for bad in ("inf", "-inf", "nan", "Infinity", "-1"):
            for path in ("/queue", "/queue.csv"):
                refused = client.get(path, params={"status": "all", field: bad})
                assert refused.status_code == 400 and "Bad filter" in refused.text, (path, field, bad)
            refused = client.post("/queue/bulk", data=form | {field: bad})
            assert refused.status_code == 400 and "Bad filter" in refused.text, (field, bad)
    for huge in ("1e10", "1000000", "1e308", "999999999", "700000"):  # (700000 days ago is still a date)
        assert ids_on(client.get("/queue", params={"status": "all", "min_age": huge}).text) == []
        assert ids_on(client.get("/queue", params={"status": "all", "max_age": huge}).text) == everything
        listed = client.get("/queue.csv", params={"status": "all", "max_age": huge})
        assert listed.status_code == 200
        assert sorted(int(row[0]) for row in list(csv.reader(io.StringIO(listed.text)))[1:]) == sorted(everything)
        older = client.post("/queue/bulk", data=form | {"min_age": huge})
        assert older.status_code == 200 and "0 record(s) rejected." in older.text
    target = items(queue, "KE")[0].id
    newer = client.post("/queue/bulk", data=form | {"max_age": "1e10", "scope": "selected", "item_id": [target]})
    assert newer.status_code == 200 and "1 record(s) rejected." in newer.text
    assert item(queue, target).status == "rejected"
    assert {i.status for i in items(queue, "KE") if i.id != target} == {"new"}


def test_the_quality_page_shows_the_published_quarantine_trend(settings: Settings):
    build_queue(settings, regions=("KE",), publish=True)
    client = signed_in(settings, "wanjiru")
    page = client.get("/quality/KE")
    assert page.status_code == 200
    from kanda.central.query import run_query

    days = run_query(settings, "select local_date, quarantine_rate from rollups.region_daily order by 1").to_pylist()
    assert page.text.count('<circle class="dot') == len(days) >= 3
    for day in days:
        assert f"<title>{day['local_date']}: {day['quarantine_rate'] * 100:.2f} %</title>" in page.text
    assert f"new: {len(items(settings, 'KE'))}" in page.text
    index = client.get("/quality")
    assert "/quality/KE" in index.text and "/quality/NG" not in index.text


def test_sessions_and_csrf_leave_the_api_and_its_docs_alone(settings: Settings):
    client = TestClient(create_app(settings))
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "set-cookie" not in docs.headers
    assert client.get("/openapi.json").status_code == 200
    # The API answers for itself (API keys): no sign-in redirect, no CSRF refusal.
    assert client.post("/api/sql", json={"sql": "select 1"}).status_code == 401
    assert not any(
        path.startswith(("/queue", "/records", "/login")) for path in client.get("/openapi.json").json()["paths"]
    )


def test_the_data_docs_site_is_for_signed_in_users_only(settings: Settings):
    """The access rule of the `/data-docs/` mount (the GX site itself is tested with real suites below)."""
    from kanda.checks.gx_runner import data_docs_dir

    site = data_docs_dir(settings)
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body>kanda Data Docs</body></html>")
    create_accounts(settings)
    client = TestClient(create_app(settings))
    anonymous = client.get("/data-docs/index.html", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fdata-docs%2Findex.html"
    login(client, "otieno", PASSWORD)
    assert "kanda Data Docs" in client.get("/data-docs/index.html").text
    assert client.get("/data-docs/../secret_key").status_code == 404


def test_data_docs_before_any_suite_ran_here_is_a_404_that_says_so(settings: Settings):
    """On a host where no suite has run (a central host: the suites run where the stores are), the mount answered
    a signed-in steward with a 500 from the missing folder."""
    create_accounts(settings)
    client = TestClient(create_app(settings))
    login(client, "otieno", PASSWORD)
    missing = client.get("/data-docs/")
    assert missing.status_code == 404 and "run `kanda expectations` here first" in missing.text


@pytest.mark.slow
def test_the_quality_page_shows_great_expectations_results_and_links_data_docs(settings: Settings):
    from kanda.checks.gx_runner import build_data_docs, run_region_suites

    build_queue(settings, regions=("KE",))
    results = run_region_suites(settings, "KE")
    build_data_docs(settings, results)
    client = signed_in(settings, "wanjiru")
    page = client.get("/quality/KE")
    table = page.text[page.text.index('data-testid="gx-results"') :]
    assert table.count("<tr>") - 1 == len(results)  # one row per suite and day, under a header row
    for result in results:
        assert f'href="/data-docs/{result.docs_path}"' in table
        assert client.get(f"/data-docs/{result.docs_path}").status_code == 200
    assert client.get("/data-docs/index.html").status_code == 200


SPEC_RAIL_REGIONS = ("SN", "BJ", "CM", "IN", "VN")  # wave, MTN collection, Flutterwave, Razorpay, VNPAY (x100)


@pytest.fixture(scope="module")
def spec_rail_queue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Review items of regions whose rail is a declarative spec (13 of the 20 regions)."""
    return _installation_with_a_queue(tmp_path_factory, "web-spec", SPEC_RAIL_REGIONS)


@pytest.mark.parametrize("code", SPEC_RAIL_REGIONS)
def test_a_record_of_a_spec_rail_region_opens_and_its_fix_form_reads_the_rails_notation(
    settings: Settings, spec_rail_queue: Path, code: str
):
    """The record page and the fix form raised "no notation known" (a 500) for every region on a spec rail."""
    shutil.copytree(spec_rail_queue, settings.home, dirs_exist_ok=True)
    broken = items(settings, code)[0]
    client = signed_in(settings, "amina")
    page = client.get(f"/records/{broken.id}")
    assert page.status_code == 200 and "Raw input" in page.text
    fields = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page.text))
    csrf = token(client, f"/records/{broken.id}")
    typed = {"VN": "10000000", "IN": "49900"}.get(code, "5000")  # as the rail writes money: x100, paise, francs
    checked = client.post(
        f"/records/{broken.id}/edit", data=fields | {"amount": typed, "op": "check", "csrf_token": csrf}
    )
    assert checked.status_code in (200, 422), checked.text
    expected = {"VN": 100_000, "IN": 49_900}.get(code, 5000)
    assert f"{expected} minor units" in checked.text
