"""The regional store's `sale_events` table, as the contract defines it: shared by the store, which creates it,
and the store upgrades, which rebuild it when the contract gains a column."""

from __future__ import annotations

import polars as pl

from quality.contract import CONTRACT_COLUMNS, VIRTUAL_COLUMNS, SaleEvent

#: DuckDB type of each polars dtype the contract uses.
_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Int64: "BIGINT",
    pl.Date: "DATE",
    pl.Datetime: "TIMESTAMPTZ",  # the contract's datetimes are UTC; TIMESTAMPTZ keeps the instant
}


def sale_events_ddl() -> str:
    """`CREATE TABLE sale_events` generated from the SaleEvent contract: its columns, types and nullability.

    The contract is the one schema source, so a column added there cannot be forgotten here. Columns the contract
    derives (`event_id`) are virtual, not stored: writing a unique string per row would cost as much as the rest
    of the row.
    """
    columns = SaleEvent.to_schema().columns
    stored, derived = [], []
    for name in CONTRACT_COLUMNS:
        dtype = columns[name].dtype.type
        sql_type = _DUCKDB_TYPES[dtype if isinstance(dtype, type) else type(dtype)]
        if name in VIRTUAL_COLUMNS:
            derived.append(f"    {name} {sql_type} GENERATED ALWAYS AS ({VIRTUAL_COLUMNS[name]}) VIRTUAL")
        else:
            stored.append(f"    {name} {sql_type}{'' if columns[name].nullable else ' NOT NULL'}")
    lines = stored + derived
    return "CREATE TABLE IF NOT EXISTS sale_events (\n" + ",\n".join(lines) + "\n);\n"
