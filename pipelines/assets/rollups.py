"""Rollup layer: SQL models inside the regional store, then the changed days published centrally."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from kanda.central.publish import publish_region
from kanda.checks.store_checks import regional_totals
from kanda.regional.models import build_models
from kanda.regional.store import open_store
from pipelines.assets.ingestion import regional_sales
from pipelines.partitions import region_partitions
from pipelines.resources import KandaSettings


@asset(
    partitions_def=region_partitions,
    deps=[regional_sales],
    group_name="regional_rollups",
    kinds={"duckdb", "sql"},
    description="The warehouse_models SQL (staging, facts, rollups) rebuilt inside the regional store.",
)
def regional_rollups(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Build the models as a separate step so that a failed model shows up before anything is published."""
    with open_store(kanda.load(), context.partition_key) as con:
        built = build_models(con)
        totals = regional_totals(con)
    return MaterializeResult(
        metadata={
            "models": MetadataValue.json(built),
            **{f"rows_{name}": MetadataValue.int(rows) for name, (rows, _net, _usd) in totals.items()},
        }
    )


@asset(
    partitions_def=region_partitions,
    deps=[regional_rollups],
    group_name="central_rollups",
    kinds={"iceberg", "python"},
    # Publishes are serialised by kanda's publish lock anyway; the pool makes the wait visible in Dagster.
    pool="kanda_publish",
    description=(
        "The region's changed days of every rollup, committed to the central Iceberg tables and made visible"
        " together by one publication row."
    ),
)
def central_rollups(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Publish only the days that changed; an unchanged region records that it was already up to date."""
    result = publish_region(kanda.load(), context.partition_key)
    return MaterializeResult(
        metadata={
            "publish_id": MetadataValue.text(result.publish_id or "none (up to date)"),
            "days": MetadataValue.int(len(result.days)),
            "published_days": MetadataValue.json([d.isoformat() for d in result.days]),
            **{f"rows_{name}": MetadataValue.int(rows) for name, rows in result.rows.items()},
        }
    )
