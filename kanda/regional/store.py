"""Regional DuckDB stores: one file per region, one writer at a time.

DuckDB lets one process open a file read-write *or* many processes read it, never both, and a second writer fails
rather than waits. Every access therefore goes through a per-region file lock, which turns "database is locked"
errors into orderly queueing: the CLI, the Dagster assets and the tests all open stores through `open_store`.

A store remembers a fingerprint of the buyer salt it was built with (`store_identity`): buyer references are
salted hashes, and a store opened with another salt (a region moved to a host without the installation's salt)
would stop recognising its duplicates and repeat buyers. Such a store is refused with the reason, before anything
is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb
from filelock import FileLock, Timeout

from kanda.regional import ledger
from kanda.regional.schema import sale_events_ddl
from kanda.regional.upgrades import UPGRADES
from kanda.settings import Settings
from kanda.spill import clear_dead_spill
from regions import get_region
from regions.money import MINOR_UNIT_EXPONENT
from regions.rails import states_fees

SCHEMA_SQL = (
    sale_events_ddl()
    + """CREATE TABLE IF NOT EXISTS quarantine (
    quarantine_id   VARCHAR NOT NULL,
    batch_id        VARCHAR NOT NULL,
    region          VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    source_file     VARCHAR NOT NULL,
    source_row      BIGINT NOT NULL,
    transaction_id  VARCHAR,
    creator_id      VARCHAR,
    local_date      DATE,
    raw_record      JSON NOT NULL,
    parsed          JSON NOT NULL,
    reasons         JSON NOT NULL,
    hold            VARCHAR,
    status          VARCHAR NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL,
    released_at     TIMESTAMPTZ,
    released_batch  VARCHAR
);
CREATE TABLE IF NOT EXISTS ledger (
    seq             BIGINT NOT NULL,
    batch_id        VARCHAR NOT NULL,
    region          VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    file_name       VARCHAR,
    content_hash    VARCHAR,
    rows_read       BIGINT NOT NULL,
    ignored         BIGINT NOT NULL,
    rows_in         BIGINT NOT NULL,
    loaded          BIGINT NOT NULL,
    quarantined     BIGINT NOT NULL,
    duplicates      BIGINT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    prev_hash       VARCHAR NOT NULL,
    row_hash        VARCHAR NOT NULL
);
-- each batch's money as the ledger row `seq` recorded it (kanda/regional/ledger.py): its own batch's when it loaded,
-- or the batches a store upgrade changed; hashed into that row, so the anchored heads carry it
CREATE TABLE IF NOT EXISTS batch_money (
    seq             BIGINT NOT NULL,
    batch_id        VARCHAR NOT NULL,
    events          BIGINT NOT NULL,
    amount_minor    HUGEINT NOT NULL,
    fee_minor       HUGEINT NOT NULL,
    net_minor       HUGEINT NOT NULL,
    digest          VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected_files (
    region          VARCHAR NOT NULL,
    file_name       VARCHAR NOT NULL,
    content_hash    VARCHAR NOT NULL,
    reason          VARCHAR NOT NULL,
    kept_at         VARCHAR NOT NULL,
    rejected_at     TIMESTAMPTZ NOT NULL,
    kind            VARCHAR  -- the reason's class (regions.rails.base.REJECT_KINDS); NULL for rows from before it
);
-- stores created before rejections had a kind
ALTER TABLE rejected_files ADD COLUMN IF NOT EXISTS kind VARCHAR;
CREATE TABLE IF NOT EXISTS dirty_days (local_date DATE NOT NULL);
-- whether the rail that read a batch's events stated fees then (kanda/regional/batch.py), per batch and rail
CREATE TABLE IF NOT EXISTS batch_rails (
    batch_id        VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    fees_stated     BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS published_models (fingerprint VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS model_builds (
    store_version   VARCHAR NOT NULL,
    built_at        TIMESTAMPTZ NOT NULL,
    models          VARCHAR[] NOT NULL
);
CREATE TABLE IF NOT EXISTS publish_log (
    publish_id      VARCHAR NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL,
    days            BIGINT NOT NULL,
    rows_published  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS creators (
    creator_id VARCHAR, region VARCHAR, name VARCHAR, email VARCHAR, language VARCHAR, locale VARCHAR,
    currency VARCHAR
);
CREATE TABLE IF NOT EXISTS products (
    product_id VARCHAR, creator_id VARCHAR, region VARCHAR, title VARCHAR, price_minor BIGINT, currency VARCHAR
);
CREATE TABLE IF NOT EXISTS fx_rates (currency VARCHAR, rate_date DATE, usd_per_unit DECIMAL(24, 12));
CREATE OR REPLACE TABLE currencies (currency VARCHAR, exponent INTEGER);
-- corrections applied once to rows an older kanda stored (kanda/regional/upgrades.py)
CREATE TABLE IF NOT EXISTS store_upgrades (
    name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL, rows_changed BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_identity (salt_fingerprint VARCHAR NOT NULL, recorded_at TIMESTAMPTZ NOT NULL);
"""
)


class StoreBusy(RuntimeError):
    """Another process holds the region's store (a run is writing it); try again when it finishes."""


class StoreDamaged(RuntimeError):
    """A store that has been written holds only some of its core tables: damaged, not new; never re-created empty."""


#: Tables every store has had since its first release: a store with some of them and not others was damaged.
CORE_TABLES = ("sale_events", "quarantine", "ledger")


def _require_core_tables(con: duckdb.DuckDBPyConnection, settings: Settings, region: str) -> None:
    """A writer's open creates the schema with `CREATE TABLE IF NOT EXISTS`: a dropped `sale_events` was re-created
    empty, `kanda status` then showed the region healthy with no events and reports were built from stale rollups.
    A store holding some core tables and not the others is refused instead (restore it from a backup)."""
    have = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND table_name IN ?", [CORE_TABLES]
        ).fetchall()
    }
    if have and len(have) < len(CORE_TABLES):
        missing = ", ".join(t for t in CORE_TABLES if t not in have)
        raise StoreDamaged(
            f"the {region} store {settings.store_path(region)} is damaged: it has no {missing} table, which every"
            " store has; restore it from a backup (it is never re-created empty: its history would be lost unseen)"
        )


class SaltMismatch(RuntimeError):
    """The store was built with another buyer salt than this host's: its buyer references would not match."""


def salt_fingerprint(salt: str) -> str:
    """A short, one-way name of the salt (enough to tell two salts apart, useless for recovering one)."""
    return hashlib.sha256(f"kanda-buyer-salt:{salt}".encode()).hexdigest()[:16]


def _check_salt(con: duckdb.DuckDBPyConnection, settings: Settings, region: str, *, record: bool) -> None:
    """Refuse a store built with another salt; record the salt of a store that has none recorded yet."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "store_identity" not in tables:
        return  # a read-only open of a store from before salt fingerprints: the next write records it
    found = con.execute("SELECT salt_fingerprint FROM store_identity LIMIT 1").fetchall()
    mine = salt_fingerprint(settings.buyer_salt)
    if not found:
        if record:
            con.execute("INSERT INTO store_identity VALUES (?, now())", [mine])
        return
    if found[0][0] != mine:
        raise SaltMismatch(
            f"the {region} store {settings.store_path(region)} was built with another buyer salt (fingerprint"
            f" {found[0][0]}) than this host's ({mine}): give this host the installation's salt (KANDA_BUYER_SALT"
            " or KANDA_BUYER_SALT_FILE) before running it, or duplicates and repeat buyers stop being recognised"
        )


@contextmanager
def open_store(
    settings: Settings, region: str, *, read_only: bool = False, wait_seconds: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The region's store, opened under its lock; created with its schema on first use.

    Readers take the same lock as writers: a DuckDB file cannot have a writer and a reader in two processes at
    once, and analysts never read regional stores anyway (they read the published central layer).
    """
    settings.ensure_dirs()
    path = settings.store_path(region)
    lock = FileLock(str(settings.locks_dir / f"{region.lower()}.lock"))
    try:
        lock.acquire(timeout=settings.lock_wait_seconds if wait_seconds is None else wait_seconds)
    except Timeout:
        raise StoreBusy(f"the {region} store is busy (another run holds {lock.lock_file})") from None
    try:
        if read_only and not path.exists():
            read_only = False  # first use: create it so that readers see an empty, well-formed store
        clear_dead_spill(path)  # a killed run's sort or dedupe spill
        con = _connect(settings, region, read_only=read_only)
        try:
            _check_salt(con, settings, region, record=False)  # before this open writes anything
            _require_core_tables(con, settings, region)
            if not read_only:
                _prepare(con, settings, region)
            elif _upgrades_pending(con):
                # A store an older kanda wrote, read before any writer opened it: bring it up to date first (the
                # lock is held, so no one else has it open), so that readers see the tables and corrections that
                # every query expects.
                con.close()
                con = _connect(settings, region, read_only=False)
                _prepare(con, settings, region)
                con.close()
                con = _connect(settings, region, read_only=True)
            yield con
        finally:
            con.close()
    finally:
        lock.release()


def _connect(settings: Settings, region: str, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    path = settings.store_path(region)
    try:
        return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": settings.duckdb_memory_limit})
    except duckdb.IOException as exc:
        if "Could not set lock" not in str(exc):
            raise
        # a process outside kanda (the DuckDB CLI, a notebook) has the file open: busy, not broken
        held = str(exc).strip().splitlines()[0]
        raise StoreBusy(f"the {region} store is busy (another process has {path} open: {held})") from None


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, region: str) -> None:
    """What every writer's open does: the schema, the reference tables, the salt's record and pending upgrades."""
    con.execute(SCHEMA_SQL)
    # one statement: executemany is one INSERT per currency, 0.15 s of every open
    con.execute(
        "INSERT INTO currencies SELECT unnest(?::VARCHAR[]), unnest(?::INTEGER[])",
        [list(MINOR_UNIT_EXPONENT), list(MINOR_UNIT_EXPONENT.values())],
    )
    info = get_region(region)
    con.execute(
        "CREATE OR REPLACE TABLE region_info AS SELECT ? AS region, ? AS currency, ? AS zone, ? AS fees_stated",
        [info.code, info.currency, info.zone, states_fees(info)],
    )
    _check_salt(con, settings, region, record=True)
    apply_store_upgrades(con, settings)


def _upgrades_pending(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this store misses an upgrade (or the table that records them: a store older than upgrades)."""
    (recorded,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'store_upgrades' AND schema_name = 'main'"
    ).fetchall()[0]
    if not recorded:
        return True
    done = {name for (name,) in con.execute("SELECT name FROM store_upgrades").fetchall()}
    return any(upgrade.name not in done for upgrade in UPGRADES)


def apply_store_upgrades(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Apply each correction of `kanda.regional.upgrades` this store has not had, each in a transaction of its own
    (with its record in `store_upgrades`); return {name: rows changed}.

    A correction changes stored events in place, so the money the ledger recorded for their batches is restated in
    the same transaction (`ledger.restate_money`), or `kanda verify` would take the correction for an edit."""
    done = {name for (name,) in con.execute("SELECT name FROM store_upgrades").fetchall()}
    applied = {}
    for upgrade in UPGRADES:
        if upgrade.name not in done:
            with transaction(con):
                recorded = con.execute("SELECT count(*) FROM batch_money").fetchall()[0][0]
                before = ledger.batch_money(con) if recorded else {}
                applied[upgrade.name] = upgrade.apply(con, settings)
                ledger.restate_money(con, before, upgrade.name)
                con.execute("INSERT INTO store_upgrades VALUES (?, now(), ?)", [upgrade.name, applied[upgrade.name]])
    return applied


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: committed when the block ends, rolled back if anything in it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, limit: str, *, restore: str) -> Iterator[None]:
    """Run a block under another DuckDB memory limit (an ingest's), then put the store's own limit back."""
    con.execute(f"SET memory_limit = {sql_text(limit)}")
    try:
        yield
    finally:
        with suppress(duckdb.Error):
            con.execute(f"SET memory_limit = {sql_text(restore)}")


def sql_text(value: str) -> str:
    """`value` as a SQL string literal (for the statements that take no parameters: SET, COPY ... TO)."""
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[str]:
    """Expose a polars/arrow object to SQL under `name` for the duration of a block.

    Unregistering in an aborted transaction fails; that second error must not hide the first. Inside a
    transaction DuckDB (2.0) keeps a registered object alive until the transaction ends, even once it is
    unregistered: large data streamed chunk by chunk through here inside one transaction would pile up in memory.
    """
    con.register(name, data)
    try:
        yield name
    finally:
        with suppress(duckdb.Error):
            con.unregister(name)


def store_exists(settings: Settings, region: str) -> bool:
    return settings.store_path(region).exists()
