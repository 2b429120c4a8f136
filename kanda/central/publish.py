"""Build a region's rollups and publish the days that changed to the central layer.

Runs under the region's writer lock (the store is read and its dirty-day list cleared) and the global publish lock
(see `kanda.central.catalog`). Each rollup table gets one Iceberg commit that replaces exactly (region, changed days);
then one row in `rollups.publications` makes the whole publish visible at once. A crash before that row leaves
readers on the previous publication and the dirty days in place, so the next publish redoes the work; any rollup
commits it made before dying are rolled back by the next publish of any region (`rollback_orphans`).

A publish that sends every day the region has replaces the region's whole partition instead of (region, days):
no old data file of the region is read or kept. That is what `kanda publish --region R --rebuild` does after
`kanda verify` found a lost or corrupt data file, and why a rebuild that dies half-way is finished by a plain
rerun (its days stay dirty, so the rerun again sends them all).

The lock keeps publishes from wasting each other's work; it is not what keeps publications whole. A publish reads
the newest publication once, builds every commit on exactly the snapshots it names, and appends its own row only if
no publication was added since (Iceberg's optimistic commit, checked by the catalog in the same UPDATE). A publish
that lost the lock mid-way (the database ended its session, or restarted, while the publish went on) and met
another publish in the tables therefore fails with `PublishConflict` instead of publishing a mix of both; its days
stay dirty and its stray commits are rolled back by the next publish.

Fault injection (tests only): `KANDA_FAULT=publish:<step>` makes the process exit at once (`os._exit(99)`, no
cleanup, as a kill would) at that step: `after_commit:<rollup table>`, `before_publication`, `after_publication`.
With `KANDA_FAULT_GATE=<path>` as well, the process pauses there instead, as a stalled host would: it creates
`<path>.waiting` and goes on once `<path>` exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlalchemy.exc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, EqualTo, In
from pyiceberg.table import Table

from kanda.central.anchors import anchor_problems, anchored_heads
from kanda.central.catalog import (
    LEDGER_ANCHOR,
    PUBLICATIONS,
    PUBLICATIONS_SCHEMA,
    Publication,
    PublishBusy,
    documented_schema,
    ensure_table,
    latest_publication,
    needs_full_publish,
    open_catalog,
    publish_lock,
    rollback_orphans,
)
from kanda.central.retention import let_go_of_old_publications
from kanda.regional.days import in_days
from kanda.regional.models import ensure_built, published_fingerprint
from kanda.regional.store import open_store, transaction
from kanda.settings import Settings, masked_url
from regions import get_region
from warehouse_models import published

log = logging.getLogger(__name__)

#: The environment variable naming a step to crash at; read only by `fault_point`, set only by tests.
FAULT_ENV = "KANDA_FAULT"
#: With it: pause at that step until this path exists, instead of crashing (tests only).
FAULT_GATE_ENV = "KANDA_FAULT_GATE"


def fault_point(step: str) -> None:
    """Die here, like a killed process, when a test asked for it (`KANDA_FAULT=publish:<step>`); or wait here, like a
    stalled one, until the test opens the gate (`KANDA_FAULT_GATE`)."""
    if os.environ.get(FAULT_ENV) != f"publish:{step}":
        return
    gate = os.environ.get(FAULT_GATE_ENV)
    if not gate:
        os._exit(99)
    Path(f"{gate}.waiting").touch()
    while not Path(gate).exists():
        time.sleep(0.05)


class PublishConflict(PublishBusy):
    """Another publish committed to the central tables while this one ran: this one made nothing visible."""


class CatalogFailed(PublishBusy):
    """The catalog database failed during a publish (down, restarting, out of reach); the store is as it was."""


@contextmanager
def _catalog_failures(settings: Settings, region: str) -> Iterator[None]:
    """A database error as one sentence an operator can act on, instead of SQLAlchemy's statement and parameters.

    The store's changes (clearing the published days) come after the last catalog commit, in the store's own
    transaction, so a catalog failure leaves the days dirty and a rerun sends them again, replacing (never doubling)
    any that a publication it committed just before the failure already holds.
    """
    try:
        yield
    except sqlalchemy.exc.DBAPIError as exc:
        cause = (str(exc.orig or "").strip() or type(exc.orig or exc).__name__).splitlines()[0]
        raise CatalogFailed(
            f"{region}: the catalog database {masked_url(settings.catalog_url)} failed during the publish ({cause});"
            " the region's days stay dirty in its store: publish again once the database answers"
        ) from exc


@dataclass
class PublishResult:
    region: str
    publish_id: str | None
    days: list[dt.date]
    rows: dict[str, int]
    whole_region: bool = False  # every day of the region was sent: its central partition was replaced whole

    @property
    def published(self) -> bool:
        return self.publish_id is not None


class HistoryNotInStore(RuntimeError):
    """The store does not hold the history the region's newest publication anchored: it was lost and started again,
    or restored from an older copy. Publishing from it would replace the central history with less."""


def publish_region(
    settings: Settings, region_code: str, *, all_days: bool = False, rebuild: bool = False
) -> PublishResult:
    """Publish the region's changed days from its built rollups (building first only if the build is stale).

    What reads the publication afterwards (the BI snapshot) is refreshed by the region flow, not here. Unless
    `rebuild` (`kanda publish --rebuild`: the operator's decision to replace the region's central history with
    what this store holds), a store whose ledger does not pass through the head its newest publication anchored is
    refused (`HistoryNotInStore`): a lost store started again from one new file replaced seven published days with
    one, exit 0, and only a later `kanda verify` noticed.
    """
    region = get_region(region_code)
    with open_store(settings, region.code) as con:
        ensure_built(con)
        # Changed models (a new USD rule, a new column) or region settings (a rail that states no fees) change
        # every day's rows: all days go out once.
        made_by = published_fingerprint(con)
        published_with = con.execute("SELECT fingerprint FROM published_models").fetchall()
        if published_with:
            models_changed = published_with[0][0] != made_by
        else:  # published before fingerprints were kept: with models of unknown vintage
            models_changed = bool(con.execute("SELECT count(*) FROM publish_log").fetchall()[0][0])
        full = all_days or models_changed
        if not full:
            # closed, not left to the garbage collector: a process that publishes again and again (`kanda serve`
            # reprocessing stewards' fixes) kept a catalog connection open per publish
            with _catalog_failures(settings, region.code), closing(open_catalog(settings)) as catalog:
                full = needs_full_publish(catalog, region.code)
        if full:
            con.execute("INSERT INTO dirty_days SELECT DISTINCT local_date FROM region_daily")
        # The changed days include every earlier day a late event restated: the build marked them (`restated`),
        # so a publish sends every day the build may have changed.
        days = [r[0] for r in con.execute("SELECT DISTINCT local_date FROM dirty_days ORDER BY 1").fetchall()]
        if not days:
            return PublishResult(region.code, None, [], {})
        if not rebuild:
            with _catalog_failures(settings, region.code), closing(open_catalog(settings)) as catalog:
                _require_published_history(con, catalog, region.code)
        sent = in_days("local_date", days)
        # Every day the region has is going out (a first publish, --all-days, --rebuild, or a rerun of one): replace
        # the region's partition whole, so central days the store no longer has go too, and no old file is read.
        # region_daily has every day any rollup has (a day with events or quarantined rows).
        whole_region = not con.execute(f"SELECT count(*) FROM region_daily WHERE NOT {sent}").fetchall()[0][0]
        head = _ledger_head(con)
        frames = {
            name: con.sql(f"SELECT * FROM {name} WHERE {sent} ORDER BY ALL").to_arrow_table() for name in published()
        }
        publish_id = f"{region.code}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with _catalog_failures(settings, region.code):
            _commit(settings, region.code, publish_id, days, frames, head, whole_region=whole_region)
        fault_point("after_publication")
        with transaction(con):
            con.execute(f"DELETE FROM dirty_days WHERE {sent}")
            con.execute("DELETE FROM published_models")
            con.execute("INSERT INTO published_models VALUES (?)", [made_by])
            con.execute(
                "INSERT INTO publish_log VALUES (?, ?, ?, ?)",
                [publish_id, dt.datetime.now(dt.UTC), len(days), sum(f.num_rows for f in frames.values())],
            )
    rows = {name: f.num_rows for name, f in frames.items()}
    return PublishResult(region.code, publish_id, days, rows, whole_region=whole_region)


def _require_published_history(con: duckdb.DuckDBPyConnection, catalog: SqlCatalog, region: str) -> None:
    anchors = anchored_heads(catalog).get(region)
    if not anchors:
        return
    newest = max(anchors, key=lambda row: (row["published_at"], row["publish_id"]))
    problems = anchor_problems(con, [newest])  # the check `kanda verify` runs on every anchor, on the newest
    if problems:
        raise HistoryNotInStore(
            f"{region}: not published: the store does not hold the history its newest publication anchored"
            f" ({problems[0]}); the store was lost and started again, or restored from an older copy. Restore the"
            f" store from its backup, or run `kanda publish --region {region} --rebuild` to replace the region's"
            " central history with this store's"
        )


def _ledger_head(con: duckdb.DuckDBPyConnection) -> dict:
    """The store's newest ledger row (seq, batch, hash) and the totals up to it: what the publication anchors."""
    found = con.execute(
        "SELECT seq, batch_id, row_hash, sum(rows_read) OVER (), sum(loaded) OVER (), sum(quarantined) OVER (),"
        " sum(duplicates) OVER () FROM ledger ORDER BY seq DESC LIMIT 1"
    ).fetchall()
    names = [field.name for field in LEDGER_ANCHOR]
    return dict(zip(names, found[0], strict=True)) if found else dict.fromkeys(names)


def _after_newest(newest: Publication | None) -> dt.datetime:
    """This host's time, or just after the newest publication's if that is later: "newest" is the latest
    `published_at`, and a host whose clock runs behind another's would otherwise commit a publication that readers
    never see as newest, and that the next publish rolls back as a dead one's. `newest` is the publication this
    publish builds on, whose row its own follows (or it is not appended), so publications are ordered as they
    commit."""
    now = dt.datetime.now(dt.UTC)
    return now if newest is None else max(now, newest.published_at + dt.timedelta(microseconds=1))


def _on_base(table: Table, name: str, base: Publication | None) -> bool:
    """Whether the rollup is exactly as the base publication has it: its current snapshot the one that publication
    names, or, where it names none, a table holding no rows (never published, or emptied by `rollback_orphans`).

    The overwrite that follows commits only if the table is still on the snapshot it was loaded at, so a publish
    whose check passed builds on the base publication's data and nothing else.
    """
    current = table.current_snapshot()
    wanted = base.snapshots.get(name) if base else None
    if wanted is not None:
        return current is not None and current.snapshot_id == wanted
    return current is None or (current.summary is not None and current.summary.get("total-records") == "0")


def _conflict(settings: Settings, publish_id: str, what: str) -> PublishConflict:
    return PublishConflict(
        f"publish {publish_id} was not made visible: {what} while it ran, so it no longer held the publish lock"
        f" of {masked_url(settings.catalog_url)} (the database restarted or ended that session). Its days stay"
        " dirty: publish the region again"
    )


def _commit(
    settings: Settings,
    region: str,
    publish_id: str,
    days: list[dt.date],
    frames: dict[str, pa.Table],
    head: dict,
    *,
    whole_region: bool,
) -> None:
    in_region = EqualTo("region", region)
    replaced = in_region if whole_region else And(in_region, In("local_date", {d.isoformat() for d in days}))
    # Required columns non-null, as the tables declare them; a NULL in one stops here, before any table commits.
    frames = {name: frame.cast(documented_schema(name, frame.schema)) for name, frame in frames.items()}
    with publish_lock(settings), closing(open_catalog(settings)) as catalog:
        # The catalog is opened under the lock: a first publish also creates its tables. The publication this
        # publish builds on is read once: its row is appended to this very state of the table, so it commits only
        # if no other publication was added meanwhile (see the module's docstring).
        publications = ensure_table(catalog, PUBLICATIONS, PUBLICATIONS_SCHEMA)
        base = latest_publication(catalog, table=publications)
        for undone in rollback_orphans(catalog, publications=publications):
            log.warning("publish %s: a publish died before its publication; %s", publish_id, undone)
        snapshots = {}
        for name, frame in frames.items():
            table = ensure_table(catalog, name, frame.schema)
            if not _on_base(table, name, base):
                raise _conflict(settings, publish_id, f"another publish committed to rollups.{name}")
            with warnings.catch_warnings():
                # A first publish of a day deletes nothing; pyiceberg warns about that, which is expected here.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                try:
                    table.overwrite(
                        frame,
                        overwrite_filter=replaced,
                        snapshot_properties={"kanda.publish_id": publish_id},
                    )
                except CommitFailedException:
                    raise _conflict(settings, publish_id, f"another publish committed to rollups.{name}") from None
            # the snapshot this commit made, as the commit returned it (a refresh could see a later one)
            snapshots[name] = table.current_snapshot().snapshot_id
            fault_point(f"after_commit:{name}")
        fault_point("before_publication")
        stamp = _after_newest(base)
        record = pa.Table.from_pylist(
            [
                {
                    "publish_id": publish_id,
                    "region": region,
                    "published_at": stamp,
                    "days": len(days),
                    "rows": sum(f.num_rows for f in frames.values()),
                    **{f"{name}_snapshot": snapshot for name, snapshot in snapshots.items()},
                    **head,
                }
            ],
            schema=PUBLICATIONS_SCHEMA,
        )
        try:
            publications.append(record)
        except CommitFailedException:
            raise _conflict(settings, publish_id, "another publication was committed") from None
        keep_for = dt.timedelta(hours=settings.keep_publications_hours)
        try:
            let_go_of_old_publications(
                catalog,
                publications,
                published(),
                keep_for=keep_for,
                at_most=settings.keep_publications,
                now=stamp,
                checkpoint=fault_point,
            )
        except Exception as exc:  # the publication is made; the next publish tries again
            log.warning("publish %s: could not let go of old publications: %s", publish_id, exc)
