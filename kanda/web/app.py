"""The web application behind `kanda serve`, assembled from the features that serve pages or endpoints.

Each feature owns its routes, templates and middleware and exposes `install(app, settings)`; this module only
decides what is mounted. Steward pages (issue: data stewards review flagged records) live at `/`, the analysts'
read-only API (issue: analysts query the central rollups) under `/api`, its docs at `/docs` (Swagger UI) and
`/redoc`. The docs' scripts and styles come with kanda (the `fastapi-offline` package ships Swagger UI and ReDoc,
with their licences), not from a CDN, so the docs work on a machine without internet.

`kanda serve --workers N` runs N processes, each calling `create_app()` (uvicorn's factory mode): every worker has
its own readers and answer cache, and they share nothing but the files on disk.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from kanda.settings import Settings, load_settings

#: Where the vendored Swagger UI and ReDoc files are served from.
DOCS_STATIC = "/static/docs"


class Health(BaseModel):
    status: str = Field(description="`ok` when this worker answers.")
    worker: int = Field(description="The process id of the worker that answered (`kanda serve --workers N`).")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh application bound to one data directory (tests make one per KANDA_HOME); with no argument, the one
    the environment names, as each `kanda serve` worker process builds it."""
    from kanda.analyst import api
    from kanda.reports import web as reports_web
    from kanda.review import web

    settings = settings or load_settings()
    app = FastAPIOffline(
        title="kanda",
        summary="Steward review pages and the analysts' read-only API over the central rollups.",
        version="0.1.0",
        static_url=DOCS_STATIC,
    )
    app.state.settings = settings

    @app.get("/healthz", tags=["health"], summary="Whether this worker answers", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok", worker=os.getpid())

    api.install(app, settings)
    web.install(app, settings)
    reports_web.install(app, settings)
    return app
