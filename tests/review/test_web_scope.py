"""Region scope and hostile input on the steward pages, over HTTP against the real app (FastAPI's TestClient, the
real review database and Data Docs folder): what a steward of one region, or a careless one, tries."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kanda.review.accounts import create_user
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.web_helpers import PASSWORD, create_accounts, item, items, login, token


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


def _kenya_queue(settings: Settings, tmp_path: Path) -> dict[str, int]:
    """One M-Pesa statement whose rows all wait for review (their times cannot be read), one of them with a
    zero-width space in its receipt number as the file has it; item ids by receipt (without the odd character)."""
    from kanda.regional.ingest import ingest_files
    from kanda.review.service import enqueue_region
    from tests.support.files import make_files
    from tests.support.steward_files import MPESA_HEADER, mpesa_line

    make_files(settings, regions=["KE"], rows=50)
    path = tmp_path / "ke.csv"
    receipts = ["SKE0000011", "SKE0000012", "SKE00000\u200b13"]
    lines = [mpesa_line(receipt, "2026-10-05 25:61:00", "1,000.00") for receipt in receipts]
    path.write_text(MPESA_HEADER + "".join(x + "\n" for x in lines), encoding="utf-8")
    ingest_files(settings, "KE", [path])
    enqueue_region(settings, "KE")
    create_accounts(settings)
    return {i.transaction_id.replace("\u200b", ""): i.id for i in items(settings, "KE")}


def _edit(client: TestClient, item_id: int, **fields: str):
    return client.post(f"/records/{item_id}/edit", data=fields | {"csrf_token": token(client, f"/records/{item_id}")})


def test_an_id_typed_with_characters_no_one_can_see_is_refused_and_nothing_saved(settings: Settings, tmp_path: Path):
    """A receipt number pasted with a zero-width space, or typed with a Cyrillic or full-width letter, passed the
    contract and loaded as an event of its own: M-Pesa's next statement repeating the payment then counted it a
    second time instead of as a duplicate. Now such a typed id is refused beside its field and nothing is saved; an
    id the file itself carries that way can be left as it is while the time is fixed."""
    ids = _kenya_queue(settings, tmp_path)
    client = TestClient(create_app(settings))
    login(client, "wanjiru", PASSWORD)
    target = ids["SKE0000011"]
    fixed_time = {"occurred_at": "2026-10-05T10:00:00Z"}
    for op in ("check", "save", "approve"):
        for typed in ("SKE0000011\u200b", "SKE00000\u202e11", "SKE0000０11", "\u0405KE0000011"):
            page = _edit(client, target, op=op, transaction_id=typed, **fixed_time)
            assert page.status_code == 422, (op, typed)
            assert 'data-testid="error-transaction_id"' in page.text and "plain characters" in page.text
        page = _edit(client, target, op=op, product_id="KE-P０００01", **fixed_time)
        assert page.status_code == 422 and 'data-testid="error-product_id"' in page.text
    untouched = item(settings, target)
    assert untouched.status == "new" and untouched.edits == {}

    as_in_file = ids["SKE0000013"]
    kept = _edit(client, as_in_file, op="approve", transaction_id="SKE00000\u200b13", **fixed_time)
    assert kept.status_code == 200 and "Fix approved" in kept.text
    assert item(settings, as_in_file).status == "fixed"


def test_reasons_and_values_longer_than_the_audit_log_keeps_are_refused(settings: Settings, tmp_path: Path):
    """The audit log is append-only: a megabyte pasted into a reason (or posted by a script, once per record of a
    bulk action) stayed in it for good. A reason over 2,000 characters or a value over 256 is refused, with its
    length, and nothing changes."""
    ids = _kenya_queue(settings, tmp_path)
    client = TestClient(create_app(settings))
    login(client, "wanjiru", PASSWORD)
    target = ids["SKE0000011"]
    csrf = token(client, f"/records/{target}")
    essay = "The buyer called twice." * 100  # 2,300 characters

    for form in (
        (f"/records/{target}/reject", {"reason": essay}),
        (f"/records/{target}/waive", {"justification": essay}),
        (f"/records/{target}/edit", {"op": "approve", "note": essay, "occurred_at": "2026-10-05T10:00:00Z"}),
    ):
        page = client.post(form[0], data=form[1] | {"csrf_token": csrf})
        assert page.status_code == 400 and "has 2,300 characters; at most 2,000 are kept" in page.text, form[0]
    bulk = client.post(
        "/queue/bulk",
        data={"action": "reject", "reason": essay, "scope": "all", "status": "open", "csrf_token": csrf},
    )
    assert "Nothing was changed: the reason has 2,300 characters" in bulk.text
    long_value = _edit(client, target, op="save", channel="x" * 300)
    assert long_value.status_code == 422 and "300 characters; a field takes at most 256" in long_value.text
    assert {(i.status, i.edited) for i in items(settings, "KE")} == {("new", False)}
    assert all([h.action for h in item(settings, i).history] == ["enqueue"] for i in ids.values())

    done = client.post(f"/records/{target}/reject", data={"reason": essay[:2000], "csrf_token": csrf})
    assert done.status_code == 200 and item(settings, target).status == "rejected"
