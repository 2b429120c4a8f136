"""The unsubscribe link of creators' reports, answered by `kanda serve`: `/reports/unsubscribe/<token>`.

- `GET` shows a page with one button; it changes nothing, because mail scanners and link previews open every
  link in a message, and a creator must not lose their reports to a virus scanner.
- `POST` records the unsubscribe. It is also what a mail client's own button sends (RFC 8058 one-click:
  `List-Unsubscribe=One-Click` in the body, no cookies, no redirects), so it needs no session and no CSRF token:
  the signed token in the path is the only credential, and it can only ever stop (or restart) reports.
- After unsubscribing the page offers to send the reports again (a click by mistake is undone in one click).

The page speaks the language the report was written in (it travels in the token).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from kanda.reports.delivery import DeliveryLog
from kanda.reports.i18n import resolve_language
from kanda.reports.mailing import UNSUBSCRIBE_PATH, read_unsubscribe_token
from kanda.reports.render import environment
from kanda.settings import Settings
from regions import all_regions

#: The token is a credential in the URL: keep it out of caches, search engines and Referer headers.
_PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the unsubscribe page and its one-click endpoint."""
    log = DeliveryLog(settings)
    router = APIRouter()

    def page(language: str, state: str, creator_id: str | None, status_code: int = 200) -> HTMLResponse:
        html = (
            environment(language)
            .get_template("unsubscribe.html")
            .render(lang=language, state=state, creator=creator_id)
        )
        return HTMLResponse(html, status_code=status_code, headers=_PRIVATE)

    def creator_of(token: str) -> tuple[str, str, str] | None:
        found = read_unsubscribe_token(settings.secret_key, token)
        if found is None:
            return None
        creator_id, language = found
        region = creator_id.split("-", 1)[0]
        if region not in all_regions():
            return None
        return creator_id, region, resolve_language(language)

    @router.get(UNSUBSCRIBE_PATH + "{token}", response_class=HTMLResponse)
    def confirm(token: str) -> HTMLResponse:
        found = creator_of(token)
        if found is None:
            return page("en", "invalid", None, 404)
        creator_id, region, language = found
        state = "unsubscribed" if creator_id in log.unsubscribed(region) else "confirm"
        return page(language, state, creator_id)

    @router.post(UNSUBSCRIBE_PATH + "{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        found = creator_of(token)
        if found is None:
            return page("en", "invalid", None, 404)
        creator_id, region, language = found
        form = await request.form()
        if form.get("action") == "resubscribe":
            log.resubscribe(creator_id)
            return page(language, "resubscribed", creator_id)
        via = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "page"
        log.unsubscribe(region, creator_id, via)
        return page(language, "unsubscribed", creator_id)

    app.include_router(router, include_in_schema=False)
