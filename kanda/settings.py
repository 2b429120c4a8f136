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

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        env = KandaEnvironment()
        return _given_secret(env.secret_key, env.secret_key_file, "KANDA_SECRET_KEY") or _kept_secret(
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
            folder.mkdir(parents=True, exist_ok=True)


class KandaEnvironment(BaseSettings):
    """The `KANDA_*` environment, validated by pydantic-settings (a bad value fails with the variable's name).

    Unset values are resolved against the data directory by `load_settings`, so that the catalog, warehouse and
    application database follow `KANDA_HOME` unless given.
    """

    model_config = SettingsConfigDict(env_prefix="KANDA_", extra="ignore")

    home: Path = Path(".kanda")
    catalog_url: str | None = None
    warehouse: str | None = None
    buyer_salt: str | None = None
    duckdb_memory: str = "2GB"
    #: A store's DuckDB memory limit while it ingests: the batch's dedupe and insert spill to disk beyond it, so
    #: that the reader's chunks and DuckDB together stay near 1 GB at any file size (docs/benchmarks.md).
    ingest_memory: str = "512MB"
    #: Equal to `regions.rails.base.DEFAULT_BATCH_ROWS` (a test holds them together); not imported from there
    #: because that module loads polars, which commands such as `kanda query` never need.
    batch_rows: int = Field(default=100_000, gt=0)
    lock_wait: float = Field(default=600.0, ge=0)
    app_db_url: str | None = None
    secret_key: str | None = None
    secret_key_file: Path | None = None
    buyer_salt_file: Path | None = None
    catalog_properties: str | None = None  # a JSON object of pyiceberg properties, e.g. {"s3.region": "eu-west-1"}
    regions: str | None = None  # comma-separated region codes served by this host


class SmtpEnvironment(BaseSettings):
    """`KANDA_SMTP_*`: an SMTP relay for creator reports; no host means the outbox."""

    model_config = SettingsConfigDict(env_prefix="KANDA_SMTP_", extra="ignore")

    host: str | None = None
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = None
    from_: str = Field(default=SmtpSettings.sender, validation_alias="KANDA_SMTP_FROM")

    def settings(self) -> SmtpSettings | None:
        if not self.host:
            return None
        return SmtpSettings(
            host=self.host,
            port=self.port,
            starttls=self.starttls,
            username=self.user or None,
            password=self.password or None,
            sender=self.from_,
        )


def _salt(home: Path, given: str | None, given_file: Path | None = None) -> str:
    """A per-installation salt for buyer references: given (environment or a distributed file), else kept locally.

    Buyer hashes must be stable across runs and hosts (duplicates and repeat buyers are recognised by them) yet
    useless outside this installation. On one machine the salt is created once and kept beside the data it
    protects; an installation with several hosts gives every host the same salt (a random one per data folder
    would make a region moved to another host re-hash its buyers; its store refuses a different salt).
    """
    return _given_secret(given, given_file, "KANDA_BUYER_SALT") or _kept_secret(home, "buyer_salt")


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
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    path.write_text(value)
    path.chmod(0o600)
    return value


class WarehouseMismatch(RuntimeError):
    """The central catalog's tables live in another warehouse than this host is configured with."""


def masked_url(url: str) -> str:
    """A database URL fit to print: the password replaced by `***` (SQLAlchemy's own rendering)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url


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
            raise ValueError(f"KANDA_CATALOG_PROPERTIES is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise ValueError('KANDA_CATALOG_PROPERTIES must be a JSON object, e.g. {"s3.region": "eu-west-1"}')
        properties.update({str(k): str(v) for k, v in extra.items()})
    return tuple(sorted(properties.items()))


def _served(given: str | None) -> tuple[str, ...]:
    return tuple(sorted({code.strip().upper() for code in (given or "").split(",") if code.strip()}))


def serves_region(code: str) -> bool:
    """Whether this host runs the region (`KANDA_REGIONS`, default every region), read without touching any file.

    A region host's Dagster code location offers sensors and schedules only for its own regions: the store and
    landing folder of any other region are on another host.
    """
    served = _served(KandaEnvironment().regions)
    return not served or code.upper() in served


def load_settings(home: Path | str | None = None) -> Settings:
    """Settings from the environment; `home` overrides `KANDA_HOME` (the catalog and warehouse follow it)."""
    env = KandaEnvironment()
    home = Path(home if home is not None else env.home).expanduser().resolve()
    return Settings(
        home=home,
        catalog_url=env.catalog_url or f"sqlite:///{home / 'catalog' / 'catalog.db'}",
        warehouse_uri=env.warehouse or (home / "warehouse").as_uri(),
        buyer_salt=_salt(home, env.buyer_salt, env.buyer_salt_file),
        duckdb_memory_limit=env.duckdb_memory,
        batch_rows=env.batch_rows,
        ingest_memory_limit=env.ingest_memory,
        lock_wait_seconds=env.lock_wait,
        app_db_url=env.app_db_url or f"sqlite:///{home / 'app' / 'kanda.db'}",
        smtp=SmtpEnvironment().settings(),
        catalog_properties=_catalog_properties(env.catalog_properties),
        served=_served(env.regions),
    )
