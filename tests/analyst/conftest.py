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
