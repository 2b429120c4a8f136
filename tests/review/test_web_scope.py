"""Region scope and hostile input on the steward pages, over HTTP against the real app (FastAPI's TestClient, the
real review database and Data Docs folder): what a steward of one region, or a careless one, tries."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kanda.review.accounts import create_user
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.web_helpers import PASSWORD, create_accounts, login


def _client(settings: Settings, name: str) -> TestClient:
    client = TestClient(create_app(settings))
    assert login(client, name, PASSWORD).status_code == 200
    return client


def test_a_data_docs_result_page_is_for_stewards_of_every_region_it_shows(settings: Settings):
    """A validation result's Data Docs page lists failing values of the rows of the regions it validated (its folder
    names them: `validations/<suite>/KE+NG/...`). Any signed-in account could read any of them, so a Nigeria steward
    read Kenya's rows there; now such a page is a 404 unless the account may see every region it covers."""
    from kanda.checks.gx_runner import data_docs_dir

    site = data_docs_dir(settings)
    pages = {
        "KE": "validations/sale_events/KE/20261005T101010.000000Z/ke.html",
        "NG": "validations/sale_events/NG/20261005T101010.000000Z/ng.html",
        "KE+NG": "validations/central_rollups/KE+NG/20261005T101010.000000Z/both.html",
    }
    for regions, page in pages.items():
        (site / page).parent.mkdir(parents=True)
        (site / page).write_text(f"<html><body>unexpected values of {regions}: SK00000027</body></html>")
    (site / "index.html").write_text("<html><body>kanda Data Docs</body></html>")
    create_accounts(settings)
    create_user(settings, "chidi", PASSWORD, role="steward", regions=["NG"])

    nigeria = _client(settings, "chidi")
    assert "kanda Data Docs" in nigeria.get("/data-docs/index.html").text  # the site's index shows no rows
    assert "unexpected values of NG" in nigeria.get(f"/data-docs/{pages['NG']}").text
    for regions in ("KE", "KE+NG"):
        refused = nigeria.get(f"/data-docs/{pages[regions]}")
        assert refused.status_code == 404 and "SK00000027" not in refused.text, regions
    for detour in (f"/data-docs//{pages['KE']}", f"/data-docs/static/%2E%2E/{pages['KE']}"):
        refused = nigeria.get(detour)
        assert refused.status_code == 404 and "SK00000027" not in refused.text, detour
    assert nigeria.get(f"/data-docs/{pages['KE'].replace('/KE/', '/ke/')}").status_code == 404  # no such folder

    kenya = _client(settings, "wanjiru")
    assert kenya.get(f"/data-docs/{pages['KE']}").status_code == 200
    assert kenya.get(f"/data-docs/{pages['KE+NG']}").status_code == 404
    for everyone in ("amina", "otieno"):  # a steward and a viewer of every region
        client = _client(settings, everyone)
        assert all(client.get(f"/data-docs/{page}").status_code == 200 for page in pages.values())
