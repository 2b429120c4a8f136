"""`duckdb+kanda://`: duckdb-engine's SQLAlchemy dialect, with column reflection that works on DuckDB 2.

BI tools and notebooks list a database's tables and columns through SQLAlchemy's inspector. duckdb-engine 0.17 (the
newest release) fails at `inspect(engine).get_columns(...)` with the SQLAlchemy kanda runs on, for two reasons:

- SQLAlchemy 2.0.45 added a subquery on `pg_catalog.pg_collation.collnamespace` to the PostgreSQL dialect's column
  query, which duckdb-engine reuses. DuckDB's `pg_catalog` emulation has `pg_collation` without that column, so the
  query does not bind (duckdb_engine issue #1379, duckdb issue #22069; the fix, duckdb_engine pull request #1393,
  is not released). Nothing in a read-only snapshot file can mend a system view (DuckDB refuses objects in
  `pg_catalog`), so the fix is on the client: the same query with the collation left NULL (DuckDB has no
  per-column collations for it to report).
- SQLAlchemy 2.1 changed the arguments of the PostgreSQL dialect's `_get_columns_info`, which duckdb-engine's own
  `get_multi_columns` calls the 2.0 way (TypeError). This dialect calls it the way the installed SQLAlchemy wants.
- The primary key, unique, foreign key and check queries cast to `REGCLASS`, a type DuckDB does not have, so
  `MetaData.reflect()` and `Table(..., autoload_with=engine)` failed too. This dialect reads those constraints from
  DuckDB's own `duckdb_constraints()` instead, and reports no PostgreSQL table options (`pg_inherits`, also
  missing).

Everything else is duckdb-engine's. `pip install 'kanda[bi]'` installs duckdb-engine and registers this dialect
(entry point `duckdb.kanda`), so `duckdb+kanda:////path/to/rollups.duckdb?access_mode=read_only` works where plain
`duckdb:///` does. With SQLAlchemy older than 2.0.45 plain `duckdb:///` reflects columns too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy import sql
from sqlalchemy.dialects import registry

try:  # SQLAlchemy 2.1
    from sqlalchemy.dialects.postgresql.base import _NamedTypeLoader
except ImportError:  # SQLAlchemy 2.0
    _NamedTypeLoader = None


class Dialect(DuckDBDialect):
    """duckdb-engine, reflecting columns without `pg_catalog.pg_collation`."""

    name = "duckdb"
    driver = "kanda"
    supports_statement_cache = False

    @lru_cache  # noqa: B019 (as SQLAlchemy's own: one query per argument combination, for the dialect's lifetime)
    def _columns_query(self, schema: Any, has_filter_names: Any, scope: Any, kind: Any) -> Any:
        query = super()._columns_query(schema, has_filter_names, scope, kind)
        columns = list(query.selected_columns)
        if not any(column.name == "collation" for column in columns):
            return query  # an SQLAlchemy from before 2.0.45
        kept = [sql.null().label("collation") if column.name == "collation" else column for column in columns]
        return query.with_only_columns(*kept, maintain_column_froms=False)

    def get_multi_columns(
        self,
        connection: Any,
        schema: str | None = None,
        filter_names: Any = None,
        scope: Any = None,
        kind: Any = None,
        **kw: Any,
    ) -> Any:
        if _NamedTypeLoader is None:  # SQLAlchemy 2.0: duckdb-engine's own works
            return super().get_multi_columns(connection, schema, filter_names, scope, kind, **kw)
        has_filter_names, params = self._prepare_filter_names(filter_names)
        query = self._columns_query(schema, has_filter_names, scope, kind)
        # All rows first: duckdb-engine runs every query of a connection on one cursor, and loading a named type
        # (below, only for a type it does not know) would run another query on it mid-iteration.
        rows = list(connection.execute(query, params).mappings())
        return self._get_columns_info(rows, _NamedTypeLoader(self, connection, kw), schema).items()

    def get_multi_pk_constraint(self, connection: Any, schema: str | None = None, filter_names: Any = None, **kw: Any):
        found = self._constraints(connection, schema, filter_names, "PRIMARY KEY")
        return [
            (
                key,
                {"constrained_columns": rows[0][1], "name": rows[0][0], "comment": None}
                if rows
                else {"constrained_columns": [], "name": None},
            )
            for key, rows in found.items()
        ]

    def get_multi_unique_constraints(
        self, connection: Any, schema: str | None = None, filter_names: Any = None, **kw: Any
    ):
        found = self._constraints(connection, schema, filter_names, "UNIQUE")
        return [
            (key, [{"name": name, "column_names": columns, "comment": None} for name, columns, _, _ in rows])
            for key, rows in found.items()
        ]

    def get_multi_foreign_keys(self, connection: Any, schema: str | None = None, filter_names: Any = None, **kw: Any):
        found = self._constraints(connection, schema, filter_names, "FOREIGN KEY")
        return [
            (
                key,
                [
                    {
                        "name": name,
                        "constrained_columns": columns,
                        "referred_schema": schema,
                        "referred_table": table,
                        "referred_columns": referred,
                        "options": {},
                        "comment": None,
                    }
                    for name, columns, table, referred in rows
                ],
            )
            for key, rows in found.items()
        ]

    def get_multi_check_constraints(
        self, connection: Any, schema: str | None = None, filter_names: Any = None, **kw: Any
    ):
        found = self._constraints(connection, schema, filter_names, "CHECK")
        return [
            (key, [{"name": name, "sqltext": expression, "comment": None} for name, _, expression, _ in rows])
            for key, rows in found.items()
        ]

    def get_multi_table_options(self, connection: Any, schema: str | None = None, filter_names: Any = None, **kw: Any):
        """PostgreSQL storage options (inheritance, access method, tablespace): DuckDB has none of them."""
        names = list(filter_names) if filter_names else self.get_table_names(connection, schema)
        return [((schema, name), {}) for name in names]

    def _constraints(
        self, connection: Any, schema: str | None, filter_names: Any, kind: str
    ) -> dict[tuple[str | None, str], list[tuple[str, list[str], str | None, list[str]]]]:
        """One kind of constraint per table of `schema` (the connection's current one by default), from DuckDB:
        (name, columns, referenced table or a CHECK's expression, referenced columns)."""
        names = list(filter_names) if filter_names else self.get_table_names(connection, schema)
        found: dict[tuple[str | None, str], list] = {(schema, name): [] for name in names}
        rows = connection.execute(
            sql.text(
                "SELECT table_name, constraint_name, constraint_column_names,"
                " CASE WHEN constraint_type = 'CHECK' THEN expression ELSE referenced_table END,"
                " referenced_column_names FROM duckdb_constraints() WHERE database_name = current_database()"
                " AND schema_name = coalesce(:schema, current_schema()) AND constraint_type = :kind"
                " ORDER BY table_name, constraint_index"
            ),
            {"schema": schema, "kind": kind},
        ).fetchall()
        for table, name, columns, referenced, referred in rows:
            if (schema, table) in found:
                found[(schema, table)].append((name, list(columns), referenced, list(referred or [])))
        return found


registry.register("duckdb.kanda", __name__, "Dialect")
