"""Installation-wide secrets: the buyer salt and the web secret from a distributed file; a store refuses another salt;
URLs are printed without their password."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import SaltMismatch, open_store
from kanda.settings import Settings, load_settings, masked_url
from tests.support.files import make_files

runner = CliRunner()


def test_the_salt_and_web_secret_come_from_files_the_operator_distributes(tmp_path: Path, monkeypatch):
    for name, value in (("salt", "shared-salt\n"), ("secret", "shared-secret\n")):
        (tmp_path / name).write_text(value)
    monkeypatch.delenv("KANDA_BUYER_SALT", raising=False)
    monkeypatch.delenv("KANDA_SECRET_KEY", raising=False)
    monkeypatch.setenv("KANDA_BUYER_SALT_FILE", str(tmp_path / "salt"))
    monkeypatch.setenv("KANDA_SECRET_KEY_FILE", str(tmp_path / "secret"))
    hosts = [load_settings(tmp_path / "host-a"), load_settings(tmp_path / "host-b")]
    assert {h.buyer_salt for h in hosts} == {"shared-salt"}
    assert {h.secret_key for h in hosts} == {"shared-secret"}
    assert not (tmp_path / "host-a" / "buyer_salt").exists()


def test_a_missing_salt_file_is_named(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("KANDA_BUYER_SALT", raising=False)
    monkeypatch.setenv("KANDA_BUYER_SALT_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="KANDA_BUYER_SALT_FILE"):
        load_settings(tmp_path / "home")


def test_a_store_refuses_a_host_with_another_salt(settings: Settings, monkeypatch):
    make_files(settings, regions=["KE"], rows=100, days=1)
    ingest_landing(settings, "KE")
    monkeypatch.setenv("KANDA_BUYER_SALT", "another-salt")
    other = load_settings()
    with pytest.raises(SaltMismatch, match="KANDA_BUYER_SALT"), open_store(other, "KE"):
        pass
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 1 and "another buyer salt" in status.output
    ingest = runner.invoke(app, ["ingest", "-r", "KE"])  # `main()` prints the message of this exception
    assert isinstance(ingest.exception, SaltMismatch)
    monkeypatch.setenv("KANDA_BUYER_SALT", "test-salt")
    with open_store(load_settings(), "KE", read_only=True) as con:  # the right salt: opens as before
        assert con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0] > 0


def test_urls_are_printed_without_their_password(settings: Settings, monkeypatch):
    url = "postgresql+psycopg://kanda:s3cret@db.internal:5432/catalog"
    assert masked_url(url) == "postgresql+psycopg://kanda:***@db.internal:5432/catalog"
    monkeypatch.setenv("KANDA_CATALOG_URL", url)
    assert "s3cret" not in load_settings().masked_catalog_url
    # libpq takes the password as a query parameter too, and a password may hold an unescaped "@"
    given = "postgresql+psycopg://postgres@db:5432/catalog?password=TopSecret99&sslmode=require"
    assert masked_url(given) == "postgresql+psycopg://postgres@db:5432/catalog?password=***&sslmode=require"
    assert masked_url("postgresql+psycopg://u:p@ss@db/d") == "postgresql+psycopg://u:***@db/d"
    assert masked_url("postgresql://db/d?sslpassword=x1&options=-c%20a@b") == (
        "postgresql://db/d?sslpassword=***&options=-c%20a@b"
    )
    assert masked_url("sqlite:////srv/kanda/catalog.db") == "sqlite:////srv/kanda/catalog.db"
