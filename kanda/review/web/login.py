"""Sign-in and sign-out pages.

Password guessing is slowed twice over: each attempt costs an argon2 verification, and after `MAX_FAILURES`
failed attempts on one user name within `WINDOW_SECONDS` that name is refused (429) until the window has passed,
whatever the password. The count is kept in the serving process (one `kanda serve`); it resets on restart.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kanda.review.accounts import authenticate, get_user
from kanda.review.web.render import render
from kanda.review.web.security import CheckedForm, safe_next, sign_in, sign_out, signed_in_account

router = APIRouter()

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


class FailedSignIns:
    """Recent failed sign-ins per user name (monotonic times), shared by the app's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, name: str, now: float) -> deque[float]:
        failures = self._failures[name]
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        return failures

    def wait_seconds(self, name: str) -> float:
        """0 when the name may try again, else how long until its oldest counted failure expires."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(name, now)
            return failures[0] + WINDOW_SECONDS - now if len(failures) >= MAX_FAILURES else 0.0

    def record(self, name: str) -> None:
        with self._lock:
            self._recent(name, time.monotonic()).append(time.monotonic())

    def clear(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def _failed(request: Request) -> FailedSignIns:
    state = request.app.state
    if not hasattr(state, "failed_sign_ins"):
        state.failed_sign_ins = FailedSignIns()
    return state.failed_sign_ins


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
    failed = _failed(request)
    wait = failed.wait_seconds(name)
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
    if actor is None:
        failed.record(name)
        return render(
            request,
            "login.html",
            status_code=401,
            error="Wrong user name or password, or the account is deactivated.",
            username=username,
            next=target,
        )
    failed.clear(name)
    sign_in(request, get_user(settings, actor.name))  # type: ignore[arg-type]
    return RedirectResponse(target, status_code=303)  # type: ignore[return-value]


@router.post("/logout")
def logout(request: Request, form: CheckedForm) -> RedirectResponse:
    sign_out(request)
    return RedirectResponse("/login", status_code=303)
