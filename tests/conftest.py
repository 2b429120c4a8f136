"""Shared fixtures: every test gets its own KANDA_HOME, so stores, catalogs and locks never leak between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanda.settings import Settings, load_settings


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
