"""Steward pages served by `kanda serve`: sign-in, the review queue, record detail and fixes, bulk actions, and
a per-region quality page.

Everything here is a thin layer over the review service (`kanda.review.service`), which enforces roles and region
scope itself; the pages additionally hide what an account may not do. Sessions and CSRF protection are installed
for these routes only in effect: the analysts' `/api` never reads a session and is never asked for a CSRF token.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from kanda.review.web.render import HERE, render
from kanda.review.web.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    LoginRequired,
    PageError,
    SignedInOnly,
    login_url,
    signed_in_account,
)
from kanda.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the steward pages, sessions and CSRF protection."""
    from kanda.checks.gx_runner import data_docs_dir
    from kanda.review.web import login, pages, quality

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=False,  # `kanda serve` speaks plain HTTP on localhost; put TLS in front for anything else
    )
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(PageError, _error_page)
    app.mount("/static/steward", StaticFiles(directory=HERE / "static"), name="steward_static")
    app.mount(
        "/data-docs",
        SignedInOnly(StaticFiles(directory=data_docs_dir(settings), html=True, check_dir=False), settings),
        name="data_docs",
    )
    app.include_router(login.router, include_in_schema=False)
    app.include_router(pages.router, include_in_schema=False)
    app.include_router(quality.router, include_in_schema=False)


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_url), status_code=303)


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    account = signed_in_account(request.app.state.settings, request.session)
    return render(request, "error.html", account, status_code=exc.status_code, title=exc.title, message=exc.message)
