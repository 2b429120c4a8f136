"""Run the SQL models of `warehouse_models/` inside a regional store, in layer order, as one transaction."""

from __future__ import annotations

import duckdb

import warehouse_models
from kanda.regional.store import transaction


def load_seeds(con: duckdb.DuckDBPyConnection) -> None:
    """Refresh reference tables from their seed files (small; replaced whole so edits to a seed take effect)."""
    con.execute("DELETE FROM fx_rates")
    con.execute(
        "INSERT INTO fx_rates SELECT currency, rate_date, usd_per_unit FROM read_csv(?, header = true,"
        " columns = {'currency': 'VARCHAR', 'rate_date': 'DATE', 'usd_per_unit': 'DECIMAL(24, 12)'})",
        [str(warehouse_models.seed("fx_rates"))],
    )


def build_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Build every model; a failure leaves the previous build in place. Returns the model names built."""
    built = []
    with transaction(con):
        load_seeds(con)
        for path in warehouse_models.model_files():
            con.execute(path.read_text())
            built.append(path.stem)
    return built
