"""Build a region's rollups and publish the days that changed to the central layer.

Runs under the region's writer lock (the store is read and its dirty-day list cleared) and the global publish lock
(see `kanda.central.catalog`). Each rollup table gets one Iceberg commit that replaces exactly (region, changed days);
then one row in `rollups.publications` makes the whole publish visible at once. A crash before that row leaves
readers on the previous publication and the dirty days in place, so the next publish redoes the work.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.expressions import And, EqualTo, In

from kanda.central.catalog import (
    PUBLICATIONS,
    PUBLICATIONS_SCHEMA,
    ensure_table,
    needs_full_publish,
    open_catalog,
    publish_lock,
)
from kanda.regional.models import ensure_built
from kanda.regional.store import open_store, transaction
from kanda.settings import Settings
from regions import get_region
from warehouse_models import PUBLISHED


@dataclass
class PublishResult:
    region: str
    publish_id: str | None
    days: list[dt.date]
    rows: dict[str, int]

    @property
    def published(self) -> bool:
        return self.publish_id is not None


def publish_region(settings: Settings, region_code: str, *, all_days: bool = False) -> PublishResult:
    """Publish the region's changed days from its built rollups (building first only if the build is stale).

    What reads the publication afterwards (the BI snapshot) is refreshed by the region flow, not here.
    """
    region = get_region(region_code)
    with open_store(settings, region.code) as con:
        ensure_built(con)
        if all_days or needs_full_publish(open_catalog(settings), region.code):
            con.execute("INSERT INTO dirty_days SELECT DISTINCT local_date FROM region_daily")
        # A late event can move what an earlier day counts: a payment is counted on the day it was first seen and
        # on the day it succeeded, in its channel, and a later refund or reversal changes its state. So every day
        # of every payment with an event on a changed day is republished too (the days it was and is counted on).
        # Skipped when every day with events changed anyway (a first publish), where it would join everything.
        con.execute("CREATE OR REPLACE TEMP TABLE publish_days AS SELECT DISTINCT local_date FROM dirty_days")
        unchanged = con.execute(
            "SELECT count(*) FROM (SELECT local_date FROM sale_events EXCEPT SELECT local_date FROM dirty_days)"
        ).fetchall()[0][0]
        if unchanged:
            con.execute(
                "INSERT INTO publish_days SELECT DISTINCT local_date FROM sale_events"
                " WHERE local_date NOT IN (SELECT local_date FROM publish_days) AND transaction_id IN"
                " (SELECT transaction_id FROM sale_events WHERE local_date IN (SELECT local_date FROM dirty_days))"
            )
        days = [r[0] for r in con.execute("SELECT local_date FROM publish_days ORDER BY 1").fetchall()]
        if not days:
            return PublishResult(region.code, None, [], {})
        frames = {
            name: con.sql(
                f"SELECT * FROM {name} WHERE local_date IN (SELECT local_date FROM publish_days) ORDER BY ALL"
            ).to_arrow_table()
            for name in PUBLISHED
        }
        publish_id = f"{region.code}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        _commit(settings, region.code, publish_id, days, frames)
        with transaction(con):
            con.execute("DELETE FROM dirty_days WHERE local_date IN (SELECT local_date FROM publish_days)")
            con.execute(
                "INSERT INTO publish_log VALUES (?, ?, ?, ?)",
                [publish_id, dt.datetime.now(dt.UTC), len(days), sum(f.num_rows for f in frames.values())],
            )
    return PublishResult(region.code, publish_id, days, {name: f.num_rows for name, f in frames.items()})


def _commit(settings: Settings, region: str, publish_id: str, days: list[dt.date], frames: dict[str, pa.Table]) -> None:
    day_filter = In("local_date", {d.isoformat() for d in days})
    with publish_lock(settings):
        catalog = open_catalog(settings)  # under the lock: a first publish also creates the catalog's tables
        snapshots = {}
        for name, frame in frames.items():
            table = ensure_table(catalog, name, frame.schema)
            with warnings.catch_warnings():
                # A first publish of a day deletes nothing; pyiceberg warns about that, which is expected here.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                table.overwrite(
                    frame,
                    overwrite_filter=And(EqualTo("region", region), day_filter),
                    snapshot_properties={"kanda.publish_id": publish_id},
                )
            snapshots[name] = table.refresh().current_snapshot().snapshot_id
        record = pa.Table.from_pylist(
            [
                {
                    "publish_id": publish_id,
                    "region": region,
                    "published_at": dt.datetime.now(dt.UTC),
                    "days": len(days),
                    "rows": sum(f.num_rows for f in frames.values()),
                    **{f"{name}_snapshot": snapshot for name, snapshot in snapshots.items()},
                }
            ],
            schema=PUBLICATIONS_SCHEMA,
        )
        ensure_table(catalog, PUBLICATIONS, PUBLICATIONS_SCHEMA).append(record)
