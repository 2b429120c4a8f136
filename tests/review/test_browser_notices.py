"""What a steward notices, in a real headless Chromium against `kanda serve`'s app on a real port, at a phone's
width (375 px) and a desktop's (1280 px): nothing wider than the screen, "Sign out" in reach, the letter O in
`12,3O0.00` marked, a fix typed as the statement writes it, keyboard shortcuts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kanda.regional.ingest import ingest_files
from kanda.review.service import enqueue_region
from kanda.review.web.background import serving
from kanda.settings import Settings, load_settings
from kanda.web.app import create_app
from tests.support.steward_files import MPESA_HEADER, mpesa_line
from tests.support.web_helpers import PASSWORD, build_queue, item, items

pytestmark = pytest.mark.browser

WIDTHS = (375, 1280)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, int]]:
    """A real KE queue, plus one statement line paying `12,3O0.00` (a letter O); served on a free port."""
    folder = tmp_path_factory.mktemp("notices")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(folder / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        for name in ("KANDA_CATALOG_URL", "KANDA_WAREHOUSE", "KANDA_APP_DB_URL"):
            mp.delenv(name, raising=False)
        settings = load_settings()
        settings.ensure_dirs()
        build_queue(settings, ("KE",))
        statement = folder / "ke-o.csv"
        statement.write_text(MPESA_HEADER + mpesa_line("SKE0000002", "2026-10-05 21:30:00", "12,3O0.00") + "\n")
        ingest_files(settings, "KE", [statement])
        enqueue_region(settings, "KE")
        lettered = next(i.id for i in items(settings, "KE") if i.transaction_id == "SKE0000002")
        with serving(create_app(settings)) as base:
            yield settings, base, lettered


def open_page(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    return context, tab


def sign_in(page, base: str, name: str = "wanjiru", start: str = "/queue") -> None:
    page.goto(base + start)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(base + start)


def fits(page) -> None:
    """Nothing sticks out sideways, and "Sign out" is on screen and can be pressed."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} is {width} px wide in a {inner} px window"
    sign_out = page.get_by_role("button", name="Sign out")
    assert sign_out.is_visible()
    box = sign_out.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= inner


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_screen_with_sign_out_in_reach(browser, site, width: int):
    _, base, lettered = site
    context, page = open_page(browser, width)
    try:
        sign_in(page, base)
        for path in ("/queue", "/queue?status=all", f"/records/{lettered}", "/quality", "/quality/KE"):
            page.goto(base + path)
            fits(page)
        page.goto(f"{base}/records/{lettered}")
        page.click("button[value=check]")  # the page with errors beside the fields
        fits(page)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_letter_o_is_marked_and_the_fix_is_typed_as_the_statement_writes_it(browser, site, width: int):
    settings, base, lettered = site
    context, page = open_page(browser, width)
    try:
        sign_in(page, base, "amina")
        page.goto(f"{base}/records/{lettered}")
        mark = page.locator("[data-testid=as-in-file] mark.odd")
        assert mark.inner_text() == "O" and mark.is_visible()
        assert mark.get_attribute("title") == "U+004F LATIN CAPITAL LETTER O: a letter among digits"
        assert page.input_value("input[name=amount]") == "12,3O0.00"

        page.fill("input[name=amount]", "12,300.00")
        page.click("button[value=check]")
        assert page.inner_text("[data-testid=will-store-amount_minor]") == (
            "will store: 1230000 minor units (KES 12,300.00)"
        )
        assert page.inner_text("[data-testid=will-store-occurred_at]") == "will store: 2026-10-05 18:30 UTC"
        assert item(settings, lettered).status == "new"  # shown before saving, nothing saved
    finally:
        context.close()


def test_keyboard_shortcuts_search_open_and_assign(browser, site):
    settings, base, _ = site
    context, page = open_page(browser, 1280)
    try:
        sign_in(page, base)
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.name") == "q"
        page.keyboard.type("SKE0000002")
        page.keyboard.press("Enter")
        page.wait_for_url("**q=SKE0000002**")
        (only,) = [i for i in items(settings, "KE") if i.transaction_id == "SKE0000002"]

        page.keyboard.press("j")  # first row
        page.keyboard.press("o")  # open it
        page.wait_for_url(f"{base}/records/{only.id}")
        page.keyboard.press("a")  # assign to me
        page.wait_for_selector("text=is yours")
        assert page.inner_text("[data-testid=assignee]") == "wanjiru"
        assert item(settings, only.id).assignee == "wanjiru"

        page.keyboard.press("?")
        assert page.locator("[data-testid=key-help]").is_visible()
        page.keyboard.press("u")  # back to the queue, filter kept
        page.wait_for_url("**/queue?q=SKE0000002**")
    finally:
        context.close()
