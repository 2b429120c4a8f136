"""Where kanda keeps its runtime data, read from the environment once.

Everything a run writes lives under one data directory (`KANDA_HOME`, default `./.kanda`) so that a checkout stays
clean and a whole installation can be moved or wiped as one folder. The central catalog and the application
database (steward reviews, accounts, API keys) are SQLAlchemy URLs: SQLite files under `KANDA_HOME` by default,
PostgreSQL at scale. SMTP for creator reports is optional (`KANDA_SMTP_*`); without it reports go to an outbox.

Past one machine (docs/deployment.md) the warehouse is an object store configured the way the ecosystem does it
(`AWS_*`), and the secrets that must agree between hosts (the buyer salt, the web secret) come from the environment
or from a file the operator distributes (`KANDA_BUYER_SALT_FILE`, `KANDA_SECRET_KEY_FILE`), never from a random
value kept in one data folder.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP relay for creator reports; absent means "write .eml files to the outbox"."""

    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str = "kanda reports <reports@kanda.invalid>"
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    warehouse_uri: str
    buyer_salt: str
    duckdb_memory_limit: str
    batch_rows: int
    ingest_memory_limit: str = "512MB"
    lock_wait_seconds: float = 600.0
    #: How long a publication stays readable by `--as-of` / `as_of` (`kanda.central.retention`).
    keep_publications_hours: float = 168.0
    #: ... and while it is among the newest this many.
    keep_publications: int = 200
    #: `kanda query`: a statement's time limit (0: none) and how much it may spill to disk beside the reader file.
    query_timeout_seconds: float = 300.0
    query_spill_limit: str = "4GiB"
    analyst_memory: str = "auto"
    app_db_url: str = ""
    smtp: SmtpSettings | None = None
    #: Extra pyiceberg catalog/FileIO properties (`s3.endpoint`, ...), from `AWS_*` and `KANDA_CATALOG_PROPERTIES`.
    catalog_properties: tuple[tuple[str, str], ...] = ()
    #: The regions this host serves (`KANDA_REGIONS=KE,NG`); empty: every configured region.
    served: tuple[str, ...] = field(default=())

    @property
    def masked_catalog_url(self) -> str:
        return masked_url(self.catalog_url)

    @property
    def masked_app_db_url(self) -> str:
        return masked_url(self.app_db_url)

    def serves(self, region: str) -> bool:
        """Whether this host runs the region's flow (its landing folder and store are here)."""
        return not self.served or region.upper() in self.served

    @property
    def outbox_dir(self) -> Path:
        """Where reports go as `.eml` files when no SMTP server is configured (the demo)."""
        return self.home / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def snapshot_path(self) -> Path:
        """The read-only DuckDB file of the rollups that BI tools connect to, swapped in after each publish."""
        return self.home / "bi" / "rollups.duckdb"

    @property
    def gx_dir(self) -> Path:
        """The Great Expectations file context: suites, results and the Data Docs site."""
        return self.home / "gx"

    @property
    def secret_key(self) -> str:
        """Signs web sessions and CSRF tokens; created once per installation, like the buyer salt."""
        env = environment(KANDA)
        return _given_secret(env["secret_key"], env["secret_key_file"], "KANDA_SECRET_KEY") or _kept_secret(
            self.home, "secret_key"
        )

    @property
    def stores_dir(self) -> Path:
        return self.home / "stores"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def rejected_dir(self) -> Path:
        return self.home / "rejected"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    def store_path(self, region: str) -> Path:
        return self.stores_dir / f"{region.lower()}.duckdb"

    def landing(self, region: str) -> Path:
        from regions import get_region  # regions imports regions.money; imported here to keep settings leaf-level

        return get_region(region).landing_folder(self.landing_dir)

    def ensure_dirs(self) -> None:
        for folder in (self.stores_dir, self.landing_dir, self.rejected_dir, self.registry_dir, self.locks_dir):
            with unusable_home(self.home):
                folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Variable:
    """One setting read from the environment: the variable is the group's prefix and the upper-cased `name`, or
    `alias`. `kind` is str, int, float, bool or Path; `optional` allows None (the default unless one is given)."""

    name: str
    kind: type
    default: Any = None
    optional: bool = False
    gt: float | None = None
    ge: float | None = None
    alias: str | None = None
    #: A text setting's form (a regular expression the whole value must match), e.g. a memory size.
    pattern: str | None = None

    def variable(self, prefix: str) -> str:
        return self.alias or f"{prefix}{self.name.upper()}"


@dataclass(frozen=True)
class Group:
    """Settings read together. `title` names the pydantic-settings model made from them, which its validation
    errors carry (`kanda.cli` turns those into one `Error:` line naming the variable)."""

    title: str
    prefix: str
    variables: tuple[Variable, ...]


#: A DuckDB memory limit as kanda accepts it: a number and a unit ("512MB", "1.5GB", "2 GiB") or a share of the
#: machine's memory ("50%"). Checked with the settings, so that a typo is one `Error:` line naming the variable, not
#: a DuckDB parser error when a store opens.
MEMORY_SIZE = r"(?i)^[0-9]+(\.[0-9]+)? ?(%|[kmgtp]i?b|b)$"
#: A size on disk as DuckDB's `max_temp_directory_size` takes it: a number and a unit ("4GiB", "500MB").
DISK_SIZE = r"(?i)^[0-9]+(\.[0-9]+)? ?([kmgtp]i?b|b)$"
#: An address-space cap: a size, or 0 for none.
ADDRESS_SIZE = r"(?i)^(auto|0|[0-9]+(\.[0-9]+)? ?([kmgtp]i?b|b))$"
#: What a value of each pattern should look like, said in place of the pattern when a value does not match it.
PATTERN_MEANINGS = {
    MEMORY_SIZE: "should be a memory size such as 512MB, 1.5GB or 50%",
    DISK_SIZE: "should be a size such as 500MB or 4GiB",
    ADDRESS_SIZE: "should be auto, a size such as 8GiB, or 0 for no cap",
}

#: The `KANDA_*` environment: the one list of kanda's settings, their defaults and bounds. Unset values are resolved
#: against the data directory by `load_settings`, so that the catalog, warehouse and application database follow
#: `KANDA_HOME` unless given.
KANDA = Group(
    "KandaEnvironment",
    "KANDA_",
    (
        Variable("home", Path, Path(".kanda")),
        Variable("catalog_url", str, optional=True),
        Variable("warehouse", str, optional=True),
        Variable("buyer_salt", str, optional=True),
        Variable("duckdb_memory", str, "2GB", pattern=MEMORY_SIZE),
        # A store's DuckDB memory limit while it ingests: the batch's dedupe and insert spill to disk beyond it, so
        # that the reader's chunks and DuckDB together stay near 1 GB at any file size (docs/benchmarks.md).
        Variable("ingest_memory", str, "512MB", pattern=MEMORY_SIZE),
        # Equal to `regions.rails.base.DEFAULT_BATCH_ROWS` (a test holds them together); not imported from there
        # because that module loads polars, which commands such as `kanda query` never need.
        Variable("batch_rows", int, 100_000, gt=0),
        Variable("lock_wait", float, 600.0, ge=0),
        # How long a publication stays readable (time travel); older ones are let go so publishing stays fast.
        Variable("keep_publications_hours", float, 168.0, gt=0),
        Variable("keep_publications", int, 200, gt=0),
        # Analyst SQL on this host (`kanda query`, and the spill of the API's reader files): a runaway statement is
        # stopped, and cannot fill the disk that holds KANDA_HOME.
        Variable("query_timeout", float, 300.0, ge=0),
        Variable("query_spill", str, "4GiB", pattern=DISK_SIZE),
        # The address space of a process answering analyst SQL (`kanda serve` workers, `kanda query`); auto scales
        # with the cores and the DuckDB memory limit (`kanda.memory_cap`); 0: no cap.
        Variable("analyst_memory", str, "auto", pattern=ADDRESS_SIZE),
        Variable("app_db_url", str, optional=True),
        Variable("secret_key", str, optional=True),
        Variable("secret_key_file", Path, optional=True),
        Variable("buyer_salt_file", Path, optional=True),
        # a JSON object of pyiceberg properties, e.g. {"s3.region": "eu-west-1"}
        Variable("catalog_properties", str, optional=True),
        Variable("regions", str, optional=True),  # comma-separated region codes served by this host
    ),
)
#: `KANDA_SMTP_*`: an SMTP relay for creator reports; no host means the outbox.
SMTP = Group(
    "SmtpEnvironment",
    "KANDA_SMTP_",
    (
        Variable("host", str, optional=True),
        Variable("port", int, 587),
        Variable("starttls", bool, True),
        Variable("user", str, optional=True),
        Variable("password", str, optional=True),
        Variable("from_", str, SmtpSettings.sender, alias="KANDA_SMTP_FROM"),
    ),
)
GROUPS = {group.title: group for group in (KANDA, SMTP)}


def environment(group: Group) -> dict[str, Any]:
    """The group's values from the environment, by field name.

    pydantic-settings is the judge of a value (its errors name the variable and say what is wrong), but importing
    it costs a one-shot `kanda query` a fifth of its start-up. So values in their plain form (digits for a number,
    true/false for a flag, ...) are read here, to the value pydantic would give them (tests/test_settings.py
    compares the two); anything else, and any variable spelled in another case, goes to pydantic-settings, which
    reads the whole group and raises its `ValidationError` for a bad value.
    """
    variables = {v.variable(group.prefix): v for v in group.variables}
    values = {v.name: v.default for v in group.variables}
    for name, text in os.environ.items():
        upper = name.upper()
        if not upper.startswith(group.prefix):
            continue
        variable = variables.get(upper)
        if variable is None:
            continue  # not a setting of this group (pydantic-settings ignores it too)
        value = _plain(variable, text) if name == upper else _DOUBT
        if value is _DOUBT:
            return _model(group)().model_dump()
        values[variable.name] = value
    return values


_DOUBT = object()
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _plain(variable: Variable, text: str) -> object:
    """`text` as `variable`'s value when it is in the plain form of its kind and within bounds, else `_DOUBT`."""
    value: object
    if variable.kind is str:
        return text if variable.pattern is None or re.fullmatch(variable.pattern, text) else _DOUBT
    if variable.kind is Path:
        return Path(text) if text else _DOUBT
    if variable.kind is bool:
        return _FLAGS.get(text.lower(), _DOUBT)
    if variable.kind is int and _INTEGER.fullmatch(text):
        value = int(text)
    elif variable.kind is float and _DECIMAL.fullmatch(text):
        value = float(text)
    else:
        return _DOUBT
    if (variable.gt is not None and not value > variable.gt) or (variable.ge is not None and not value >= variable.ge):
        return _DOUBT
    return value


@cache
def _model(group: Group) -> type:
    """The pydantic-settings model of a group (imported only when a value needs its judgement)."""
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    annotations: dict[str, object] = {}
    namespace: dict[str, object] = {
        "__module__": __name__,
        "__doc__": f"The `{group.prefix}*` environment, validated by pydantic-settings.",
        "model_config": SettingsConfigDict(env_prefix=group.prefix, extra="ignore"),
    }
    for v in group.variables:
        annotations[v.name] = v.kind | None if v.optional else v.kind
        namespace[v.name] = Field(default=v.default, gt=v.gt, ge=v.ge, pattern=v.pattern, validation_alias=v.alias)
    namespace["__annotations__"] = annotations
    return type(group.title, (BaseSettings,), namespace)


def __getattr__(name: str) -> type:
    """`KandaEnvironment` and `SmtpEnvironment`, the pydantic-settings models, made on first use."""
    if name in GROUPS:
        return _model(GROUPS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _smtp(values: dict[str, Any]) -> SmtpSettings | None:
    if not values["host"]:
        return None
    return SmtpSettings(
        host=values["host"],
        port=values["port"],
        starttls=values["starttls"],
        username=values["user"] or None,
        password=values["password"] or None,
        sender=values["from_"],
    )


def _salt(home: Path, given: str | None, given_file: Path | None = None) -> str:
    """A per-installation salt for buyer references: given (environment or a distributed file), else kept locally.

    Buyer hashes must be stable across runs and hosts (duplicates and repeat buyers are recognised by them) yet
    useless outside this installation. On one machine the salt is created once and kept beside the data it
    protects; an installation with several hosts gives every host the same salt (a random one per data folder
    would make a region moved to another host re-hash its buyers; its store refuses a different salt).
    """
    return _given_secret(given, given_file, "KANDA_BUYER_SALT") or _kept_secret(home, "buyer_salt")


def _not_a_folder(home: Path) -> Path | None:
    """The first of `home` and its parents, from the root down, that exists but is not a directory."""
    for folder in (*reversed(home.parents), home):
        if folder.exists() and not folder.is_dir():
            return folder
    return None


def _given_secret(value: str | None, path: Path | None, variable: str) -> str | None:
    """A secret from the environment itself or from the file `<variable>_FILE` names (as Docker secrets are)."""
    if value:
        return value
    if path is None:
        return None
    try:
        text = path.expanduser().read_text().strip()
    except OSError as exc:
        raise ValueError(f"{variable}_FILE={path}: cannot read it ({exc.strerror})") from None
    if not text:
        raise ValueError(f"{variable}_FILE={path} is empty")
    return text


def _kept_secret(home: Path, name: str) -> str:
    """A random secret created on first use and kept (mode 600) in the data directory."""
    path = home / name
    with unusable_home(home):
        if path.exists():
            return path.read_text().strip()
        import secrets  # hashlib and OpenSSL: only when a secret is created, not in every `kanda query`

        home.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(16)
        path.write_text(value)
        path.chmod(0o600)
        return value


class UnusableHome(OSError):
    """The data directory (`KANDA_HOME`) cannot be created, read or written: under a regular file, on a read-only
    file system, without permission. Its message names the directory and the system's reason."""


@contextmanager
def unusable_home(home: Path) -> Iterator[None]:
    """Turns an `OSError` on the data directory into `UnusableHome`: `KANDA_HOME <home> cannot be used: <reason>`."""
    try:
        yield
    except UnusableHome:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        in_the_way = _not_a_folder(home) if exc.errno in (errno.ENOTDIR, errno.EEXIST) else None
        if in_the_way is not None:
            reason = f"{in_the_way} is not a directory"
        elif exc.filename is not None and Path(exc.filename) != home:
            reason = f"{reason}: {exc.filename}"
        raise UnusableHome(f"KANDA_HOME {home} cannot be used: {reason}") from exc


class BadSetting(ValueError):
    """A setting whose value cannot be used as given (a `KANDA_CATALOG_PROPERTIES` that is not a JSON object)."""


#: `scheme://[user[:password]@]host[:port]...`, read without importing SQLAlchemy (settings load on every command).
_DATABASE_URL = re.compile(
    r"(?P<scheme>[A-Za-z0-9+_.-]+)://(?:[^/?#]*@)?(?:\[[^\]]*\]|[^:/?#@]*)(?::(?P<port>[^/?#]*))?"
)


def _database_url(variable: str, url: str) -> str:
    """The URL as given, or a `BadSetting` naming the variable for two common mistakes that SQLAlchemy reports only
    with a traceback on first use: the `postgres://` scheme (hosting providers print it; SQLAlchemy knows only
    `postgresql://`) and a port that is not a number. Never quotes the password."""
    found = _DATABASE_URL.match(url)
    if found is None:
        raise BadSetting(f"{variable} {masked_url(url)} is not a database URL (e.g. postgresql+psycopg://host/db)")
    if found["scheme"].split("+", 1)[0].lower() == "postgres":
        raise BadSetting(
            f"{variable}: the scheme {found['scheme']}:// is not one SQLAlchemy knows: write postgresql://"
            " (or postgresql+psycopg://) instead"
        )
    if found["port"] is not None and not found["port"].isdigit():
        raise BadSetting(f"{variable} {masked_url(url)}: the port {found['port']!r} is not a number")
    return url


class WarehouseMismatch(RuntimeError):
    """The central catalog's tables live in another warehouse than this host is configured with."""


def masked_url(url: str) -> str:
    """A database URL fit to print: the password replaced by `***`, wherever the URL carries it.

    In the user part, up to the last `@` before the host (a password may hold an unescaped `@`; SQLAlchemy's own
    rendering split at the first one and printed the rest), and in any query parameter named like a secret
    (`?password=...`, which that rendering printed as it was)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    found = _USER_AND_HOST.match(rest)
    if found:
        user, host_and_tail = found["user"], found["host_and_tail"]
        rest = (user.split(":", 1)[0] + ":***" if ":" in user else user) + "@" + host_and_tail
    head, qmark, query = rest.partition("?")
    if qmark:
        query = "&".join(
            f"{key}=***" if eq and _SECRET_PARAMETER.search(key) else f"{key}{eq}{value}"
            for key, eq, value in (item.partition("=") for item in query.split("&"))
        )
    return f"{scheme}://{head}{qmark}{query}"


#: `user[:password]@host...`: the user part runs to the last `@` before the first `/`, `?` or `#` after it.
_USER_AND_HOST = re.compile(r"(?P<user>[^/?#]*)@(?P<host_and_tail>[^@/?#]*(?:[/?#].*)?)$", re.DOTALL)
#: Query parameters of a database URL whose values are secrets (`?password=...`, libpq's `sslpassword`, ...).
_SECRET_PARAMETER = re.compile(r"pass|secret|token|key", re.IGNORECASE)


#: The standard AWS variables and the pyiceberg FileIO property each one sets (object-store warehouses).
AWS_PROPERTIES = {
    "AWS_ENDPOINT_URL_S3": "s3.endpoint",
    "AWS_ENDPOINT_URL": "s3.endpoint",
    "AWS_ACCESS_KEY_ID": "s3.access-key-id",
    "AWS_SECRET_ACCESS_KEY": "s3.secret-access-key",
    "AWS_SESSION_TOKEN": "s3.session-token",
    "AWS_REGION": "s3.region",
    "AWS_DEFAULT_REGION": "s3.region",
}


def _catalog_properties(given: str | None) -> tuple[tuple[str, str], ...]:
    """pyiceberg properties from the `AWS_*` variables, overridden by `KANDA_CATALOG_PROPERTIES` (JSON).

    pyiceberg's catalog only learns an endpoint or credentials through properties, so the usual AWS variables
    are passed on, the more specific one winning (`AWS_ENDPOINT_URL_S3` over `AWS_ENDPOINT_URL`).
    """
    properties: dict[str, str] = {}
    for variable, key in reversed(AWS_PROPERTIES.items()):
        if os.environ.get(variable):
            properties[key] = os.environ[variable]
    if given:
        try:
            extra = json.loads(given)
        except json.JSONDecodeError as exc:
            raise BadSetting(f"KANDA_CATALOG_PROPERTIES is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise BadSetting('KANDA_CATALOG_PROPERTIES must be a JSON object, e.g. {"s3.region": "eu-west-1"}')
        properties.update({str(k): str(v) for k, v in extra.items()})
    return tuple(sorted(properties.items()))


def _served(given: str | None) -> tuple[str, ...]:
    return tuple(sorted({code.strip().upper() for code in (given or "").split(",") if code.strip()}))


def served_regions() -> tuple[str, ...]:
    """The region codes `KANDA_REGIONS` names, upper-cased; empty when it names none (every region is served)."""
    return _served(environment(KANDA)["regions"])


def serves_region(code: str) -> bool:
    """Whether this host runs the region (`KANDA_REGIONS`, default every region), read without touching any file.

    A region host's Dagster code location offers sensors and schedules only for its own regions: the store and
    landing folder of any other region are on another host.
    """
    served = _served(environment(KANDA)["regions"])
    return not served or code.upper() in served


def load_settings(home: Path | str | None = None) -> Settings:
    """Settings from the environment; `home` overrides `KANDA_HOME` (the catalog and warehouse follow it)."""
    env = environment(KANDA)
    given = Path(home if home is not None else env["home"])
    try:
        home = given.expanduser().resolve()
    except RuntimeError as exc:  # a symbolic link loop, or `~` without a home directory
        raise UnusableHome(f"KANDA_HOME {given} cannot be used: {exc}") from None
    return Settings(
        home=home,
        catalog_url=_database_url(
            "KANDA_CATALOG_URL", env["catalog_url"] or f"sqlite:///{home / 'catalog' / 'catalog.db'}"
        ),
        warehouse_uri=env["warehouse"] or (home / "warehouse").as_uri(),
        buyer_salt=_salt(home, env["buyer_salt"], env["buyer_salt_file"]),
        duckdb_memory_limit=env["duckdb_memory"],
        batch_rows=env["batch_rows"],
        ingest_memory_limit=env["ingest_memory"],
        lock_wait_seconds=env["lock_wait"],
        keep_publications_hours=env["keep_publications_hours"],
        keep_publications=env["keep_publications"],
        query_timeout_seconds=env["query_timeout"],
        query_spill_limit=env["query_spill"],
        analyst_memory=env["analyst_memory"],
        app_db_url=_database_url("KANDA_APP_DB_URL", env["app_db_url"] or f"sqlite:///{home / 'app' / 'kanda.db'}"),
        smtp=_smtp(environment(SMTP)),
        catalog_properties=_catalog_properties(env["catalog_properties"]),
        served=_served(env["regions"]),
    )
