"""Steward and viewer accounts: who may sign in to the steward pages, with which role and which regions.

Accounts live in the application database (SQLAlchemy: a SQLite file under KANDA_HOME by default, PostgreSQL by
`KANDA_APP_DB_URL`), never in the regional DuckDB stores, which have one writer. Passwords are kept only as argon2id
hashes (argon2-cffi's `PasswordHasher`, whose parameters follow RFC 9106); a hash made with older parameters is
upgraded at the next successful sign-in. What a signed-in person may do is an `Actor`, the same object the review
service checks for the web pages and the CLI alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kanda.review.actor import Actor, Role
from kanda.schema_setup import settle_schema
from kanda.settings import Settings
from regions import all_regions

ROLES: tuple[Role, ...] = ("steward", "viewer")
MIN_PASSWORD_LENGTH = 10
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

metadata = sa.MetaData()

users = sa.Table(
    "account_users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # Comma-separated region codes; NULL means every region (today's and any added later).
    sa.Column("regions", sa.String(255), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    # Where the daily digest goes (NULL: the name, when the name is an address), and whether it is wanted.
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.true()),
)
#: Columns added after the first release: `create_all` only makes missing tables, so older databases gain them here.
_ADDED_COLUMNS = ("email", "digest")

#: Open steward sessions, one row each (added after the first release; `create_all` makes it in older databases).
#: The cookie carries a random session id and this table only its SHA-256, so reading the table opens no session.
#: Sign-out deletes the row, and so do a password change and deactivation: a copied cookie is refused afterwards.
sessions = sa.Table(
    "account_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: when a request last used the session, refreshed at most every `_SEEN_EVERY`; stale rows are swept
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)
_SEEN_EVERY = dt.timedelta(minutes=5)

#: Failed sign-ins, one row each, in the application database: every worker process of `kanda serve` (and every
#: replica) counts the same failures, so N workers do not allow N times the guesses.
sign_in_failures = sa.Table(
    "account_sign_in_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(320), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


class AccountError(ValueError):
    """An account cannot be created or changed as asked (bad name, role, region or password; unknown user)."""


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    regions: frozenset[str] | None
    active: bool
    created_at: dt.datetime
    password_changed_at: dt.datetime
    email: str | None = None
    digest: bool = True

    @property
    def address(self) -> str | None:
        """Where mail for this account goes: its e-mail, or its name when the name is an address."""
        return self.email or (self.name if EMAIL_PATTERN.match(self.name) else None)

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role, self.regions)

    @property
    def regions_label(self) -> str:
        return "all" if self.regions is None else ",".join(sorted(self.regions))

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "regions": None if self.regions is None else sorted(self.regions),
            "active": self.active,
            "email": self.address,
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
        }


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _engine(url: str) -> sa.Engine:
    """The application database's engine (shared with the review store: WAL and a busy timeout on SQLite), with
    the account table created on first use."""
    from kanda.review.db import engine_for

    engine = engine_for(url)
    settle_schema(engine, _create_account_tables)
    return engine


def _create_account_tables(con: sa.Connection) -> None:
    metadata.create_all(con)
    present = {c["name"] for c in sa.inspect(con).get_columns("account_users")}
    for name in _ADDED_COLUMNS:
        if name not in present:
            column = users.c[name]
            kind = column.type.compile(dialect=con.dialect)
            default = " NOT NULL DEFAULT TRUE" if name == "digest" else ""
            con.execute(sa.text(f'ALTER TABLE account_users ADD COLUMN "{name}" {kind}{default}'))


def engine(settings: Settings) -> sa.Engine:
    return _engine(settings.app_db_url)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _regions_value(regions: Iterable[str] | None) -> str | None:
    if regions is None:
        return None
    chosen = sorted({r.upper() for r in regions})
    if not chosen:
        raise AccountError("give at least one region (--region KE), or all regions (--all-regions)")
    unknown = [r for r in chosen if r not in all_regions()]
    if unknown:
        raise AccountError(f"unknown region(s): {', '.join(unknown)}; known: {', '.join(all_regions())}")
    return ",".join(chosen)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def _account(row: sa.Row) -> Account:
    return Account(
        name=row.name,
        role=row.role,
        regions=None if row.regions is None else frozenset(row.regions.split(",")),
        active=bool(row.active),
        created_at=_utc(row.created_at),
        password_changed_at=_utc(row.password_changed_at),
        email=row.email,
        digest=bool(row.digest),
    )


def create_user(settings: Settings, name: str, password: str, *, role: Role, regions: Iterable[str] | None) -> Account:
    """A new account; `regions=None` gives every region. Names are case-insensitive and unique."""
    name = name.strip().lower()
    if not NAME_PATTERN.match(name):
        raise AccountError(
            "a user name has 2-64 characters: lower-case letters, digits and . _ @ -, starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    region_value = _regions_value(regions)
    _check_password(password)
    now = _now()
    with engine(settings).begin() as con:
        if con.execute(sa.select(users.c.name).where(users.c.name == name)).first() is not None:
            raise AccountError(f"a user named {name!r} already exists")
        con.execute(
            users.insert().values(
                name=name,
                password_hash=_hasher().hash(password),
                role=role,
                regions=region_value,
                active=True,
                created_at=now,
                password_changed_at=now,
            )
        )
    return get_user(settings, name)  # type: ignore[return-value]


def get_user(settings: Settings, name: str) -> Account | None:
    with engine(settings).connect() as con:
        row = con.execute(sa.select(users).where(users.c.name == name.strip().lower())).first()
    return None if row is None else _account(row)


def list_users(settings: Settings) -> list[Account]:
    with engine(settings).connect() as con:
        return [_account(row) for row in con.execute(sa.select(users).order_by(users.c.name))]


def authenticate(settings: Settings, name: str, password: str) -> Actor | None:
    """The actor for a correct name and password of an active account, else None (which of them was wrong is not
    said). An unknown name still costs one hash verification, so timing does not reveal which names exist."""
    hasher = _hasher()
    name = name.strip().lower()
    with engine(settings).connect() as con:
        row = con.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        with suppress(VerificationError):
            hasher.verify(_dummy_hash(), password)
        return None
    try:
        hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not row.active:
        return None
    if hasher.check_needs_rehash(row.password_hash):
        with engine(settings).begin() as con:
            con.execute(users.update().where(users.c.name == name).values(password_hash=hasher.hash(password)))
    return _account(row).actor


@cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anyone")


def set_password(settings: Settings, name: str, password: str) -> None:
    """A new password; sessions signed in with the old one end (their rows are deleted, and `session_stamp` refuses
    their cookies too)."""
    _check_password(password)
    _update(settings, name, password_hash=_hasher().hash(password), password_changed_at=_now())
    end_sessions(settings, name)


def set_digest(settings: Settings, name: str, *, on: bool, email: str | None = None) -> Account:
    """Opt in or out of the daily digest, optionally setting the address it goes to."""
    values: dict[str, object] = {"digest": on}
    if email is not None:
        email = email.strip()
        if not EMAIL_PATTERN.match(email):
            raise AccountError(f"{email!r} is not an e-mail address")
        values["email"] = email
    _update(settings, name, **values)
    return get_user(settings, name)  # type: ignore[return-value]


def deactivate(settings: Settings, name: str) -> None:
    """The account can no longer sign in and its open sessions end; its name stays in the audit log's history."""
    _update(settings, name, active=False)
    end_sessions(settings, name)


def _update(settings: Settings, name: str, **values: object) -> None:
    with engine(settings).begin() as con:
        changed = con.execute(users.update().where(users.c.name == name.strip().lower()).values(**values)).rowcount
    if not changed:
        raise AccountError(f"no user named {name!r}")


def session_stamp(account: Account) -> str:
    """What a session remembers besides the name: a password change makes every older session invalid."""
    return account.password_changed_at.isoformat()


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(settings: Settings, name: str, *, idle: dt.timedelta) -> str:
    """A new session of the account: its random id, for the cookie. Sessions unused for longer than `idle` (whose
    cookies have expired) are swept away on the way."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    with engine(settings).begin() as con:
        con.execute(sessions.delete().where(sessions.c.seen_at < now - idle - _SEEN_EVERY))
        con.execute(
            sessions.insert().values(
                id=_session_key(session_id), name=name.strip().lower(), created_at=now, seen_at=now
            )
        )
    return session_id


def session_is_open(settings: Settings, session_id: str, name: str) -> bool:
    """Whether the session was opened for this account and has not been ended since."""
    key = _session_key(session_id)
    with engine(settings).connect() as con:
        seen = con.execute(
            sa.select(sessions.c.seen_at).where(sessions.c.id == key, sessions.c.name == name.strip().lower())
        ).scalar()
    if seen is None:
        return False
    now = _now()
    if _utc(seen) < now - _SEEN_EVERY:
        with engine(settings).begin() as con:
            con.execute(sessions.update().where(sessions.c.id == key).values(seen_at=now))
    return True


def close_session(settings: Settings, session_id: str) -> None:
    """Sign-out: the session ends on the server, so its cookie, or any copy of it, is refused from now on."""
    with engine(settings).begin() as con:
        con.execute(sessions.delete().where(sessions.c.id == _session_key(session_id)))


def end_sessions(settings: Settings, name: str) -> None:
    """Every open session of the account ends (a password change, deactivation)."""
    with engine(settings).begin() as con:
        con.execute(sessions.delete().where(sessions.c.name == name.strip().lower()))


def sign_in_wait(settings: Settings, name: str, *, max_failures: int, window: dt.timedelta) -> float:
    """0 when `name` may try to sign in, else the seconds until the oldest of its last `max_failures` failures
    within `window` leaves it."""
    since = _now() - window
    with engine(settings).connect() as con:
        times = [
            _utc(t)
            for (t,) in con.execute(
                sa.select(sign_in_failures.c.at)
                .where(sign_in_failures.c.name == name, sign_in_failures.c.at > since)
                .order_by(sign_in_failures.c.at.desc())
                .limit(max_failures)
            )
        ]
    if len(times) < max_failures:
        return 0.0
    return max(0.0, (times[-1] + window - _now()).total_seconds())


def claim_sign_in(settings: Settings, name: str, *, max_failures: int, window: dt.timedelta) -> float:
    """Count an attempt for `name` before its password is checked: 0 when it may go ahead (it then stands as a
    failure until `clear_failed_sign_ins` after a right password), else the seconds to wait (nothing is counted).

    Checked first and written after an argon2 verification, guesses sent at the same moment all found the count
    below the limit. Written and counted in one transaction, which SQLite runs one at a time; on PostgreSQL the
    transaction first takes a lock on the name (an advisory lock, held to its end: concurrent transactions would
    not see each other's rows). So each sees those before it, and no more than `max_failures` are ever checked
    within `window`."""
    now = _now()
    with engine(settings).begin() as con:
        if con.dialect.name == "postgresql":
            con.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"kanda-sign-in:{name}"))))
        con.execute(sign_in_failures.delete().where(sign_in_failures.c.at <= now - window))
        con.execute(sign_in_failures.insert().values(name=name, at=now))
        counted = con.execute(
            sa.select(sa.func.count())
            .select_from(sign_in_failures)
            .where(sign_in_failures.c.name == name, sign_in_failures.c.at > now - window)
        ).scalar_one()
        if counted <= max_failures:
            return 0.0
        con.rollback()  # refused: this attempt is not counted, so a locked name is not kept locked by the refusals
    return sign_in_wait(settings, name, max_failures=max_failures, window=window) or window.total_seconds()


def clear_failed_sign_ins(settings: Settings, name: str) -> None:
    with engine(settings).begin() as con:
        con.execute(sign_in_failures.delete().where(sign_in_failures.c.name == name))


def _utc(value: dt.datetime) -> dt.datetime:
    """In UTC whatever the connection's zone: SQLite gives back naive times for aware columns (written in UTC), and
    PostgreSQL gives them in the session's `TimeZone`. A sign-in stamp built from them must read the same on every
    host, or a session opened on one replica is ended by another."""
    return value.astimezone(dt.UTC) if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
