"""Run the SQL models of `warehouse_models/` inside a regional store, in dependency order, as one transaction.

A region run builds the models once and publishes that build (`kanda.central.publish` reads the built rollups).
Each build records the store version it was built from, so a publish can tell a current build from a stale one
(another writer changed the store in between) and only then builds again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

import warehouse_models
from kanda.regional.store import transaction


@dataclass(frozen=True)
class BuildResult:
    models: list[str]
    built: bool  # False: the last build was of this very store version, so nothing ran
    store_version: str


def load_seeds(con: duckdb.DuckDBPyConnection) -> None:
    """Refresh reference tables from their seed files (small; replaced whole so edits to a seed take effect)."""
    con.execute("DELETE FROM fx_rates")
    con.execute(
        "INSERT INTO fx_rates SELECT currency, rate_date, usd_per_unit FROM read_csv(?, header = true,"
        " columns = {'currency': 'VARCHAR', 'rate_date': 'DATE', 'usd_per_unit': 'DECIMAL(24, 12)'})",
        [str(warehouse_models.seed("fx_rates"))],
    )


def store_version(con: duckdb.DuckDBPyConnection) -> str:
    """What the models read, summarised: the ledger head (every load is a batch) and the quarantine statuses
    (stewards' rejections change quarantine rates without a batch), plus the model code itself."""
    head = con.execute("SELECT coalesce(max(seq), 0), coalesce(max_by(row_hash, seq), '') FROM ledger").fetchall()[0]
    statuses = con.execute("SELECT status, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall()
    return f"{head[0]}:{head[1][:16]}:{statuses}:{warehouse_models.fingerprint()}"


def build_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Build every model; a failure leaves the previous build in place. Returns the model names built."""
    return ensure_built(con, force=True).models


def run_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Run every model's SQL in dependency order (models.yml `depends_on`) on the reference tables as they are.

    Callers own the transaction; `ensure_built` also reloads the seeds first. Returns the model names run.
    """
    built = []
    for model in warehouse_models.models():
        con.execute(model.sql)
        built.append(model.name)
    return built


def ensure_built(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> BuildResult:
    """Build the models unless the newest build is of the store as it is now."""
    version = store_version(con)
    if not force:
        last = con.execute("SELECT store_version, models FROM model_builds ORDER BY built_at DESC LIMIT 1").fetchall()
        if last and last[0][0] == version:
            return BuildResult(list(last[0][1]), built=False, store_version=version)
    with transaction(con):
        load_seeds(con)
        built = run_models(con)
        con.execute("DELETE FROM model_builds")
        con.execute("INSERT INTO model_builds VALUES (?, ?, ?)", [version, dt.datetime.now(dt.UTC), built])
    return BuildResult(built, built=True, store_version=version)
