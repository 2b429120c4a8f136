"""Great Expectations suites as Dagster asset checks, per region partition.

The suites and their runner live in `quality/` (`kanda expectations` runs the same functions); this module only
picks the partition's region, runs them, refreshes the pages of these results in Data Docs, and reports the
verdict with per-day results, the failing expectations and the Data Docs pages as metadata. GX is imported when a
check runs, not when the code location loads.
"""

import warnings
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from kanda.checks.gx_runner import SuiteResult, build_data_docs, run_central_suites, run_region_suites
from pipelines.assets.ingestion import regional_sales
from pipelines.assets.rollups import central_rollups
from pipelines.partitions import region_partitions
from pipelines.resources import KandaSettings

# Partitioned checks are a preview in Dagster 1.13; accepted knowingly, as in pipelines/checks.py.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")


def to_dagster(region: str, results: list[SuiteResult], index: Path | None, nothing: str) -> AssetCheckResult:
    """Every suite met -> passed; any failure -> an ERROR naming each failing suite, rule and example rows."""
    if not results:
        return AssetCheckResult(passed=True, description=f"{region}: {nothing}", metadata={"validations": 0})
    failed = [r for r in results if not r.success]
    description = "; ".join(r.message() for r in failed) if failed else f"{region}: {len(results)} validations, all met"
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "validations": len(results),
            "results": MetadataValue.json(
                [{"suite": r.suite, "local_date": r.local_date, "success": r.success, "rows": r.rows} for r in results]
            ),
            "failing_expectations": MetadataValue.json(
                [{"suite": r.suite, "local_date": r.local_date, **f} for r in failed for f in r.failures]
            ),
            "data_docs_index": MetadataValue.path(str(index)),
            "data_docs_pages": MetadataValue.json([r.docs_path for r in results]),
        },
    )


@asset_check(
    asset=regional_sales,
    partitions_def=region_partitions,
    name="sale_events_expectations",
    description="Great Expectations suite `sale_events_day` on each recent local day of the region's stored events.",
)
def sale_events_expectations(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    settings = kanda.load()
    results = run_region_suites(settings, context.partition_key)
    index = build_data_docs(settings, results) if results else None
    return to_dagster(context.partition_key, results, index, "no loaded events to validate yet")


@asset_check(
    asset=central_rollups,
    partitions_def=region_partitions,
    name="central_rollups_expectations",
    description="Great Expectations suites on the region's rows of each published rollup table.",
)
def central_rollups_expectations(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    settings = kanda.load()
    results = run_central_suites(settings, [context.partition_key])
    index = build_data_docs(settings, results) if results else None
    return to_dagster(context.partition_key, results, index, "nothing published for this region yet")
