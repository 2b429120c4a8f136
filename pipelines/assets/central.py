"""The central stage of the region flow: one asset per published rollup table, and the BI snapshot file.

The four tables are published together (one publication row makes them visible at once), so they are one
multi-asset: one publish step, four materializations, each carrying Dagster's table metadata so the catalog
shows the Iceberg table, its columns and the region's row count.
"""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

import warehouse_models
from kanda import flow
from kanda.central.catalog import NAMESPACE
from kanda.regional.store import open_store
from pipelines.assets.regional import regional_rollups
from pipelines.metadata import OWNERS, column_schema
from pipelines.partitions import add_report_days, region_partitions
from pipelines.resources import KandaSettings

#: A region that lands files daily is stale when nothing was published for longer than a day and a bit.
FRESHNESS = FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=6))


def central_key(table: str) -> AssetKey:
    return AssetKey(["central", table])


CENTRAL_TABLES = sorted(warehouse_models.published())
CENTRAL_KEYS = [central_key(table) for table in CENTRAL_TABLES]


@multi_asset(
    name="central_rollups",
    partitions_def=region_partitions,
    specs=[
        AssetSpec(
            central_key(table),
            deps=[regional_rollups],
            group_name="central",
            kinds={"iceberg"},
            owners=OWNERS,
            description=f"Central Iceberg table {NAMESPACE}.{table}: the region's rows, published atomically.",
            metadata={"dagster/table_name": f"{NAMESPACE}.{table}"},
            freshness_policy=FRESHNESS,
        )
        for table in CENTRAL_TABLES
    ],
    # Publishes are serialised by kanda's publish lock anyway; the pool makes the wait visible in Dagster.
    pool="kanda_publish",
)
def central_rollups(context: AssetExecutionContext, kanda: KandaSettings):
    """Step `publish`: the changed days of the build `regional_rollups` made, made visible by one publication."""
    settings = kanda.load()
    region = context.partition_key
    result = flow.publish(settings, region)
    add_report_days(context.instance, region, result.days)
    with open_store(settings, region, read_only=True) as con:
        for table in CENTRAL_TABLES:
            frame = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table()
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            yield MaterializeResult(
                asset_key=central_key(table),
                metadata={
                    "publish_id": result.publish_id or "none (up to date)",
                    "days": len(result.days),
                    "published_days": MetadataValue.json([d.isoformat() for d in result.days]),
                    "rows_published": result.rows.get(table, 0),
                    "dagster/row_count": rows,
                    "dagster/column_schema": column_schema(table, frame.schema),
                },
            )


@asset(
    partitions_def=region_partitions,
    deps=CENTRAL_KEYS,
    group_name="central",
    kinds={"duckdb"},
    owners=OWNERS,
    description="bi/rollups.duckdb: the newest publication as one read-only DuckDB file for BI tools.",
)
def bi_snapshot(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Step `refresh_readers`: rewritten from the newest publication, whichever region published it."""
    settings = kanda.load()
    why = flow.refresh_readers(settings)
    # Not a failed run: the cause may be another region's damaged file, and a failed run of this region would ask
    # for catch-up runs that cannot help. The materialization says it instead (`kanda verify` names the repair).
    stale = {"not_refreshed": MetadataValue.text(why)} if why else {}
    return MaterializeResult(metadata={"path": MetadataValue.path(str(settings.snapshot_path)), **stale})
