"""Real services for the deployment tests: a PostgreSQL server (CI runs one) and an S3 endpoint (moto's server).

Each test gets its own database (`kanda_test_<hex>`, dropped afterwards) and its own bucket. Without a PostgreSQL
server the `postgres` tests skip with the reason on a developer machine and fail under `CI=true`, where a skip
would hide that the deployment shape was never exercised.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kanda.settings import Settings, load_settings

#: The server's maintenance database; tests create theirs beside it.
ADMIN_URL = os.environ.get("KANDA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _server_missing() -> str | None:
    engine = sqlalchemy.create_engine(ADMIN_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        return f"no PostgreSQL server at {make_url(ADMIN_URL).render_as_string()} ({type(exc).__name__})"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    missing = _server_missing()
    if missing:
        message = f"{missing}: start one (.ci/run does) or set KANDA_TEST_PG_URL"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return ADMIN_URL


@pytest.fixture
def new_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Creates fresh, uniquely named databases on the server (URLs for psycopg 3) and drops them afterwards."""
    admin = sqlalchemy.create_engine(postgres_server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def create() -> str:
        name = f"kanda_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(postgres_server).set(database=name).render_as_string(hide_password=False)

    yield create
    with admin.connect() as conn:
        for name in made:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    bucket: str

    @property
    def warehouse(self) -> str:
        return f"s3://{self.bucket}/warehouse"

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a host of the installation is given."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }

    def object_keys(self) -> list[str]:
        import boto3

        client = boto3.client("s3", **_client_args(self))
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        import boto3

        boto3.client("s3", **_client_args(self)).delete_object(Bucket=self.bucket, Key=key)


def _client_args(store: ObjectStore) -> dict[str, str]:
    return {
        "endpoint_url": store.endpoint,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "region_name": "us-east-1",
    }


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free local port, for the whole session (buckets are per test)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def object_store(moto_endpoint: str) -> ObjectStore:
    import boto3

    store = ObjectStore(moto_endpoint, f"kanda-{uuid.uuid4().hex[:12]}")
    boto3.client("s3", **_client_args(store)).create_bucket(Bucket=store.bucket)
    return store


@dataclass(frozen=True)
class Installation:
    """One central service set: a catalog database, an app database, a bucket, and the installation's secrets."""

    catalog_url: str
    app_db_url: str
    store: ObjectStore
    salt: str = "installation-salt"
    secret: str = "installation-web-secret"

    def environment(self, home: Path, **extra: str) -> dict[str, str]:
        return {
            "KANDA_HOME": str(home),
            "KANDA_CATALOG_URL": self.catalog_url,
            "KANDA_APP_DB_URL": self.app_db_url,
            "KANDA_WAREHOUSE": self.store.warehouse,
            "KANDA_BUYER_SALT": self.salt,
            "KANDA_SECRET_KEY": self.secret,
            "KANDA_BATCH_ROWS": "400",
            **self.store.environment(),
            **extra,
        }

    def host(self, home: Path, monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
        """The settings of a host of this installation whose data folder is `home` (the environment is set)."""
        for key, value in self.environment(home, **extra).items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        settings.ensure_dirs()
        return settings


@pytest.fixture
def installation(new_database: Callable[[], str], object_store: ObjectStore) -> Installation:
    return Installation(catalog_url=new_database(), app_db_url=new_database(), store=object_store)
