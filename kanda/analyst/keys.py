"""API keys for analysts: bearer tokens for the read-only API, kept apart from steward accounts.

An analyst's key grants reading the central rollups and nothing else, so it lives in its own table (`api_keys` in
the application database) with no role, password or session: steward logins can never be used on the API and a
key can never open the review pages. A key is a 256-bit random token shown once at creation; only its SHA-256 is
stored (a slow password hash buys nothing for a high-entropy token and would cost every request). Revoking keeps
the row, so `kanda keys list` still shows who had access and when it ended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa

from kanda.schema_setup import settle_schema

TOKEN_PREFIX = "kanda_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime(), nullable=True),
)


class KeyProblem(ValueError):
    """A key operation that cannot be done (bad or taken name, unknown key); the message says which."""


class InvalidKey(PermissionError):
    """The presented key is missing, unknown or revoked."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    hint: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@cache
def _engine(url: str) -> sa.Engine:
    """One engine (and connection pool) per database URL for the life of the process.

    A server's pooled connections are checked before use: after the database restarts, every one of them is dead,
    and each API worker's next request would otherwise fail its key check with a 500.
    """
    sqlite = url.startswith("sqlite:///")
    if sqlite:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30} if sqlite else {}, pool_pre_ping=not sqlite)
    settle_schema(engine, lambda con: metadata.create_all(con, tables=[api_keys]))
    return engine


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # Stored naive in UTC (SQLite keeps no offset); handed out aware.
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class _KeyRow:
    name: str
    hint: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _stored_time(value: str | None) -> dt.datetime | None:
    """A time as SQLAlchemy stores it in SQLite (ISO 8601 text, naive UTC)."""
    return None if value is None else dt.datetime.fromisoformat(value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class KeyStore:
    """API keys in the application database (`settings.app_db_url`: SQLite by default, PostgreSQL at scale)."""

    def __init__(self, url: str) -> None:
        self.engine = _engine(url)
        #: A file on this machine (SQLite): a lookup costs microseconds and never waits on a network.
        self.local = self.engine.url.get_backend_name() == "sqlite"
        database = self.engine.url.database if self.local else None
        self._sqlite_file = database if database and database != ":memory:" else None
        self._readers = threading.local()

    def create(self, name: str) -> str:
        """A new key for `name`; returns the token, which is not stored and cannot be shown again."""
        if not NAME.match(name):
            raise KeyProblem(f"not a key name: {name!r} (letters, digits and _ . @ -, at most 64, no spaces)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.insert().values(
                        name=name, key_hash=_hash(token), hint=token[: len(TOKEN_PREFIX) + 4], created_at=_now()
                    )
                )
        except sa.exc.IntegrityError:
            raise KeyProblem(f"a key named {name!r} exists already (names are kept after revoking)") from None
        return token

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name)).all()
        return [ApiKey(r.name, r.hint, _utc(r.created_at), _utc(r.revoked_at)) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.name == name)).first()
            if row is None:
                raise KeyProblem(f"no key named {name!r}: see `kanda keys list`")
            revoked_at = row.revoked_at or _now()
            conn.execute(api_keys.update().where(api_keys.c.name == name).values(revoked_at=revoked_at))
        return ApiKey(row.name, row.hint, _utc(row.created_at), _utc(revoked_at))

    def authenticate(self, token: str | None) -> ApiKey:
        """The active key this token is, or `InvalidKey` saying what is wrong with it."""
        if not token:
            raise InvalidKey("an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
        row = self._by_hash(_hash(token))
        if row is None:
            raise InvalidKey("unknown API key")
        if row.revoked_at is not None:
            raise InvalidKey(f"the API key {row.name!r} was revoked")
        return ApiKey(row.name, row.hint, _utc(row.created_at), None)

    def _by_hash(self, key_hash: str):
        """The key's row. Every API request asks this, so on SQLite it is one plain read on a connection kept per
        thread (a tenth of SQLAlchemy's cost); it reads committed rows, so a revocation counts at once."""
        try:
            inode = Path(self._sqlite_file).stat().st_ino if self._sqlite_file else None
        except OSError:
            inode = None
        if inode is None:  # a database server, or no file (yet): SQLAlchemy says what is wrong
            with self.engine.connect() as conn:
                return conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        con, known = getattr(self._readers, "con", (None, None))
        if con is None or known != inode:  # first use in this thread, or a key database created anew
            if con is not None:
                con.close()
            con = sqlite3.connect(f"file:{self._sqlite_file}?mode=ro", uri=True, timeout=5)
            con.row_factory = sqlite3.Row
            self._readers.con = (con, inode)
        row = con.execute(
            "SELECT name, hint, created_at, revoked_at FROM api_keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        if row is None:
            return None
        return _KeyRow(row["name"], row["hint"], _stored_time(row["created_at"]), _stored_time(row["revoked_at"]))
