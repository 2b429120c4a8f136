"""Fixtures for the analysts' query paths: one published installation shared by read-only tests, an API client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kanda.settings import Settings, load_settings
from tests.support.analyst import REGIONS, client_for, publish_regions  # noqa: F401


@pytest.fixture(scope="package")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Three regions published once, for every test that only reads (tests that publish make their own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(tmp_path_factory.mktemp("analyst") / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        mp.delenv("KANDA_APP_DB_URL", raising=False)
        current = load_settings()
        current.ensure_dirs()
        publish_regions(current, rows=600, days=3)
        yield current


@pytest.fixture(scope="package")
def client(published: Settings) -> TestClient:
    return client_for(published, "analyst-tests")


@pytest.fixture(scope="package")
def served(published: Settings) -> Iterator[str]:
    """`kanda serve --workers 2` as a real process on a free port of 127.0.0.1 over the published installation."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KANDA_HOME": str(published.home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "kanda.cli", "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # starting two workers on a busy machine: wait for readiness, not for a time
            if process.poll() is not None:
                pytest.fail(f"kanda serve exited: {process.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("kanda serve never answered /healthz")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
