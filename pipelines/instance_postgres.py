"""The central Dagster instance of a multi-host installation: Dagster's PostgreSQL storage, always via psycopg2.

Referenced from `deploy/dagster.yaml`; needs the `postgres` extra (dagster-postgres, psycopg2), which is why it is
not in `pipelines/instance.py` (the one-machine instance must load without it).

SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3, on which dagster-postgres's event log fails
(`NOTIFY run_events, $1`: psycopg 3 binds parameters on the server, where NOTIFY takes none). This storage sends
whatever PostgreSQL URL it is given through psycopg2, so one URL form serves kanda and Dagster alike.
"""

from __future__ import annotations

from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_config, pg_url_from_config
from sqlalchemy.engine import make_url


def psycopg2_url(url: str) -> str:
    """The same database, named with the psycopg2 driver."""
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


class KandaPostgresStorage(DagsterPostgresStorage):
    """Runs, event logs and schedules in PostgreSQL, shared by the daemon, the webserver and every region host's
    run workers. Same config as Dagster's `storage: postgres:` block."""

    @classmethod
    def config_type(cls) -> Any:
        return pg_config()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> KandaPostgresStorage:
        return cls(
            postgres_url=psycopg2_url(pg_url_from_config(config_value)),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
        )
