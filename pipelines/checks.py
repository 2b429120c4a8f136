"""Asset checks: the same proofs `kanda verify` runs, recorded per region partition in Dagster.

The checks live in `kanda.checks.store_checks`; this module only opens the store (read-only, under the region lock),
hands the connection over, and translates a `CheckResult` into an `AssetCheckResult` with the right severity.
"""

import warnings
from collections.abc import Callable
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from kanda.checks import store_checks as checks
from kanda.checks.store_checks import CheckResult
from kanda.checks.verify import published_tables, reconcile
from kanda.regional.store import open_store
from pipelines.assets.ingestion import regional_sales
from pipelines.assets.rollups import central_rollups, regional_rollups
from pipelines.partitions import region_partitions
from pipelines.resources import KandaSettings
from regions import RegionConfig, get_region

# Checks are partitioned like their assets so that each region keeps its own verdict (an unpartitioned check
# would show whichever region ran last). Dagster 1.13 marks partitioned checks as preview; we accept that
# knowingly and keep the warning out of every code-location load.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")


def to_dagster(result: CheckResult) -> AssetCheckResult:
    """Carry the check's verdict, sentence and numbers over; `severity="warn"` becomes a WARN check failure."""
    severity = AssetCheckSeverity.WARN if result.severity == "warn" else AssetCheckSeverity.ERROR
    return AssetCheckResult(
        passed=result.passed,
        severity=severity,
        description=result.message,
        metadata={key: _metadata_value(value) for key, value in result.metadata.items()},
    )


def _metadata_value(value: Any) -> Any:
    """Scalars pass through as-is; nested numbers (e.g. per-table totals) are kept as JSON."""
    return MetadataValue.json(value) if isinstance(value, dict | list | tuple) else value


def _store_check(
    context: AssetCheckExecutionContext,
    kanda: KandaSettings,
    check: Callable[[duckdb.DuckDBPyConnection, RegionConfig], CheckResult],
) -> AssetCheckResult:
    """Run a `kanda.checks.store_checks` function on the partition's store, opened read-only under the region's lock."""
    region = get_region(context.partition_key)
    with open_store(kanda.load(), region.code, read_only=True) as con:
        return to_dagster(check(con, region))


@asset_check(
    asset=regional_sales,
    partitions_def=region_partitions,
    blocking=True,
    description="Every batch balances and the store holds exactly what the ledger says; blocks rollups if not.",
)
def batch_conservation(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.batch_conservation)


@asset_check(
    asset=regional_sales,
    partitions_def=region_partitions,
    description="Share of input rows quarantined, against the region's warn and error thresholds.",
)
def quarantine_rate(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.quarantine_rate)


@asset_check(
    asset=regional_rollups,
    partitions_def=region_partitions,
    description="The rollups add up to the loaded events (computed independently of the models), with USD rates.",
)
def rollups_match_events(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.rollups_match_events)


@asset_check(
    asset=central_rollups,
    partitions_def=region_partitions,
    description="The newest central publication equals the regional rollups: rows, net and net USD, to the unit.",
)
def reconciliation(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    """The same reconciliation as `kanda verify`; a region with nothing published compares with an empty centre."""
    settings = kanda.load()
    region = get_region(context.partition_key)
    central = published_tables(settings)
    with open_store(settings, region.code, read_only=True) as con:
        try:
            return to_dagster(reconcile(con, region, central))
        except duckdb.CatalogException:
            return AssetCheckResult(passed=False, description=f"{region.code}: rollups not built yet")
