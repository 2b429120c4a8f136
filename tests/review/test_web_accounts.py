"""Steward accounts as an administrator and a steward meet them: `kanda users`, hashed passwords, sign-in,
sessions that end on deactivation or a password change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kanda.cli import app as cli
from kanda.review.accounts import (
    AccountError,
    authenticate,
    create_user,
    deactivate,
    engine,
    list_users,
    set_password,
)
from kanda.review.actor import Actor
from kanda.review.web.login import MAX_FAILURES
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.web_helpers import login, token

runner = CliRunner()
PASSWORD = "correct horse battery"


def test_users_cli_adds_lists_changes_and_deactivates(settings: Settings):
    added = runner.invoke(
        cli, ["users", "add", "Wanjiru", "--role", "steward", "--region", "ke"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert added.exit_code == 0, added.output
    assert "created steward wanjiru (regions: KE)" in added.output
    assert PASSWORD not in added.output  # the prompt hides what is typed

    scripted = runner.invoke(
        cli, ["users", "add", "ops", "--role", "viewer", "--all-regions", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert scripted.exit_code == 0, scripted.output

    listed = json.loads(runner.invoke(cli, ["users", "list", "--json"]).stdout)["users"]
    assert [(u["name"], u["role"], u["regions"], u["active"]) for u in listed] == [
        ("ops", "viewer", None, True),
        ("wanjiru", "steward", ["KE"], True),
    ]
    assert authenticate(settings, "WANJIRU", PASSWORD) == Actor("wanjiru", "steward", frozenset({"KE"}))

    changed = runner.invoke(cli, ["users", "passwd", "wanjiru", "--password-stdin"], input="a new long password\n")
    assert changed.exit_code == 0, changed.output
    assert authenticate(settings, "wanjiru", PASSWORD) is None
    assert authenticate(settings, "wanjiru", "a new long password") is not None

    assert runner.invoke(cli, ["users", "deactivate", "wanjiru"]).exit_code == 0
    assert authenticate(settings, "wanjiru", "a new long password") is None
    assert "no" in runner.invoke(cli, ["users", "list"]).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "amina"], "--region"),  # neither a region nor --all-regions
        (["users", "add", "amina", "--region", "KE", "--all-regions"], "not both"),
        (["users", "add", "amina", "--region", "XX"], "unknown region"),
        (["users", "add", "amina", "--role", "admin", "--region", "KE"], "role must be one of"),
        (["users", "passwd", "nobody"], "no user named"),
        (["users", "deactivate", "nobody"], "no user named"),
    ],
)
def test_users_cli_refuses_bad_requests_with_a_message(settings: Settings, args: list[str], message: str):
    result = runner.invoke(cli, [*args, "--password-stdin"] if args[1] == "add" else args, input=f"{PASSWORD}\n")
    assert result.exit_code == 2
    assert message in result.output


def test_passwords_are_argon2_hashes_and_rules_hold(settings: Settings):
    create_user(settings, "kofi", PASSWORD, role="steward", regions=["GH"])
    with engine(settings).connect() as con:
        (stored,) = con.execute(sa.text("SELECT password_hash FROM account_users WHERE name = 'kofi'")).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(AccountError, match="already exists"):
        create_user(settings, "KOFI", PASSWORD, role="viewer", regions=None)
    with pytest.raises(AccountError, match="at least 10"):
        create_user(settings, "short", "pw", role="viewer", regions=None)
    with pytest.raises(AccountError, match="at least 10"):
        set_password(settings, "kofi", "pw")
    assert authenticate(settings, "kofi", "wrong password") is None
    assert authenticate(settings, "nobody", PASSWORD) is None
    assert [a.name for a in list_users(settings)] == ["kofi"]


def test_sign_in_sign_out_and_sessions_that_end(settings: Settings):
    create_user(settings, "amina", PASSWORD, role="steward", regions=["NG"])
    client = TestClient(create_app(settings))

    first = client.get("/quality", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Fquality"

    wrong = client.post("/login", data={"username": "amina", "password": "nope nope nope", "csrf_token": token(client)})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text

    signed_in = login(client, "amina", PASSWORD, next_url="/quality")
    assert signed_in.url.path == "/quality"
    assert "amina · steward · NG" in signed_in.text
    cookie = client.cookies.get("kanda_session")
    assert cookie and PASSWORD not in cookie
    set_cookie = signed_in.history[0].headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie

    # A password change ends every session that signed in with the old one.
    set_password(settings, "amina", "another long password")
    assert client.get("/quality", follow_redirects=False).status_code == 303
    login(client, "amina", "another long password")
    assert client.get("/quality").status_code == 200

    # So does deactivation.
    deactivate(settings, "amina")
    assert client.get("/quality", follow_redirects=False).headers["location"].startswith("/login")
    refused = login(client, "amina", "another long password")
    assert refused.status_code == 401


def test_sign_out_ends_the_session_and_next_cannot_leave_the_site(settings: Settings):
    create_user(settings, "amina", PASSWORD, role="viewer", regions=None)
    client = TestClient(create_app(settings))
    away = login(client, "amina", PASSWORD, next_url="//evil.example/steal")
    assert away.url.path == "/queue"  # `/` redirects to the queue; never to another host
    out = client.post("/logout", data={"csrf_token": token(client)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_repeated_wrong_passwords_lock_the_name_for_a_while(settings: Settings):
    create_user(settings, "kofi", PASSWORD, role="steward", regions=["GH"])
    create_user(settings, "ama", PASSWORD, role="steward", regions=["GH"])
    client = TestClient(create_app(settings))
    for _ in range(MAX_FAILURES):
        assert login(client, "kofi", "guess guess guess").status_code == 401
    locked = login(client, "kofi", PASSWORD)  # even the right password, for now
    assert locked.status_code == 429 and "Too many failed sign-ins for kofi" in locked.text
    assert login(client, "ama", PASSWORD).status_code == 200  # other names are not affected


def test_the_lock_counts_failures_across_workers_and_restarts(settings: Settings):
    """`kanda serve --workers 2` runs two apps: guesses spread over both (or over a restart) count together."""
    create_user(settings, "kofi", PASSWORD, role="steward", regions=["GH"])
    first, second = TestClient(create_app(settings)), TestClient(create_app(settings))
    for attempt in range(MAX_FAILURES):
        assert login(first if attempt % 2 else second, "kofi", "guess guess guess").status_code == 401
    restarted = TestClient(create_app(settings))
    for client in (first, second, restarted):
        assert login(client, "kofi", PASSWORD).status_code == 429


def test_a_cookie_copied_before_sign_out_is_refused_after_it(settings: Settings):
    """Sign-out ends the session on the server: its cookie, replayed by another client, signs nobody in and changes
    nothing, while the same user's other session (signed in separately) carries on."""
    create_user(settings, "amina", PASSWORD, role="steward", regions=None)
    app = create_app(settings)
    laptop, phone = TestClient(app), TestClient(app)
    assert login(laptop, "amina", PASSWORD).status_code == 200
    assert login(phone, "amina", PASSWORD).status_code == 200
    copied = laptop.cookies["kanda_session"]
    csrf = token(laptop, "/queue")

    assert laptop.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303

    replay = TestClient(app, cookies={"kanda_session": copied})
    refused = replay.get("/queue", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Fqueue"
    post = replay.post("/records/1/assign", data={"csrf_token": csrf, "op": "take"}, follow_redirects=False)
    assert post.status_code == 303 and post.headers["location"] == "/login"
    assert replay.get("/quality", follow_redirects=False).status_code == 303

    assert phone.get("/queue", follow_redirects=False).status_code == 200  # the other session is still open
    with engine(settings).connect() as con:
        assert con.execute(sa.text("SELECT count(*) FROM account_sessions WHERE name = 'amina'")).scalar() == 1

    # A password change (or deactivation) deletes every session of the account.
    set_password(settings, "amina", "another long password")
    assert phone.get("/queue", follow_redirects=False).status_code == 303
    with engine(settings).connect() as con:
        assert con.execute(sa.text("SELECT count(*) FROM account_sessions")).scalar() == 0


def test_an_account_database_from_before_session_records_gains_the_table(settings: Settings):
    """An application database made before `account_sessions` existed gets it the first time kanda opens it."""
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.executescript(
            """
            CREATE TABLE account_users (name VARCHAR(64) PRIMARY KEY, password_hash VARCHAR(255) NOT NULL,
              role VARCHAR(16) NOT NULL, regions VARCHAR(255), active BOOLEAN NOT NULL, created_at DATETIME NOT NULL,
              password_changed_at DATETIME NOT NULL, email VARCHAR(320), digest BOOLEAN NOT NULL DEFAULT 1);
            """
        )
    con.close()
    create_user(settings, "kofi", PASSWORD, role="viewer", regions=None)
    client = TestClient(create_app(settings))
    assert login(client, "kofi", PASSWORD).url.path == "/queue"
    assert client.post("/logout", data={"csrf_token": token(client, "/queue")}).url.path == "/login"
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_workers_opening_a_fresh_application_database_at_once_all_start(tmp_path: Path):
    """Six processes creating the review and account tables at once: one failed with "table already exists" or a
    unique upgrade record, having looked again only once."""
    from kanda.review.accounts import _engine
    from tests.support.processes import open_at_once

    assert open_at_once(_engine, tmp_path, processes=6, trials=4) == []
