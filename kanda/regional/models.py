"""Run the SQL models of `warehouse_models/` inside a regional store, in dependency order, as one transaction.

A region run builds the models once and publishes that build (`kanda.central.publish` reads the built rollups).
Each build records the store version it was built from, so a publish can tell a current build from a stale one
(another writer changed the store in between) and only then builds again.

Builds are incremental, like dbt's incremental models with a lookback: only the local days that changed since the
last build are rebuilt, plus every day a late event restates (`restated`). Rebuilding everything over all history
on every publish made a one-day change cost as much as the whole history. The changed days are the store's
`dirty_days` (every writer that changes what a model reads marks the local days it touched: batch loads, held
releases, fix loads). They are the days changed since the last *publish*, a superset of those changed since the
last build: a publish clears only days it published, and it always builds first, under the same writer lock. So an
incremental build may redo a few days that were already current, never miss one. A full build (every model
rebuilt whole) runs on `full_refresh`, for the first build, and whenever any model, models.yml or seed changed
(`warehouse_models.fingerprint()`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

import warehouse_models
from kanda.regional.store import transaction

#: Temp table holding the payments an incremental build (or a publish) recomputes.
PAYMENTS_TABLE = "kanda_build_payments"


@dataclass(frozen=True)
class BuildResult:
    models: list[str]
    built: bool  # False: the last build was of this very store version, so nothing ran
    store_version: str
    full: bool = True  # every model rebuilt whole (False: an incremental build of `days` local days)
    days: int = 0  # local days an incremental build rebuilt


@dataclass(frozen=True)
class Restatement:
    """What a set of changed days restates: the payments with an event on them, and every day those payments
    have an event on (where they are counted: first seen, succeeded, refunded), the changed days included."""

    days: list[dt.date]
    payments: int  # rows in PAYMENTS_TABLE
    everything: bool  # every day the store has events on is among `days` (a full build is cheaper)


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


def days_sql(days: list[dt.date]) -> str:
    """A parenthesised list of DATE literals for `IN`.

    Literals rather than a subquery on a table of days: the optimizer sees constants and pushes the filter through
    the views down to the table scans (a short list becomes a scan filter that skips row groups by their min/max, a
    longer one a join with the constants right at the scan); a subquery gives it no constants to push.
    """
    if not days:
        return "(NULL)"  # matches nothing
    return "(" + ", ".join(f"DATE '{d.isoformat()}'" for d in days) + ")"


def restated(con: duckdb.DuckDBPyConnection, changed: list[dt.date]) -> Restatement:
    """The restatement closure of `changed` days; fills the temp table PAYMENTS_TABLE with its payments.

    A late event moves what an earlier day counts: a payment is counted on the day it was first seen and on the day
    it succeeded, in its channel, and a later refund or reversal changes its state. So every day of every payment
    with an event on a changed day is rebuilt (and republished) too. Shared by the build and the publish, so a
    publish sends exactly the days an incremental build may have changed.
    """
    changed = sorted(set(changed))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PAYMENTS_TABLE} (transaction_id VARCHAR)")
    if not changed:
        return Restatement([], 0, everything=False)
    untouched = con.execute(
        f"SELECT count(DISTINCT local_date) FROM sale_events WHERE local_date NOT IN {days_sql(changed)}"
    ).fetchall()[0][0]
    if not untouched:  # every day changed (a first build or publish): the closure would only join everything
        return Restatement(changed, 0, everything=True)
    con.execute(
        f"INSERT INTO {PAYMENTS_TABLE} SELECT DISTINCT transaction_id FROM sale_events"
        f" WHERE local_date IN {days_sql(changed)}"
    )
    payments = con.execute(f"SELECT count(*) FROM {PAYMENTS_TABLE}").fetchall()[0][0]
    more = []
    if payments:
        more = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT local_date FROM sale_events WHERE local_date NOT IN {days_sql(changed)}"
                f" AND transaction_id IN (SELECT transaction_id FROM {PAYMENTS_TABLE})"
            ).fetchall()
        ]
    return Restatement(sorted(set(changed) | set(more)), payments, everything=len(more) == untouched)


def run_models(con: duckdb.DuckDBPyConnection, scope: Restatement | None = None) -> list[str]:
    """Materialise every model in dependency order (models.yml `depends_on` and `materialized`).

    `scope` None: a full build, every table created again from all history. Otherwise incremental models replace
    only the rows of the restated days (by `local_date`) or payments (by `transaction_id`): DELETE then INSERT of
    the model's SELECT restricted to them; views and plain tables are created as in a full build. Callers own the
    transaction; `ensure_built` also reloads the seeds first. Returns the model names run.
    """
    sets = None
    if scope is not None:
        sets = {
            "in_build_days": days_sql(scope.days),
            "in_build_payments": f"(SELECT transaction_id FROM {PAYMENTS_TABLE})",
        }
    built = []
    for model in warehouse_models.models():
        if model.materialized == "view":
            con.execute(f"CREATE OR REPLACE VIEW {model.name} AS\n{model.compiled()}")
        elif model.materialized == "table" or sets is None:
            con.execute(f"CREATE OR REPLACE TABLE {model.name} AS\n{model.compiled()}")
        else:
            assert model.unique_key is not None
            macro = warehouse_models.INCREMENTAL_KEYS[model.unique_key]
            con.execute(f"DELETE FROM {model.name} WHERE {model.unique_key} IN {sets[macro]}")
            con.execute(f"INSERT INTO {model.name} BY NAME\n{model.compiled(sets)}")
        built.append(model.name)
    return built


def build_models(con: duckdb.DuckDBPyConnection, *, full_refresh: bool = True) -> list[str]:
    """Build every model (whole, unless `full_refresh` is False); a failure leaves the previous build in place.
    Returns the model names built."""
    return ensure_built(con, force=True, full_refresh=full_refresh).models


def ensure_built(con: duckdb.DuckDBPyConnection, *, force: bool = False, full_refresh: bool = False) -> BuildResult:
    """Build the models unless the newest build is of the store as it is now (or `force`).

    Incremental when it can be (see the module docstring); `full_refresh` rebuilds every model whole.
    """
    version = store_version(con)
    last = con.execute("SELECT store_version, models FROM model_builds ORDER BY built_at DESC LIMIT 1").fetchall()
    if not force and not full_refresh and last and last[0][0] == version:
        return BuildResult(list(last[0][1]), built=False, store_version=version)
    full = full_refresh or not _incremental_possible(con, last[0][0] if last else None)
    with transaction(con):
        load_seeds(con)
        scope = None
        if not full:
            changed = [r[0] for r in con.execute("SELECT DISTINCT local_date FROM dirty_days").fetchall()]
            scope = restated(con, changed)
            full = scope.everything
        if full:
            built = run_models(con)
        elif scope is not None and scope.days:
            built = run_models(con, scope)
        else:  # nothing a model reads changed (a steward's rejection only changes the version): already current
            built = [m.name for m in warehouse_models.models()]
        con.execute("DELETE FROM model_builds")
        con.execute("INSERT INTO model_builds VALUES (?, ?, ?)", [version, dt.datetime.now(dt.UTC), built])
    return BuildResult(built, built=True, store_version=version, full=full, days=0 if full else len(scope.days))


def _incremental_possible(con: duckdb.DuckDBPyConnection, last_version: str | None) -> bool:
    """An incremental build can only patch a complete build made by the same models: one must exist, of the same
    fingerprint (the version's last part), with every incremental model's table in place."""
    if last_version is None or last_version.rsplit(":", 1)[-1] != warehouse_models.fingerprint():
        return False
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    return all(m.name in tables for m in warehouse_models.models() if m.materialized == "incremental")
