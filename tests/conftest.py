"""Shared fixtures: every test gets its own KANDA_HOME, so stores, catalogs and locks never leak between tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kanda.settings import Settings, load_settings
from kanda.synthetic.core import DirtMix
from kanda.synthetic.generate import GeneratedFile, generate

START = dt.date(2026, 10, 5)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KANDA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KANDA_BUYER_SALT", "test-salt")
    monkeypatch.delenv("KANDA_CATALOG_URL", raising=False)
    monkeypatch.delenv("KANDA_WAREHOUSE", raising=False)
    monkeypatch.setenv("KANDA_BATCH_ROWS", "400")
    current = load_settings()
    current.ensure_dirs()
    return current


def make_files(
    settings: Settings,
    *,
    regions: list[str] | None = None,
    rows: int = 600,
    days: int = 3,
    seed: int = 7,
    dirt: DirtMix | None = None,
    start: dt.date = START,
) -> list[GeneratedFile]:
    """Generate native files into the landing folders and the registry, as `kanda generate` does."""
    return generate(
        landing_dir=settings.landing_dir,
        registry_dir=settings.registry_dir,
        regions=regions,
        start=start,
        days=days,
        rows_per_region=rows,
        seed=seed,
        dirt=dirt or DirtMix().scaled(3),
    )


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright. CI installs Chromium and must run these tests: there, a missing
    browser fails; on a developer machine without Chromium the browser tests are skipped with the fix."""
    import os

    from kanda.web.browser import chromium_path, launch_chromium

    if chromium_path() is None:
        message = "no Chromium: `apt-get install chromium` (as .ci/run does) or set KANDA_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
