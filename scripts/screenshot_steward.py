"""Make the README's pictures of the steward pages from a real installation, served and driven for real.

    .venv/bin/python scripts/screenshot_steward.py [--out docs/images]

Builds a demo-like KANDA_HOME in a temporary folder (a week of dirty files for three regions, ingested, published
and enqueued), creates a steward, starts `kanda serve`'s app on a free port, signs in with headless Chromium
(Playwright) and saves the queue (`steward.png`), a record being fixed (`steward-record.png`: an M-Pesa amount
`12,3O0.00` with a letter O, fixed as `12,300.00` and checked), the quality page (`steward-quality.png`), and the
queue and the record on a 375 px phone (`steward-phone.png`, `steward-record-phone.png`). Deterministic data (fixed
seed and dates); needs Chromium (see kanda.web.browser).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REGIONS = ["KE", "NG", "GH"]
STEWARD, PASSWORD = "wanjiru", "demo password 2026"


def build_home(home: Path):
    """Generate, ingest, publish and enqueue a few regions, with some decisions already made."""
    os.environ["KANDA_HOME"] = str(home)
    os.environ.setdefault("KANDA_BUYER_SALT", "screenshot")
    from kanda.central.publish import publish_region
    from kanda.regional.ingest import ingest_landing
    from kanda.review.accounts import create_user
    from kanda.review.actor import Actor
    from kanda.review.service import ReviewFilter, enqueue_region, list_items, reject, save_edits
    from kanda.settings import load_settings
    from regions.synthetic.core import DirtMix
    from regions.synthetic.generate import generate

    settings = load_settings(home)
    settings.ensure_dirs()
    start = dt.date.today() - dt.timedelta(days=8)
    generate(
        landing_dir=settings.landing_dir,
        registry_dir=settings.registry_dir,
        regions=REGIONS,
        start=start,
        days=7,
        rows_per_region=1500,
        seed=11,
        dirt=DirtMix().scaled(2),
    )
    # one hand-written statement line whose amount has a letter O for a zero: the record the screenshots fix
    from tests.support.steward_files import MPESA_HEADER, mpesa_line

    statement = settings.landing("KE") / "statement-typo.csv"
    statement.parent.mkdir(parents=True, exist_ok=True)
    when = f"{start + dt.timedelta(days=3):%Y-%m-%d} 21:30:00"
    statement.write_text(MPESA_HEADER + mpesa_line("SKE0000002", when, "12,3O0.00") + "\n")
    for code in REGIONS:
        ingest_landing(settings, code)
        publish_region(settings, code)
        enqueue_region(settings, code)
    create_user(settings, STEWARD, PASSWORD, role="steward", regions=REGIONS)
    # A queue mid-way through a working day: a record being fixed, one rejected.
    actor = Actor("amina", "steward", None)
    for item in list_items(settings, actor, ReviewFilter(regions=frozenset({"KE"})), limit=20):
        if [r.column for r in item.rules] == ["amount_minor"]:
            save_edits(settings, actor, item.id, {"amount_minor": "90000"})
            break
    nigeria = list_items(settings, actor, ReviewFilter(regions=frozenset({"NG"})), limit=1)
    if nigeria:
        reject(settings, actor, nigeria[0].id, "test payment from the rail's sandbox")
    return settings


def pick_record(settings) -> int:
    """The record with the letter O in its amount (a clear example: one broken value, in Kenya)."""
    from kanda.review.actor import Actor
    from kanda.review.service import ReviewFilter, list_items

    actor = Actor("script", "viewer", None)
    (item,) = list_items(settings, actor, ReviewFilter(search="SKE0000002"), limit=1)
    return item.id


def shoot(settings, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from kanda.review.web.background import serving
    from kanda.web.app import create_app
    from kanda.web.browser import launch_chromium

    out.mkdir(parents=True, exist_ok=True)
    record_id = pick_record(settings)
    saved = []
    with serving(create_app(settings)) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1)
        page.goto(f"{base}/queue")
        page.fill("input[name=username]", STEWARD)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/queue")
        page.screenshot(path=out / "steward.png")
        saved.append(out / "steward.png")

        page.goto(f"{base}/records/{record_id}")
        page.fill("input[name=amount]", "12,300.00")
        page.click("button[value=check]")
        page.wait_for_selector("[data-testid=will-store-amount_minor]")
        page.locator("[data-testid=as-in-file] mark.odd").hover()
        page.screenshot(path=out / "steward-record.png", full_page=True)
        saved.append(out / "steward-record.png")

        page.goto(f"{base}/quality/KE")
        page.screenshot(path=out / "steward-quality.png", full_page=True)
        saved.append(out / "steward-quality.png")

        phone = browser.new_context(viewport={"width": 375, "height": 1000}, device_scale_factor=2).new_page()
        phone.goto(f"{base}/queue")
        phone.fill("input[name=username]", STEWARD)
        phone.fill("input[name=password]", PASSWORD)
        phone.click("button[type=submit]")
        phone.wait_for_url(f"{base}/queue")
        phone.screenshot(path=out / "steward-phone.png")
        saved.append(out / "steward-phone.png")
        phone.goto(f"{base}/records/{record_id}")
        phone.fill("input[name=amount]", "12,300.00")
        phone.click("button[value=check]")
        phone.wait_for_selector("[data-testid=will-store-amount_minor]")
        phone.screenshot(path=out / "steward-record-phone.png")
        saved.append(out / "steward-record-phone.png")
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="folder for the PNG files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanda-screenshot-") as tmp:
        settings = build_home(Path(tmp) / "home")
        for path in shoot(settings, args.out):
            print(path)


if __name__ == "__main__":
    main()
