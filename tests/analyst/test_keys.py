"""`kanda keys`: analysts' API keys are shown once, stored only as hashes, listed, and revoked at once."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kanda.analyst.keys import KeyStore
from kanda.cli import app
from kanda.settings import Settings
from tests.support.analyst import api_app

runner = CliRunner()


def test_create_list_revoke_from_the_command_line(published: Settings):
    created = runner.invoke(app, ["keys", "create", "amina"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("kanda_") and len(token) > 40
    assert "shown once" in created.output

    client = TestClient(api_app(published))
    assert client.get("/api/publications", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0 and "amina" in listed.output and "active" in listed.output
    assert token not in listed.output  # only the first characters, never the key

    again = runner.invoke(app, ["keys", "create", "amina"])
    assert again.exit_code == 1 and "exists already" in again.output
    assert runner.invoke(app, ["keys", "create", "two words"]).exit_code == 1

    revoked = runner.invoke(app, ["keys", "revoke", "amina"])
    assert revoked.exit_code == 0 and "revoked amina" in revoked.output
    response = client.get("/api/publications", headers={"X-API-Key": token})
    assert response.status_code == 401 and "'amina' was revoked" in response.json()["detail"]
    assert "revoked" in runner.invoke(app, ["keys", "list"]).output
    assert runner.invoke(app, ["keys", "revoke", "nobody"]).exit_code == 1


def test_only_a_hash_of_the_key_is_stored(published: Settings):
    token = KeyStore(published.app_db_url).create("hashed")
    engine = sa.create_engine(published.app_db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM api_keys WHERE name = 'hashed'")).mappings().one()
    engine.dispose()
    assert token not in " ".join(str(v) for v in stored.values())
    assert len(stored["key_hash"]) == 64 and token.startswith(stored["hint"])


def test_keys_are_not_steward_accounts(published: Settings):
    """A key lives in its own table: no password, no role, nothing the steward sign-in could accept."""
    KeyStore(published.app_db_url).create("separate")
    engine = sa.create_engine(published.app_db_url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("api_keys")}
    engine.dispose()
    assert columns == {"name", "key_hash", "hint", "created_at", "revoked_at"}


def test_workers_opening_a_fresh_key_store_at_once_all_start(tmp_path):
    """`kanda serve --workers 2` on a fresh installation: one worker died with "table api_keys already exists",
    created by the other between its check and its CREATE."""
    from kanda.analyst.keys import KeyStore
    from tests.support.processes import open_at_once

    assert open_at_once(KeyStore, tmp_path, processes=4, trials=6) == []
