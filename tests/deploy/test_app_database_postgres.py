"""The application database on PostgreSQL behaves as on SQLite: what SQLite lets pass (a text longer than its
column), what it serialises by itself (sign-in attempts counted in one transaction), and what it returns in UTC
(timestamps) are each handled on PostgreSQL too."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kanda.settings import Settings, load_settings
from tests.support.builders import paystack_event
from tests.support.files import ingest_written

pytestmark = pytest.mark.postgres


@pytest.fixture
def on_postgres(settings: Settings, new_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """This test's home, its application database a fresh PostgreSQL one."""
    monkeypatch.setenv("KANDA_APP_DB_URL", new_database())
    return load_settings()


def test_a_record_with_an_id_longer_than_the_queues_column_is_queued_with_the_rest(on_postgres: Settings):
    """A receipt number of 232 characters (quarantined: ids are capped at 128) failed the whole region's enqueue on
    PostgreSQL, which enforces the column's length where SQLite does not: no record of the region reached the
    queue, at this ingest or any later one."""
    from kanda.review.service import enqueue_region
    from tests.support.web_helpers import item, items

    long_id = "R" * 232
    content = "".join(
        json.dumps(paystack_event(n, **({"reference": long_id} if n == 2 else {}), amount=-5 if n == 3 else 500000))
        + "\n"
        for n in (1, 2, 3)
    )
    report = ingest_written(on_postgres, "NG", on_postgres.home / "webhooks.ndjson", content)
    assert (report.loaded, report.quarantined) == (1, 2), report
    assert enqueue_region(on_postgres, "NG") == 2
    queued = {i.transaction_id: i for i in items(on_postgres, "NG")}
    cut = long_id[:199] + "\u2026"
    assert set(queued) == {cut, "ps_000003"}
    # the parsed fields, which a fix is checked and loaded from, keep it whole
    assert item(on_postgres, queued[cut].id).parsed["transaction_id"] == long_id


def test_sign_in_guesses_sent_at_once_meet_the_limit_on_postgresql(on_postgres: Settings):
    """Counted by inserting an attempt and counting in one transaction: on SQLite one runs at a time, but on
    PostgreSQL concurrent transactions do not see each other's rows, and 8-14 of 20 guesses sent at once were let
    through to the password check where the limit is 5."""
    from kanda.review.accounts import claim_sign_in

    claim_sign_in(on_postgres, "warm-up", max_failures=5, window=dt.timedelta(minutes=15))  # tables made
    start, allowed = threading.Barrier(20), []

    def guess() -> None:
        start.wait()
        if claim_sign_in(on_postgres, "wanjiru", max_failures=5, window=dt.timedelta(minutes=15)) == 0:
            allowed.append(1)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 5


def test_account_times_are_utc_whatever_the_databases_time_zone(on_postgres: Settings, tmp_path: Path):
    """With the database's `TimeZone` set to Cairo, `kanda users list` showed times two hours ahead under its
    "created (UTC)" heading, and a session opened by one host was ended by another host whose connection used UTC
    (the sign-in stamp is built from the password's change time)."""
    from kanda.review.accounts import create_user, get_user, list_users

    url = make_url(on_postgres.app_db_url)
    admin = sqlalchemy.create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sqlalchemy.text(f"ALTER DATABASE \"{url.database}\" SET timezone = 'Africa/Cairo'"))
    admin.dispose()
    before = dt.datetime.now(dt.UTC)
    create_user(on_postgres, "amina", "correct horse battery", role="steward", regions=None)
    (account,) = list_users(on_postgres)
    assert account.created_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=5) <= account.created_at <= dt.datetime.now(dt.UTC)
    assert get_user(on_postgres, "amina").password_changed_at.isoformat().endswith("+00:00")
