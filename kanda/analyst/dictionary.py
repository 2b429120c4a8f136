"""The data dictionary served by `kanda serve`: every published table and column, and the rules they follow.

Like dbt docs, it is generated from the models' own metadata rather than written beside them: tables, grains, keys,
column descriptions, units and required flags come from `warehouse_models` (models.yml), the day rule, the USD rule
and the payment rates from `warehouse_models.rules()` (rules.md), and `rollups.publications` from the catalog's own
column docs. The same text is on the Iceberg fields (`doc`) and in the BI snapshot (DuckDB comments), so whichever
tool an analyst opens says the same thing.

`/dictionary` (HTML) and `/dictionary.json` are public, like `/docs` and `/openapi.json`: they describe the tables
and hold no data, and an analyst deciding whether to ask for an API key should be able to read them first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from kanda.central.catalog import PUBLICATIONS_SCHEMA
from kanda.central.publication import (
    NAMESPACE,
    PUBLICATION_DOCS,
    PUBLICATIONS,
    PUBLICATIONS_DESCRIPTION,
)
from kanda.settings import Settings
from warehouse_models import model, published, rules

HERE = Path(__file__).parent


@cache
def dictionary() -> dict[str, object]:
    """Every published table (the rollups, then `publications`) with its columns, and the rules as Markdown."""
    tables = []
    for name, keys in published().items():
        described = model(name)
        tables.append(
            {
                "name": f"{NAMESPACE}.{name}",
                "description": described.description,
                "grain": described.grain,
                "keys": list(keys),
                "columns": [
                    {
                        "name": column.name,
                        "description": column.description,
                        "unit": column.unit,
                        "required": column.required,
                        "key": column.name in keys,
                    }
                    for column in described.columns
                ],
            }
        )
    tables.append(
        {
            "name": f"{NAMESPACE}.{PUBLICATIONS}",
            "description": PUBLICATIONS_DESCRIPTION,
            "grain": "one row per publish",
            "keys": ["publish_id"],
            "columns": [
                {
                    "name": field.name,
                    "description": PUBLICATION_DOCS[field.name],
                    "unit": None,
                    # A table's snapshot column is NULL in publications made before that table existed.
                    "required": not field.nullable and not field.name.endswith("_snapshot"),
                    "key": field.name == "publish_id",
                }
                for field in PUBLICATIONS_SCHEMA
            ],
        }
    )
    return {"tables": tables, "rules": dict(rules())}


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def render_html() -> str:
    """The dictionary as one self-contained page (no external assets: it is read offline and behind firewalls)."""
    markdown = MarkdownIt("commonmark").enable("table")
    data = dictionary()
    # The rules are the package's own Markdown (rules.md), not user input: their HTML is trusted.
    rendered_rules = {title: Markup(markdown.render(text)) for title, text in data["rules"].items()}
    return _environment().get_template("dictionary.html").render(tables=data["tables"], rules=rendered_rules)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount `/dictionary` and `/dictionary.json` (public: descriptions only, no data)."""
    router = APIRouter(tags=["dictionary"])

    @router.get("/dictionary", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(render_html())

    @router.get("/dictionary.json", summary="Every published table and column: description, grain, keys, units")
    def as_json() -> dict[str, object]:
        return dictionary()

    app.include_router(router)
