"""Page rendering: one Jinja2 environment for the steward templates, and the headers every page carries.

Pages are plain server-rendered HTML; the only script is one small file of our own (select all rows, keyboard
shortcuts), and every page works without it. The
Content-Security-Policy therefore allows nothing but this site's own files, which also neuters any markup that
slipped into a raw record (Jinja2 escapes it anyway).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kanda.review.accounts import Account
from kanda.review.web.reveal import has_oddities, reveal
from kanda.review.web.security import CSRF_FIELD, csrf_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["reveal"] = reveal
templates.env.tests["odd"] = has_oddities

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    request: Request, template: str, account: Account | None = None, *, status_code: int = 200, **context: object
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "account": account,
            "can_change": account is not None and account.role == "steward",
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response
