"""PostgreSQL sessions ended from outside, as a server restart or an administrator ends them: what kanda must
survive without publishing a mix or failing a request."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy.pool import NullPool


def end_sessions(url: str, *, holding_lock: int | None = None) -> list[bool]:
    """End every other session on the URL's database (as a restart does), or only the one holding the advisory lock
    `holding_lock`; returns one flag per session ended."""
    if holding_lock is None:
        sql = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    else:
        sql = (
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = :k"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return [done for (done,) in conn.execute(sqlalchemy.text(sql), {"k": holding_lock}).fetchall()]
    finally:
        engine.dispose()
