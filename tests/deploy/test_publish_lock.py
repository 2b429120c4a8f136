"""The publish lock on PostgreSQL: bounded by KANDA_LOCK_WAIT, and held through a server's idle timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from kanda.central.catalog import PUBLISH_LOCK_KEY, PublishBusy, publish_lock
from kanda.settings import Settings, load_settings

pytestmark = pytest.mark.postgres


def settings_on(url: str, monkeypatch: pytest.MonkeyPatch, wait: str) -> Settings:
    monkeypatch.setenv("KANDA_CATALOG_URL", url)
    monkeypatch.setenv("KANDA_LOCK_WAIT", wait)
    return load_settings()


def lock_free(url: str) -> bool:
    """Whether another session could take the publish lock right now (it takes and releases it if so)."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        got = conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": PUBLISH_LOCK_KEY}).scalar()
        if got:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK_KEY})
    engine.dispose()
    return bool(got)


def test_a_publish_waiting_longer_than_kanda_lock_wait_fails_with_the_reason(
    settings: Settings, new_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
):
    url = new_database()
    current = settings_on(url, monkeypatch, "0.3")
    holder = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with holder.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK_KEY})
        with pytest.raises(PublishBusy, match=r"KANDA_LOCK_WAIT=0\.3"), publish_lock(current):
            pass
    holder.dispose()
    with publish_lock(current):  # free again: taken at once
        assert not lock_free(url)
    assert lock_free(url)  # and released when the block ends


def test_the_lock_outlives_the_servers_idle_timeouts_and_is_released_after_a_failure(
    settings: Settings, new_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
):
    url = new_database()
    name = sqlalchemy.engine.make_url(url).database
    admin = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for setting in ("idle_in_transaction_session_timeout", "idle_session_timeout"):
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{name}" SET {setting} = 200'))
    admin.dispose()
    current = settings_on(url, monkeypatch, "5")
    with pytest.raises(RuntimeError, match="publish failed"), publish_lock(current):
        time.sleep(1.0)  # a slow publish: five times the server's idle timeouts
        assert not lock_free(url), "the server ended the lock's session mid-publish"
        raise RuntimeError("publish failed")
    assert lock_free(url)
