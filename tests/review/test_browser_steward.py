"""The steward pages in a real headless Chromium, against `kanda serve`'s app on a real port: sign in, filter,
fix a record, bulk-reject, see the result; a viewer changes nothing; a Kenya steward cannot open a Nigeria record;
a form without its CSRF token is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kanda.review.web.background import serving
from kanda.settings import Settings, load_settings
from kanda.web.app import create_app
from tests.support.web_helpers import PASSWORD, build_queue, item, items

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A real queue (KE and NG ingested and enqueued) served on a free port for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(tmp_path_factory.mktemp("browser") / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        mp.delenv("KANDA_APP_DB_URL", raising=False)
        settings = load_settings()
        settings.ensure_dirs()
        build_queue(settings)
        with serving(create_app(settings)) as base:
            yield settings, base


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page, base: str, name: str, start: str = "/queue") -> None:
    page.goto(base + start)
    assert page.url.startswith(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(base + start)
    assert name in page.inner_text("[data-testid=who]")


def shown_ids(page) -> list[int]:
    return [
        int(i)
        for i in page.locator("[data-testid=queue] tbody tr[data-item]").evaluate_all(
            "rows => rows.map(r => r.dataset.item)"
        )
    ]


def test_a_steward_filters_fixes_a_record_and_bulk_rejects(page, site: tuple[Settings, str]):
    settings, base = site
    sign_in(page, base, "wanjiru")
    assert set(shown_ids(page)) == {i.id for i in items(settings, "KE")}

    # Filter to one rule: only those records remain.
    page.select_option("select[name=rule]", "missing_or_unreadable")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**rule=missing_or_unreadable**")
    unreadable = {i.id for i in items(settings, "KE") if any(r.rule == "missing_or_unreadable" for r in i.rules)}
    assert set(shown_ids(page)) == unreadable

    # Open a record with an unreadable time, fix it, see it re-validated, approve it.
    broken = items(settings, "KE", rule="missing_or_unreadable", column="occurred_at")[0]
    page.click(f"a[href='/records/{broken.id}']")
    page.wait_for_url(f"{base}/records/{broken.id}")
    page.fill("input[name=occurred_at]", "yesterday at ten")
    page.click("button[value=check]")
    assert "an ISO time" in page.inner_text("[data-testid=error-occurred_at]")
    page.fill("input[name=occurred_at]", "2026-10-05T10:00:00Z")
    page.click("button[value=check]")
    assert page.locator("[data-testid=error-occurred_at]").count() == 0
    assert "passes the contract" in page.inner_text(".flash")
    page.click("button:has-text('Approve fix')")
    page.wait_for_selector("text=Fix approved")
    assert page.inner_text("[data-testid=status]") == "fixed"
    assert "wanjiru approve" in page.inner_text("[data-testid=history]")
    assert item(settings, broken.id).status == "fixed"

    # Bulk-reject the held records of unknown creators, selected by checkbox.
    page.goto(f"{base}/queue?rule=unknown_creator")
    held = items(settings, "KE", rule="unknown_creator", column="creator_id")
    assert len(held) >= 2 and set(shown_ids(page)) == {i.id for i in held}
    for record in held:
        page.check(f"input[name=item_id][value='{record.id}']")
    page.select_option("select[name=action]", "reject")
    page.fill("input[name=reason]", "creators never onboarded")
    page.click("button:has-text('Apply')")
    page.wait_for_selector(f"text={len(held)} record(s) rejected.")
    assert shown_ids(page) == []
    page.select_option("select[name=status]", "rejected")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**status=rejected**")
    assert set(shown_ids(page)) == {i.id for i in held}
    assert {item(settings, i.id).decision_reason for i in held} == {"creators never onboarded"}


def test_a_viewer_cannot_change_anything(page, site: tuple[Settings, str]):
    settings, base = site
    target = items(settings, "NG", rule="missing_or_unreadable", column="amount_minor")[0]
    sign_in(page, base, "otieno")
    assert page.locator("input[name=item_id]").count() == 0
    assert page.locator("[data-testid=bulk-actions]").count() == 0
    page.goto(f"{base}/records/{target.id}")
    assert page.locator("form[data-testid]").count() == 0
    assert page.locator("main button").count() == 0

    # Even a hand-made form with this session's valid token is refused for a viewer.
    status = page.evaluate(
        """async (id) => {
            const body = new URLSearchParams({reason: 'spam', csrf_token:
                document.querySelector('input[name=csrf_token]').value});
            return (await fetch(`/records/${id}/reject`, {method: 'POST', body})).status;
        }""",
        target.id,
    )
    assert status == 403
    assert item(settings, target.id).status == "new"


def test_a_kenya_steward_cannot_open_a_nigeria_record(page, site: tuple[Settings, str]):
    settings, base = site
    nigeria = items(settings, "NG")[0]
    sign_in(page, base, "wanjiru")
    page.goto(f"{base}/queue?status=all")
    assert all(cell == "KE" for cell in page.locator("[data-testid=queue] tbody td:nth-child(3)").all_inner_texts())
    assert "NG" not in page.locator("select[name=region] option").all_inner_texts()
    assert nigeria.id not in shown_ids(page)

    response = page.goto(f"{base}/records/{nigeria.id}")
    assert response is not None and response.status == 404
    assert "No such record" in page.inner_text("h1")
    assert nigeria.source_file not in page.content()


def test_a_form_without_its_csrf_token_is_refused(page, site: tuple[Settings, str]):
    settings, base = site
    target = items(settings, "NG", rule="missing_or_unreadable", column="amount_minor")[0]
    sign_in(page, base, "amina")
    page.goto(f"{base}/records/{target.id}")
    page.locator("[data-testid=reject-form] input[name=csrf_token]").evaluate("field => field.remove()")
    page.fill("[data-testid=reject-form] input[name=reason]", "spam")
    with page.expect_response(f"{base}/records/{target.id}/reject") as answer:
        page.click("[data-testid=reject-form] button")
    assert answer.value.status == 403
    assert "Form refused" in page.inner_text("h1")
    assert "security token (CSRF)" in page.inner_text("[data-testid=error]")
    assert item(settings, target.id).status == "new"
