"""The web application behind `kanda serve`, assembled from the features that serve pages or endpoints.

Each feature owns its routes, templates and middleware and exposes `install(app, settings)`; this module only
decides what is mounted. Steward pages (issue: data stewards review flagged records) live at `/`, the analysts'
read-only API (issue: analysts query the central rollups) under `/api`, its docs at `/docs` (Swagger UI) and
`/redoc` (ReDoc).

The docs' scripts and styles are files of the `fastapi-offline` package (Swagger UI, Apache 2.0; ReDoc, MIT), served
by kanda itself, not fetched from a CDN: FastAPI's default docs page is blank on a machine without internet. The
docs pages also carry a Content-Security-Policy that lets them load nothing from another host (ReDoc's bundle
would otherwise fetch a logo from its vendor), so a closed network never even sees an attempt.

`kanda serve --workers N` runs N processes, each calling `create_app()` (uvicorn's factory mode): every worker has
its own readers and answer cache, and they share nothing but the files on disk.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from kanda.settings import Settings, load_settings

#: Where the shipped Swagger UI and ReDoc files are served from.
DOCS_STATIC = "/static/docs"
DOCS_FILES = Path(fastapi_offline.__file__).parent / "static"
#: Swagger UI starts itself with an inline script and ReDoc styles itself inline; everything else is this site's.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class Health(BaseModel):
    status: str = Field(description="`ok` when this worker answers.")
    worker: int = Field(description="The process id of the worker that answered (`kanda serve --workers N`).")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh application bound to one data directory (tests make one per KANDA_HOME); with no argument, the one
    the environment names, as each `kanda serve` worker process builds it."""
    from kanda.analyst import api, dictionary
    from kanda.reports import web as reports_web
    from kanda.review import web

    if settings is None:  # a `kanda serve` worker process: it answers analyst SQL
        from kanda.memory_cap import cap_address_space

        settings = load_settings()
        cap_address_space(settings.analyst_memory, settings.duckdb_memory_limit)
    app = FastAPI(
        title="kanda",
        summary="Steward review pages and the analysts' read-only API over the central rollups.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _install_docs(app)

    @app.get("/healthz", tags=["health"], summary="Whether this worker answers", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok", worker=os.getpid())

    api.install(app, settings)
    dictionary.install(app, settings)
    web.install(app, settings)
    reports_web.install(app, settings)
    return app


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, except that a value JSON cannot hold is given as text: its handler echoes each refused
    value, and a `NaN` or `Infinity` in a request body (Python's json reads both) made the answer unwritable: 500."""
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _install_docs(app: FastAPI) -> None:
    app.mount(DOCS_STATIC, StaticFiles(directory=DOCS_FILES), name="docs_static")
    redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="kanda API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            oauth2_redirect_url=f"{root}{redirect}",
            # No badge from the public validator service: it is another host, and it would see the spec's URL.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get(redirect, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="kanda API",
            redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(DOCS_HEADERS)
        return page
