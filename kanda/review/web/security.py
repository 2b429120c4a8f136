"""Who is signed in, and whether a form really came from our own page.

Sessions are Starlette's signed cookie (itsdangerous, keyed by the installation's `secret_key`): it holds only the
user name, a stamp of the password in use when they signed in, a random session id and the session's CSRF token,
never a password or a role. The session id names a row of `account_sessions` in the application database, which
sign-out deletes (as do a password change and deactivation): a cookie kept or copied from before is refused, not
merely forgotten by the browser. The account and its session row are read again on every request, so deactivating
a user, changing their password, role or regions takes effect at their next click rather than when the cookie
expires.

CSRF: every form carries the session's token in a hidden field, and every POST to a steward route is refused
(403) unless the field matches the session. `SameSite=Lax` cookies already stop most cross-site posts; the token
also covers old browsers and same-site subdomains. Only the steward routes check it: the analysts' `/api` uses
API keys, not cookies, and never sees a session.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Receive, Scope, Send

from kanda.review.accounts import Account, close_session, get_user, open_session, session_is_open, session_stamp
from kanda.settings import Settings

SESSION_COOKIE = "kanda_session"
#: Idle timeout: Starlette re-issues the cookie on each response, so a session ends after this long without a click.
SESSION_MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form."""

    def __init__(self, next_url: str = "/") -> None:
        self.next_url = next_url


class PageError(Exception):
    """An error shown as a page (403 forbidden, 404 not found) rather than FastAPI's JSON."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        self.status_code = status_code
        self.title = title
        self.message = message


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created with the session (also before sign-in: the login form needs one)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's; a 403 page otherwise."""
    form = await request.form()
    expected = request.session.get("csrf")
    given = form.get(CSRF_FIELD)
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, expected):
        raise PageError(
            403,
            "Form refused",
            "This form was sent without a valid security token (CSRF), so nothing was changed. "
            "It may have come from another site, or your session may have expired: reload the page and try again.",
        )
    return form


def sign_in(request: Request, account: Account) -> None:
    """A fresh session for the account: the old one (and its CSRF token) is dropped, so a session id planted
    before sign-in is useless after it."""
    sign_out(request)
    session_id = open_session(request.app.state.settings, account.name, idle=dt.timedelta(seconds=SESSION_MAX_AGE))
    request.session.update({"user": account.name, "stamp": session_stamp(account), "sid": session_id})
    csrf_token(request)


def sign_out(request: Request) -> None:
    """End the session on the server too, so that a copy of its cookie no longer signs anyone in."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        close_session(request.app.state.settings, session_id)
    request.session.clear()


def signed_in_account(settings: Settings, session: dict) -> Account | None:
    """The account behind a session, if the session is still open (not signed out), the account still active and
    its password unchanged since sign-in."""
    name = session.get("user")
    session_id = session.get("sid")
    if not name or not isinstance(session_id, str) or not session_is_open(settings, session_id, name):
        return None
    account = get_user(settings, name)
    if account is None or not account.active or session.get("stamp") != session_stamp(account):
        return None
    return account


def current_account(request: Request) -> Account:
    """FastAPI dependency of every steward page: the signed-in account, or a redirect to /login."""
    account = signed_in_account(request.app.state.settings, request.session)
    if account is None:
        if request.session.get("user"):
            sign_out(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method == "GET" else "/")
    return account


#: Parameter types of the routes: the signed-in account, and a posted form whose CSRF token was checked.
SignedIn = Annotated[Account, Depends(current_account)]
CheckedForm = Annotated[FormData, Depends(checked_form)]


def require_steward(account: Account) -> None:
    if account.role != "steward":
        raise PageError(403, "Read-only account", f"{account.name} is a viewer: viewers can look but not change.")


def safe_next(url: str | None) -> str:
    """Only a local path may follow sign-in; anything else (another host, `//evil`) goes to the queue."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def login_url(next_url: str) -> str:
    return "/login" if next_url == "/" else f"/login?next={quote(next_url, safe='')}"


def data_docs_regions(relative: str) -> frozenset[str] | None:
    """The regions whose rows a Data Docs page shows, from its path: a validation result's page lives under
    `validations/<suite>/<regions joined by +>/...` (`kanda.checks.gx_runner`), and shows up to 20 failing values
    of those regions' rows. None for the site's other pages (the index, suites, static files), which show none."""
    parts = posixpath.normpath("/" + relative).strip("/").split("/")
    if len(parts) < 3 or parts[0] != "validations":
        return None
    return frozenset(parts[2].upper().split("+"))


class SignedInOnly:
    """Wraps a static files app (the Data Docs site) so that only signed-in users can read it, and a validation
    result's page only those who may see every region it covers: its failing values are rows of those regions, and a
    Nigeria steward may not read Kenya's rows there any more than on the queue. Such a page answers 404, like a
    record out of scope."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        account = signed_in_account(self.settings, scope.get("session") or {}) if scope["type"] == "http" else None
        if scope["type"] == "http" and account is None:
            from starlette.responses import RedirectResponse

            # Starlette keeps the full path in a mounted app's scope (the mount prefix is also in root_path).
            await RedirectResponse(login_url(scope["path"]), status_code=303)(scope, receive, send)
            return
        if account is not None:
            path = scope["path"]
            root = scope.get("root_path", "")
            regions = data_docs_regions(path[len(root) :] if root and path.startswith(root) else path)
            if regions is not None and not all(account.actor.can_see(code) for code in regions):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
                return
        folder = getattr(self.app, "directory", None)
        if scope["type"] == "http" and folder is not None and not Path(folder).is_dir():
            # no suite has run on this host yet (or its results are on the region's host): say so, not a 500
            from starlette.responses import PlainTextResponse

            message = "No Data Docs on this host yet: run `kanda expectations` here first (docs/deployment.md)."
            await PlainTextResponse(message, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
