"""The web application behind `kanda serve`, assembled from the features that serve pages or endpoints.

Each feature owns its routes, templates and middleware and exposes `install(app, settings)`; this module only
decides what is mounted. Steward pages (issue: data stewards review flagged records) live at `/`, the analysts'
read-only API (issue: analysts query the central rollups) under `/api`.
"""

from __future__ import annotations

from fastapi import FastAPI

from kanda.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh application bound to one data directory (tests make one per KANDA_HOME)."""
    from kanda.analyst import api, dictionary
    from kanda.reports import web as reports_web
    from kanda.review import web

    settings = settings or load_settings()
    app = FastAPI(
        title="kanda",
        summary="Steward review pages and the analysts' read-only API over the central rollups.",
        version="0.1.0",
    )
    app.state.settings = settings
    api.install(app, settings)
    dictionary.install(app, settings)
    web.install(app, settings)
    reports_web.install(app, settings)
    return app
