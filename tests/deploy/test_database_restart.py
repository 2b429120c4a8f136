"""The analysts' API across a restart of the PostgreSQL server holding the catalog and the app database.

A restart ends every session; the API process keeps its connection pools for its whole life, and each pooled
connection was then dead. Ending every session of the two databases is what the restart does to them, without
stopping a server that other databases share.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_landing
from tests.deploy.conftest import Installation
from tests.support.analyst import client_for
from tests.support.files import make_files
from tests.support.postgres import end_sessions

pytestmark = pytest.mark.postgres
TOTALS = "SELECT region, count(*) AS days FROM rollups.region_daily GROUP BY 1 ORDER BY 1"


def publish_from_host(installation: Installation, home: Path, code: str, monkeypatch: pytest.MonkeyPatch) -> str:
    settings = installation.host(home, monkeypatch, KANDA_REGIONS=code)
    make_files(settings, regions=[code], rows=200, days=2)
    ingest_landing(settings, code)
    result = publish_region(settings, code)
    assert result.published
    return result.publish_id


def end_every_session(url: str) -> None:
    ended = end_sessions(url)
    assert ended and all(ended)  # the API's pooled connections were there, and are gone


def test_the_api_answers_the_first_requests_after_the_database_restarted(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Each API worker's first request after a restart failed its key check with a 500, and its first request for a
    newer publication failed again on the catalog; the pools now check a connection before handing it out."""
    publish_from_host(installation, tmp_path / "ke", "KE", monkeypatch)
    central = installation.host(tmp_path / "central", monkeypatch)
    client = client_for(central, "analyst")
    before = client.post("/api/sql", json={"sql": TOTALS})
    assert before.status_code == 200, before.text

    for url in (installation.catalog_url, installation.app_db_url):
        end_every_session(url)
    newest = publish_from_host(installation, tmp_path / "ng", "NG", monkeypatch)
    installation.host(tmp_path / "central", monkeypatch)

    after = client.post("/api/sql", json={"sql": TOTALS})
    assert after.status_code == 200, after.text
    assert after.json()["publication"]["publish_id"] == newest
    assert [row[0] if isinstance(row, list) else row["region"] for row in after.json()["rows"]] == ["KE", "NG"]
