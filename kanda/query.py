"""Read-only SQL over the central rollups, as `rollups.<table>`, at one consistent publication.

Analysts never open a regional store: queries run in a private in-memory DuckDB whose views point at the Parquet
files of the newest publication's snapshots. The connection is then locked down: only the warehouse folder is
readable, external access and configuration changes are off, and only SELECT-like statements are accepted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from kanda.central import (
    NAMESPACE,
    PUBLICATIONS,
    latest_publication,
    open_catalog,
    published_files,
    read_published,
)
from kanda.settings import Settings
from warehouse_models import PUBLISHED

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class QueryRefused(ValueError):
    """The statement is not a read-only query over the rollups."""


class NothingPublished(RuntimeError):
    """No region has published yet."""


def connect_central(settings: Settings, *, as_of: dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
    catalog = open_catalog(settings)
    publication = latest_publication(catalog, as_of=as_of)
    if publication is None:
        raise NothingPublished("nothing has been published yet: run `kanda publish` (or `kanda demo`) first")
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {NAMESPACE}")
    for name in PUBLISHED:
        files = published_files(catalog, publication, name)
        if files:
            listed = ", ".join("'" + f.removeprefix("file://").replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW {NAMESPACE}.{name} AS SELECT * FROM read_parquet([{listed}])")
        else:
            _register(con, name, read_published(catalog, publication, name))
    publications = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}").scan().to_arrow()
    _register(con, PUBLICATIONS, publications)
    if settings.warehouse_uri.startswith("file://"):
        warehouse = Path(settings.warehouse_uri.removeprefix("file://")).resolve()
        con.execute(f"SET allowed_directories = ['{warehouse}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register(f"_kanda_{name}", table)
    con.execute(f"CREATE VIEW {NAMESPACE}.{name} AS SELECT * FROM _kanda_{name}")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"could not parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused("send exactly one statement")
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise QueryRefused(f"only read-only queries are allowed here, not {kind}")


def run_query(settings: Settings, sql: str, *, as_of: dt.datetime | None = None) -> pa.Table:
    con = connect_central(settings, as_of=as_of)
    try:
        check_read_only(con, sql)
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"refused: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
