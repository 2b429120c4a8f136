"""Helpers for the analysts' query paths: publish a few regions, an API app and an authenticated client."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kanda.analyst import api
from kanda.analyst.keys import KeyStore
from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files

REGIONS = ["EG", "KE", "NG"]


def publish_regions(settings: Settings, regions: list[str] = REGIONS, **files: object) -> None:
    make_files(settings, regions=regions, **files)
    for code in regions:
        ingest_landing(settings, code)
        publish_region(settings, code)


def api_app(settings: Settings, limits: api.Limits | None = None) -> FastAPI:
    """The API routes alone, as `kanda serve` mounts them (the steward pages are another feature's)."""
    app = FastAPI()
    app.include_router(api.build_router(settings, KeyStore(settings.app_db_url), limits or api.Limits.from_env()))
    return app


def client_for(settings: Settings, name: str, limits: api.Limits | None = None) -> TestClient:
    token = KeyStore(settings.app_db_url).create(name)
    return TestClient(api_app(settings, limits), headers={"Authorization": f"Bearer {token}"})
