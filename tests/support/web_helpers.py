"""Helpers shared by the steward web tests: reading a page's CSRF token and signing in as a browser would."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token(client: TestClient, page: str = "/login") -> str:
    """The CSRF token a form on `page` carries (every form of a session carries the same one)."""
    found = TOKEN.search(client.get(page).text)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def login(client: TestClient, name: str, password: str, *, next_url: str = "/") -> httpx.Response:
    return client.post(
        "/login", data={"username": name, "password": password, "next": next_url, "csrf_token": token(client)}
    )


PASSWORD = "correct horse battery"


def build_queue(settings, regions: tuple[str, ...] = ("KE", "NG"), *, publish: bool = False) -> None:
    """A real queue: dirty native files generated, ingested (quarantining rows), optionally published, enqueued;
    and the accounts of `create_accounts`."""
    from kanda.central.publish import publish_region
    from kanda.regional.ingest import ingest_landing
    from kanda.review.service import enqueue_region
    from tests.support.files import make_files

    make_files(settings, regions=list(regions), rows=300, days=3)
    for code in regions:
        ingest_landing(settings, code)
        if publish:
            publish_region(settings, code)
        enqueue_region(settings, code)
    create_accounts(settings)


def create_accounts(settings) -> None:
    """`wanjiru` (Kenya steward), `amina` (steward of every region), `otieno` (viewer of every region)."""
    from kanda.review.accounts import create_user

    create_user(settings, "wanjiru", PASSWORD, role="steward", regions=["KE"])
    create_user(settings, "amina", PASSWORD, role="steward", regions=None)
    create_user(settings, "otieno", PASSWORD, role="viewer", regions=None)


def items(settings, region: str, *, rule: str | None = None, column: str | None = None) -> list:
    """The region's review items (optionally those whose only failing rule is `rule` on `column`), oldest first."""
    from kanda.review.actor import Actor
    from kanda.review.service import ReviewFilter, list_items

    found = list_items(settings, Actor("test", "viewer", None), ReviewFilter(regions=frozenset({region})), limit=1000)
    if rule is None:
        return found
    return [i for i in found if [(r.rule, r.column) for r in i.rules] == [(rule, column)]]


def item(settings, item_id: int):
    from kanda.review.actor import Actor
    from kanda.review.service import get_item

    return get_item(settings, Actor("test", "viewer", None), item_id)
