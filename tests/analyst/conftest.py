"""Fixtures for the analysts' query paths: one published installation shared by read-only tests, an API client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kanda.analyst import api
from kanda.analyst.keys import KeyStore
from kanda.ingest import ingest_landing
from kanda.publish import publish_region
from kanda.settings import Settings, load_settings
from tests.conftest import make_files

REGIONS = ["EG", "KE", "NG"]


def publish_regions(settings: Settings, regions: list[str] = REGIONS, **files: object) -> None:
    make_files(settings, regions=regions, **files)
    for code in regions:
        ingest_landing(settings, code)
        publish_region(settings, code)


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


def api_app(settings: Settings, limits: api.Limits | None = None) -> FastAPI:
    """The API routes alone, as `kanda serve` mounts them (the steward pages are another feature's)."""
    app = FastAPI()
    app.include_router(api.build_router(settings, KeyStore(settings.app_db_url), limits or api.Limits.from_env()))
    return app


def client_for(settings: Settings, name: str, limits: api.Limits | None = None) -> TestClient:
    token = KeyStore(settings.app_db_url).create(name)
    return TestClient(api_app(settings, limits), headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="package")
def client(published: Settings) -> TestClient:
    return client_for(published, "analyst-tests")
