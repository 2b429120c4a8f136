"""Sign-in and sign-out pages.

Password guessing is slowed twice over: each attempt costs an argon2 verification, and after `MAX_FAILURES`
failed attempts on one user name within `WINDOW` that name is refused (429) until the window has passed, whatever
the password. An attempt is counted before its password is checked (`claim_sign_in`), so guesses sent at the same
moment get no more tries than guesses sent one by one. The count is kept in the application database, so every
worker and replica of `kanda serve` counts the same failures, and a restart does not reset it.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kanda.review.accounts import authenticate, claim_sign_in, clear_failed_sign_ins, get_user
from kanda.review.web.render import render
from kanda.review.web.security import CheckedForm, safe_next, sign_in, sign_out, signed_in_account

router = APIRouter()

MAX_FAILURES = 5
#: Failed sign-ins are counted per name over this window, across every worker (`kanda.review.accounts`).
WINDOW = dt.timedelta(minutes=15)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    if signed_in_account(request.app.state.settings, request.session) is not None:
        return RedirectResponse(safe_next(next), status_code=303)  # type: ignore[return-value]
    return render(request, "login.html", next=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: CheckedForm) -> HTMLResponse:
    settings = request.app.state.settings
    username = str(form.get("username") or "")
    name = username.strip().lower()
    target = safe_next(str(form.get("next") or "/"))
    wait = claim_sign_in(settings, name, max_failures=MAX_FAILURES, window=WINDOW)
    if wait:
        return render(
            request,
            "login.html",
            status_code=429,
            error=f"Too many failed sign-ins for {name}: try again in {int(wait // 60) + 1} minute(s).",
            username=username,
            next=target,
        )
    actor = authenticate(settings, username, str(form.get("password") or ""))
    if actor is None:  # the attempt claimed above stands as the failure
        return render(
            request,
            "login.html",
            status_code=401,
            error="Wrong user name or password, or the account is deactivated.",
            username=username,
            next=target,
        )
    clear_failed_sign_ins(settings, name)
    sign_in(request, get_user(settings, actor.name))  # type: ignore[arg-type]
    return RedirectResponse(target, status_code=303)  # type: ignore[return-value]


@router.post("/logout")
def logout(request: Request, form: CheckedForm) -> RedirectResponse:
    sign_out(request)
    return RedirectResponse("/login", status_code=303)
