"""Password guesses sent at once: the sign-in limit counts an attempt before its password is checked."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from kanda.review.accounts import create_user
from kanda.review.web.login import MAX_FAILURES
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.web_helpers import PASSWORD, login, token


def test_guesses_sent_at_once_get_no_more_tries_than_guesses_sent_one_by_one(settings: Settings):
    """The limit was checked before the password and the failure written after it (an argon2 verification later):
    guesses sent at the same moment all found the count below the limit, and 24 guesses got 24 answers. Each
    attempt now counts before its password is checked, so however they arrive only MAX_FAILURES are tried."""
    create_user(settings, "kofi", PASSWORD, role="steward", regions=["GH"])
    app = create_app(settings)
    guessers = [TestClient(app) for _ in range(24)]
    forms = [
        {"username": "kofi", "password": f"guess number {i}", "csrf_token": token(c)} for i, c in enumerate(guessers)
    ]
    start = threading.Barrier(len(guessers))
    answers: list[int] = []

    def guess(client: TestClient, form: dict) -> None:
        start.wait()
        answers.append(client.post("/login", data=form).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(guessers, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(answers)) == [401, 429]
    assert answers.count(401) == MAX_FAILURES, answers
    assert login(TestClient(app), "kofi", PASSWORD).status_code == 429
