"""The review store: stewards' queue and audit log in the application database (SQLAlchemy).

Review state is small, transactional and written by many people at once, which is what a SQL database is for and
what a regional DuckDB file (one writer) is not. The URL is `settings.app_db_url`: a SQLite file under
`KANDA_HOME` by default (WAL, so readers never block the one writer, and a busy timeout, so two stewards saving at
the same moment queue instead of failing), PostgreSQL by setting `KANDA_APP_DB_URL`. Other features keep their
tables in the same database; ours are prefixed `review_` and live in their own `MetaData`.

The audit log is append-only: this module offers no way to change or delete an audit row, and the database itself
refuses to (triggers that raise on UPDATE or DELETE), so a history cannot be rewritten through SQL either.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.types import TypeDecorator

from kanda.review.pii import masked_record
from kanda.schema_setup import settle_schema
from regions import all_regions
from regions.corrections import (
    MTN_SOURCE,
    SALE_ONLY_FEE_SOURCES,
    YOCO_SOURCE,
    at_yoco_event_time,
    mtn_request_key,
    repeats_a_sale_fee,
    without_repeated_fee,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite would drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if dialect.name != "sqlite" else value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


#: One row per quarantined store row (quarantine_id is the store's own id, hence unique: enqueueing is idempotent).
items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("region", String(8), nullable=False),
    Column("quarantine_id", String(200), nullable=False, unique=True),
    Column("batch_id", String(200), nullable=False),
    Column("source", String(64), nullable=False),
    Column("source_file", String(500), nullable=False),
    Column("source_row", BigInteger, nullable=False),
    Column("transaction_id", String(200)),
    Column("creator_id", String(64)),
    #: copied from the parsed fields so that the queue can be searched by product without reading JSON
    Column("product_id", String(64)),
    Column("local_date", Date),
    Column("hold", String(64)),
    Column("raw_record", JSON, nullable=False),
    Column("parsed", JSON, nullable=False),
    #: [{rule, column, value, severity}] as the boundary reported them on arrival
    Column("rules", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    #: the steward's field edits {column: text}; {} until someone edits
    Column("edits", JSON, nullable=False),
    #: the steward who took the item ("assign to me"); None while nobody has
    Column("assignee", String(200)),
    Column("decided_by", String(200)),
    Column("decision_reason", Text),
    #: the store batch that loaded the row (fix, waiver or automatic release), or that recorded a rejection
    Column("applied_batch", String(200)),
    Column("applied_at", UtcDateTime),
    Column("quarantined_at", UtcDateTime, nullable=False),
    Column("enqueued_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("review_items_region_status", "region", "status"),
    Index("review_items_source_file", "source_file"),
    Index("review_items_creator", "creator_id"),
    Index("review_items_assignee", "assignee"),
)

#: Columns added after the first release, with how to fill them in a database created before: `create_all` makes
#: missing tables only, so an older review database gains them here (once, on first use).
_ADDED_COLUMNS = {
    "product_id": lambda: items.c.parsed["product_id"].as_string(),
    "assignee": None,
}

#: Data upgrades applied to this database, by name: each rewrites rows made by an older kanda, once.
upgrades = Table(
    "review_upgrades",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("applied_at", UtcDateTime, nullable=False),
)

#: The failing rules of each item, one row each, so that "filter and count by rule" is plain SQL on every engine.
item_rules = Table(
    "review_item_rules",
    metadata,
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("column", String(64)),
    Column("severity", String(16), nullable=False),
    Index("review_item_rules_rule", "rule", "item_id"),
    Index("review_item_rules_item", "item_id"),
)

#: Append-only: who did what to which item, when, the state before and after, and why.
audit = Table(
    "review_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("reason", Text),
    Index("review_audit_item", "item_id", "id"),
)

_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER IF NOT EXISTS review_audit_no_update BEFORE UPDATE ON review_audit"
    " BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS review_audit_no_delete BEFORE DELETE ON review_audit"
    " BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END",
]

_POSTGRES_APPEND_ONLY = [
    "CREATE OR REPLACE FUNCTION review_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'review_audit is append-only'; END $$",
    "DROP TRIGGER IF EXISTS review_audit_append_only ON review_audit",
    "CREATE TRIGGER review_audit_append_only BEFORE UPDATE OR DELETE ON review_audit"
    " FOR EACH ROW EXECUTE FUNCTION review_audit_append_only()",
]

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL per process, with the review tables created on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        triggers = _SQLITE_APPEND_ONLY
    else:
        engine = create_engine(url, pool_pre_ping=True)
        triggers = _POSTGRES_APPEND_ONLY if parsed.get_backend_name() == "postgresql" else []

    def build(con: Connection) -> None:
        metadata.create_all(con)
        _add_missing_columns(con)
        _apply_data_upgrades(con)
        for statement in triggers:
            con.execute(text(statement))

    settle_schema(engine, build)
    return engine


def _add_missing_columns(con: Connection) -> None:
    """Bring a review database made by an older kanda up to this schema (new nullable columns, backfilled)."""
    present = {c["name"] for c in inspect(con).get_columns("review_items")}
    for name, fill in _ADDED_COLUMNS.items():
        if name in present:
            continue
        column = items.c[name]
        kind = column.type.compile(dialect=con.dialect)
        con.execute(text(f'ALTER TABLE review_items ADD COLUMN "{name}" {kind}'))
        if fill is not None:
            con.execute(update(items).values({name: fill()}))


def _apply_data_upgrades(con: Connection) -> None:
    """Rewrite rows made under older rules, once per database (recorded in `review_upgrades`).

    `mask_names`: items enqueued before names were masked kept payers' names in their raw record (M-Pesa's
    `Details`, name fields). The masks are idempotent, so masking every item again changes only those.
    `sale_only_fees`: items of a rail whose older spec repeated the sale's fee on money going back
    (`regions.corrections`) keep that fee in their parsed fields, from which a steward's fix is loaded.
    `yoco_event_times`: Yoco items an older spec timed by the payload's time, two hours late (`regions.corrections`).
    `mtn_request_keys`: MTN MoMo items an older spec keyed by order, keyed by the request their record names.
    `mask_nested_names`: masking again once names inside a JSON rail's objects (Paystack's `data.customer`), phones
    written with dashes and names after "to"/"Account"/"via" were masked too.
    The marker row keeps the next start from reading every item again.
    """
    done = set(con.execute(select(upgrades.c.name)).scalars())
    for name, upgrade in (
        ("mask_names", _mask_raw_records),
        ("sale_only_fees", _drop_repeated_fees),
        ("yoco_event_times", _yoco_event_times),
        ("mtn_request_keys", _mtn_request_keys),
        ("mask_nested_names", _mask_raw_records),
    ):
        if name not in done:
            upgrade(con)
            con.execute(upgrades.insert().values(name=name, applied_at=now()))


#: Items read per page by an upgrade: a review database of years holds many, and only one page is in memory.
_UPGRADE_PAGE = 5_000


def _pages(con: Connection, *columns: Column, where: object = True) -> Iterable[list]:
    """The items' `columns` (after their id), page by page in id order."""
    last = 0
    while True:
        page = con.execute(
            select(items.c.id, *columns).where(items.c.id > last, where).order_by(items.c.id).limit(_UPGRADE_PAGE)
        ).all()
        yield page
        if len(page) < _UPGRADE_PAGE:
            return
        last = page[-1][0]


def _mask_raw_records(con: Connection) -> None:
    calling_codes = {code: region.calling_code for code, region in all_regions().items()}
    for page in _pages(con, items.c.region, items.c.raw_record):
        for item_id, region, raw in page:
            if isinstance(raw, dict):
                masked = masked_record(json.dumps(raw), calling_codes.get(region, ""))
                if masked != raw:
                    con.execute(update(items).where(items.c.id == item_id).values(raw_record=masked))


def _drop_repeated_fees(con: Connection) -> None:
    sources = items.c.source.in_(SALE_ONLY_FEE_SOURCES)
    for page in _pages(con, items.c.source, items.c.parsed, where=sources):
        for item_id, source, parsed in page:
            if not isinstance(parsed, dict):
                continue
            if repeats_a_sale_fee(source, parsed.get("event_type"), parsed.get("fee_minor")):
                con.execute(update(items).where(items.c.id == item_id).values(parsed=without_repeated_fee(parsed)))


def _yoco_event_times(con: Connection) -> None:
    from quality.contract import REPEATABLE_EVENT, event_ref_value  # pandera's weight only where this runs

    zones = {code: region.zone for code, region in all_regions().items()}
    for page in _pages(con, items.c.region, items.c.parsed, where=items.c.source == YOCO_SOURCE):
        for item_id, region, parsed in page:
            if not isinstance(parsed, dict):
                continue
            fixed = at_yoco_event_time(parsed, zones.get(region, "UTC"), partial(event_ref_value, REPEATABLE_EVENT))
            if fixed != parsed:
                day = dt.date.fromisoformat(fixed["local_date"])
                con.execute(update(items).where(items.c.id == item_id).values(parsed=fixed, local_date=day))


def _mtn_request_keys(con: Connection) -> None:
    mtn = items.c.source == MTN_SOURCE
    for page in _pages(con, items.c.transaction_id, items.c.raw_record, items.c.parsed, where=mtn):
        for item_id, old_key, raw, parsed in page:
            if not isinstance(parsed, dict) or not isinstance(raw, dict):
                continue
            key = mtn_request_key(parsed.get("event_type"), raw)
            if key is not None and key != old_key:
                fixed = {**parsed, "transaction_id": key}
                con.execute(update(items).where(items.c.id == item_id).values(transaction_id=key, parsed=fixed))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_audit(con: Connection, entries: Iterable[dict]) -> None:
    """Append audit rows (the only write the audit table accepts)."""
    entries = list(entries)
    if entries:
        con.execute(insert(audit), entries)
