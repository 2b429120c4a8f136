"""Headless Chromium for browser tests and README screenshots, with the flags this closed network needs.

Playwright's own browser download is not reachable here, so we drive the system Chromium (Debian's package,
installed by `.ci/run`). Without the background-networking flags Chromium keeps dialling Google's hosts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> Path | None:
    """`KANDA_CHROMIUM`, else the first Chromium on PATH; None when there is none."""
    given = os.environ.get("KANDA_CHROMIUM")
    if given:
        return Path(given)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Chromium; raises with the fix when no browser is installed."""
    path = chromium_path()
    if path is None:
        raise RuntimeError(
            "no Chromium found: install Debian's `chromium` package (as .ci/run does) or set KANDA_CHROMIUM"
        )
    return playwright.chromium.launch(executable_path=str(path), headless=True, args=CHROMIUM_FLAGS)
