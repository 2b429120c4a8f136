"""Dagster's own metadata conventions for kanda's tables: owners, table names, column schemas, row counts.

The column descriptions come from the same source as the models and the data dictionary (`warehouse_models`),
so the Dagster UI, `kanda serve`'s dictionary and the Iceberg column docs never disagree.
"""

from __future__ import annotations

import pyarrow as pa
from dagster import TableColumn, TableSchema

import warehouse_models

#: Who answers for kanda's assets (Dagster shows it in the catalog).
OWNERS = ["team:kanda-data"]


def column_schema(table: str, schema: pa.Schema) -> TableSchema:
    """A table's columns with their types and, where the models document them, their descriptions."""
    docs = warehouse_models.column_docs(table)
    return TableSchema(
        columns=[
            TableColumn(name=field.name, type=str(field.type), description=_describe(docs.get(field.name)))
            for field in schema
        ]
    )


def _describe(column: warehouse_models.Column | None) -> str | None:
    """The column's description with its unit, as the data dictionary states it."""
    if column is None:
        return None
    return f"{column.description} ({column.unit})" if column.unit else column.description
