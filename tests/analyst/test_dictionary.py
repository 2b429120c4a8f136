"""The data dictionary `kanda serve` shows analysts: every published table and column, described, with units and
the day and USD rules, generated from the models' metadata; readable on a phone and on a desktop."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kanda.central.publication import PUBLICATION_DOCS
from kanda.central.query import run_query
from kanda.review.web.background import serving
from kanda.settings import Settings
from kanda.web.app import create_app
from warehouse_models import column_docs, model, rules
from warehouse_models import published as rollups

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(published: Settings) -> TestClient:
    return TestClient(create_app(published))


def test_every_published_table_and_column_is_described_with_its_unit(site: TestClient, published: Settings):
    answer = site.get("/dictionary.json")  # no API key: it describes tables and holds no data
    assert answer.status_code == 200
    tables = {t["name"]: t for t in answer.json()["tables"]}
    assert list(tables) == [*(f"rollups.{name}" for name in rollups()), "rollups.publications"]
    for name, keys in rollups().items():
        table = tables[f"rollups.{name}"]
        assert table["description"] == model(name).description
        assert table["grain"] == model(name).grain and table["keys"] == list(keys)
        # The dictionary lists what the published table really has, in its order.
        real = run_query(published, f"SELECT * FROM rollups.{name} LIMIT 0").column_names
        assert [c["name"] for c in table["columns"]] == real
        for column in table["columns"]:
            declared = column_docs(name)[column["name"]]
            assert column["description"] and column["description"] == declared.description
            assert (column["unit"], column["required"]) == (declared.unit, declared.required)
            if column["name"].endswith("_minor"):
                assert column["unit"] in ("minor units of the row's currency", "USD cents"), column["name"]
    publications = tables["rollups.publications"]
    real = run_query(published, "SELECT * FROM rollups.publications LIMIT 0").column_names
    assert [c["name"] for c in publications["columns"]] == real
    assert all(c["description"] == PUBLICATION_DOCS[c["name"]] for c in publications["columns"])
    required = {c["name"] for c in publications["columns"] if c["required"]}
    assert required == {"publish_id", "region", "published_at", "days", "rows"}


class _Text(HTMLParser):
    """The page's text, and the text of each `data-column` row per `data-table` section."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.rows: dict[tuple[str, str], list[str]] = {}
        self._table = ""
        self._row: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-table" in found:
            self._table = found["data-table"] or ""
        if "data-column" in found:
            self._row = (self._table, found["data-column"] or "")
            self.rows[self._row] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row:
            self.rows[self._row].append(data)


def test_the_page_shows_each_column_with_description_unit_and_the_rules(site: TestClient):
    page = site.get("/dictionary")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), "the page loads nothing from elsewhere"
    parsed = _Text()
    parsed.feed(page.text)
    for name in rollups():
        for column in column_docs(name).values():
            row = " ".join(" ".join(parsed.rows[(f"rollups.{name}", column.name)]).split())
            assert column.description in row, (name, column.name)
            if column.unit:
                assert f"unit: {column.unit}" in row, (name, column.name)
            assert ("never" if column.required else "may be") in row
    text = " ".join(" ".join(parsed.text).split())
    assert "halves rounded away from zero" in text  # the USD rule
    assert "the region's local calendar day" in text  # the day rule
    for title in ("The day rule", "The USD rule"):
        assert title in text


def test_the_rules_served_are_the_ones_docs_models_md_states():
    """rules.md is what the dictionary serves; docs/models.md repeats it for readers of the repository."""
    docs = (ROOT / "docs" / "models.md").read_text()
    assert {"The day rule", "The USD rule"} <= set(rules())
    for title, text in rules().items():
        assert f"## {title}\n\n{text}\n" in docs, f"docs/models.md and warehouse_models/rules.md differ on {title!r}"


WIDTHS = (375, 1280)


@pytest.fixture(scope="module")
def served(published: Settings):
    with serving(create_app(published)) as base:
        yield base


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_dictionary_reads_on_a_phone_and_a_desktop(browser, served: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(served + "/dictionary")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px window"
        for name in (*rollups(), "publications"):
            heading = page.locator(f"section[data-table='rollups.{name}'] h2")
            heading.scroll_into_view_if_needed()
            assert heading.is_visible()
        row = page.locator("section[data-table='rollups.creator_daily'] tr[data-column='net_usd_minor']")
        row.scroll_into_view_if_needed()
        assert "unit: USD cents" in row.inner_text()
        box = row.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= inner
        page.get_by_role("link", name="The USD rule").click()
        assert page.locator("#the-usd-rule").is_visible()
    finally:
        context.close()
