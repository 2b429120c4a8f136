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
incremental build may redo a few days that were already current, never miss one. The restatement is found without
reading all history: the payments that got events since the last build (the ledger says which batches those are)
are looked up by key in `int_payment_days`; a build marks the days it restated as changed, and the publish sends
the changed days. A full build (every model rebuilt whole) runs on `full_refresh`, for the first build, and
whenever any model, models.yml or seed changed, or DuckDB did (`build_fingerprint()`), or the region's own
settings (`region_settings()`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb

import warehouse_models
from kanda.regional.days import in_days
from kanda.regional.store import transaction

#: Temp table holding the payments a build restates (an incremental build recomputes their `fct_sales` rows).
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
    """What an incremental build rebuilds: the changed days, and every day of every payment that got an event the
    last build had not seen (where it is counted: first seen, succeeded, refunded), in PAYMENTS_TABLE."""

    days: list[dt.date]
    payments: int  # rows in PAYMENTS_TABLE


def build_fingerprint() -> str:
    """What a build was made by: the models (`warehouse_models.fingerprint()`) and the DuckDB version, whose hash()
    keys `int_payment_days`. A build by other models, or by another DuckDB, is not patched but rebuilt whole."""
    return f"{warehouse_models.fingerprint()}-duckdb{duckdb.__version__}"


def load_seeds(con: duckdb.DuckDBPyConnection) -> None:
    """Refresh reference tables from their seed files (small; replaced whole so edits to a seed take effect)."""
    con.execute("DELETE FROM fx_rates")
    con.execute(
        "INSERT INTO fx_rates SELECT currency, rate_date, usd_per_unit FROM read_csv(?, header = true,"
        " columns = {'currency': 'VARCHAR', 'rate_date': 'DATE', 'usd_per_unit': 'DECIMAL(24, 12)'})",
        [str(warehouse_models.seed("fx_rates"))],
    )


def region_settings(con: duckdb.DuckDBPyConnection) -> str:
    """The region's own settings the models read (`region_info`: currency, zone, whether its rail states fees), as
    a short digest. The region file may change them (a new rail that states no fees); every day's rows may then
    change, so a build by other settings is rebuilt whole and every day is published again."""
    row = con.execute("SELECT region, currency, zone, fees_stated FROM region_info").fetchall()
    return hashlib.sha256(repr(row).encode()).hexdigest()[:12]


def store_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """`build_fingerprint` and this store's `region_settings`: what a build, or a publish, was made by."""
    return f"{build_fingerprint()}-region{region_settings(con)}"


def published_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """What a publication's rows were made by (`published_models`): the models and the region's settings, not the
    DuckDB version, which changes how a build is patched, not what it says."""
    return f"{warehouse_models.fingerprint()}-region{region_settings(con)}"


def store_version(con: duckdb.DuckDBPyConnection) -> str:
    """What the models read, summarised: the ledger head (every load is a batch) and the quarantine statuses
    (stewards' rejections change quarantine rates without a batch), plus what builds (`store_fingerprint`).

    It starts with the ledger head's sequence number: the next build restates what came after it."""
    head = con.execute("SELECT coalesce(max(seq), 0), coalesce(max_by(row_hash, seq), '') FROM ledger").fetchall()[0]
    statuses = con.execute("SELECT status, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall()
    return f"{head[0]}:{head[1][:16]}:{statuses}:{store_fingerprint(con)}"


def restated(
    con: duckdb.DuckDBPyConnection, changed: list[dt.date], built_seq: int, *, from_events: bool = False
) -> Restatement:
    """The changed days and their restatement; fills the temp table PAYMENTS_TABLE with the payments restated.

    A late event moves what an earlier day counts: a payment is counted on the day it was first seen and on the day
    it succeeded, in its channel, and a later refund or reversal changes its state. So every day of every payment
    that got an event since the last build is rebuilt too, and marked changed, so that the publish sends it. Those
    payments are the ones with an event on a changed day from a batch the last build had not seen (`built_seq`,
    the ledger's head then): its tables hold everything earlier. An event of no batch in the ledger counts as new;
    the writers always write one, and guessing wide only costs time.

    Their other days come from `int_payment_days` (an 8-byte key per event), or, for a full build, whose previous
    tables may be of other models, from the events themselves (`from_events`).
    """
    changed = sorted(set(changed))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PAYMENTS_TABLE} (transaction_id VARCHAR)")
    if not changed:
        return Restatement([], 0)
    con.execute(
        f"INSERT INTO {PAYMENTS_TABLE} SELECT DISTINCT transaction_id FROM sale_events"
        f" WHERE {in_days('local_date', changed)}"
        " AND batch_id NOT IN (SELECT batch_id FROM ledger WHERE seq <= ?)",
        [built_seq],
    )
    payments = con.execute(f"SELECT count(*) FROM {PAYMENTS_TABLE}").fetchall()[0][0]
    if not payments:
        return Restatement(changed, 0)
    if from_events:
        where = f"transaction_id IN (SELECT transaction_id FROM {PAYMENTS_TABLE})"
        source = "sale_events"
    else:
        where = f"payment_key IN (SELECT hash(transaction_id) FROM {PAYMENTS_TABLE})"
        source = "int_payment_days"
    more = [r[0] for r in con.execute(f"SELECT DISTINCT local_date FROM {source} WHERE {where}").fetchall()]
    return Restatement(sorted(set(changed) | set(more)), payments)


def run_models(con: duckdb.DuckDBPyConnection, scope: Restatement | None = None) -> list[str]:
    """Materialise every model in dependency order (models.yml `depends_on` and `materialized`).

    `scope` None: a full build, every table created again from all history. Otherwise incremental models replace
    only the rows of the restated days (by `local_date`) or payments (by `transaction_id`): DELETE (narrowed by the
    model's `incremental_predicates`) then INSERT of the model's SELECT restricted to them; plain tables are
    created as in a full build. A view's filter macros hold while the build runs (what reads it reads only the
    build's days, even where DuckDB would not carry a day filter into it), and it is created whole again before
    the build's transaction commits, so no one else ever sees it restricted. Callers own the transaction;
    `ensure_built` also reloads the seeds first. Returns the model names run.
    """
    sets: warehouse_models.Scope | None = None
    if scope is not None:
        days = scope.days
        sets = {
            "in_build_days": lambda expr: in_days(expr, days),
            "in_build_payments": lambda expr: f"{expr} IN (SELECT transaction_id FROM {PAYMENTS_TABLE})",
        }
    built = []
    for model in warehouse_models.models():
        if model.materialized == "view":
            con.execute(f"CREATE OR REPLACE VIEW {model.name} AS\n{model.compiled(sets)}")
        elif model.materialized == "table" or sets is None:
            con.execute(f"CREATE OR REPLACE TABLE {model.name} AS\n{model.compiled()}")
        else:
            assert model.unique_key is not None
            replaced = sets[warehouse_models.INCREMENTAL_KEYS[model.unique_key]](model.unique_key)
            narrowed = [warehouse_models.resolve(p, sets) for p in model.incremental_predicates]
            con.execute(f"DELETE FROM {model.name} WHERE {' AND '.join([replaced, *narrowed])}")
            con.execute(f"INSERT INTO {model.name} BY NAME\n{model.compiled(sets)}")
        built.append(model.name)
    for model in warehouse_models.models():
        if model.materialized == "view" and sets is not None and model.compiled(sets) != model.compiled():
            con.execute(f"CREATE OR REPLACE VIEW {model.name} AS\n{model.compiled()}")
    return built


def build_models(con: duckdb.DuckDBPyConnection, *, full_refresh: bool = True) -> list[str]:
    """Build every model (whole, unless `full_refresh` is False); a failure leaves the previous build in place.
    Returns the model names built."""
    return ensure_built(con, force=True, full_refresh=full_refresh).models


def ensure_built(con: duckdb.DuckDBPyConnection, *, force: bool = False, full_refresh: bool = False) -> BuildResult:
    """Build the models unless the newest build is of the store as it is now (or `force`).

    Incremental when it can be (see the module docstring); `full_refresh` rebuilds every model whole. Either way
    the days a late event restated are marked changed (`dirty_days`), so the next publish sends them.
    """
    version = store_version(con)
    last = con.execute("SELECT store_version, models FROM model_builds ORDER BY built_at DESC LIMIT 1").fetchall()
    if not force and not full_refresh and last and last[0][0] == version:
        return BuildResult(list(last[0][1]), built=False, store_version=version)
    previous = last[0][0] if last else None
    full = full_refresh or not _incremental_possible(con, previous)
    with transaction(con):
        load_seeds(con)
        scope = None
        if previous is not None:  # else a first build: every day the store has is changed anyway
            changed = [r[0] for r in con.execute("SELECT DISTINCT local_date FROM dirty_days").fetchall()]
            built_seq = int(previous.split(":", 1)[0])
            full = full or not _only_grown(con, changed, built_seq)
            scope = restated(con, changed, built_seq, from_events=full)
            con.execute(
                "INSERT INTO dirty_days SELECT d FROM unnest(?::DATE[]) AS t(d)"
                " WHERE d NOT IN (SELECT local_date FROM dirty_days)",
                [scope.days],
            )
            full = full or _everything(con, scope.days)
        if full:
            built = run_models(con)
            if previous is None and con.execute("SELECT count(*) FROM publish_log").fetchall()[0][0]:
                # No record of the last build on a store that has published (a store upgrade cleared it): what
                # changed since cannot be told, so every day goes out again rather than only the newest batches'.
                con.execute(
                    "INSERT INTO dirty_days SELECT DISTINCT local_date FROM region_daily"
                    " WHERE local_date NOT IN (SELECT local_date FROM dirty_days)"
                )
        elif scope is not None and scope.days:
            built = run_models(con, scope)
        else:  # nothing a model reads changed (a steward's rejection only changes the version): already current
            built = [m.name for m in warehouse_models.models()]
        con.execute("DELETE FROM model_builds")
        con.execute("INSERT INTO model_builds VALUES (?, ?, ?)", [version, dt.datetime.now(dt.UTC), built])
    return BuildResult(built, built=True, store_version=version, full=full, days=0 if full else len(scope.days))


def _only_grown(con: duckdb.DuckDBPyConnection, changed: list[dt.date], built_seq: int) -> bool:
    """Whether the changed days still hold every event the last build saw there, and no other event of a batch it
    had seen: what the writers leave, as they only append batches. An event deleted or moved by hand (an edit of
    history, a repair) fails this, counted and summed by payment key against `int_payment_days` (the events the
    last build saw): restating by new batches would then miss what it changed, so the build is a full one."""
    if not changed:
        return True
    where = in_days("local_date", changed)
    seen = con.execute(
        "SELECT count(*), coalesce(sum(hash(transaction_id)), 0) FROM sale_events"
        f" WHERE {where} AND batch_id IN (SELECT batch_id FROM ledger WHERE seq <= ?)",
        [built_seq],
    ).fetchall()[0]
    built = con.execute(f"SELECT count(*), coalesce(sum(payment_key), 0) FROM int_payment_days WHERE {where}")
    return seen == built.fetchall()[0]


def _everything(con: duckdb.DuckDBPyConnection, days: list[dt.date]) -> bool:
    """The days cover every day the built tables have (region_daily has them all): a full build is cheaper."""
    if not days:
        return False
    left = con.execute(f"SELECT count(*) FROM region_daily WHERE NOT {in_days('local_date', days)}").fetchall()
    return not left[0][0]


def _incremental_possible(con: duckdb.DuckDBPyConnection, last_version: str | None) -> bool:
    """An incremental build can only patch a complete build made the same way: one must exist, of the same
    `build_fingerprint` (the version's last part), with every incremental model's table in place."""
    if last_version is None or last_version.rsplit(":", 1)[-1] != store_fingerprint(con):
        return False
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    return all(m.name in tables for m in warehouse_models.models() if m.materialized == "incremental")
