"""Great Expectations suites as Dagster asset checks, in their own job after each publish.

The suites live in `quality/expectations.py` and their runner in `kanda/checks/gx_runner.py` (`kanda expectations`
runs the same functions); this module runs them for the run's region, refreshes the pages of these results in
Data Docs, and reports the verdict with per-day results, the failing expectations and the Data Docs pages as
metadata. They take seconds to tens of seconds, so they are not in the region flow's run: a sensor starts the
`quality_suites` job for a region once its central tables are materialized. They read the region's store, so they
queue with its other runs (one at a time): a file landing while they run waits for them.
"""

from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    AssetSelection,
    DefaultSensorStatus,
    EventLogRecord,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_check,
    define_asset_job,
    sensor,
)

from kanda.checks.gx_runner import SuiteResult, build_data_docs, run_central_suites, run_region_suites
from kanda.settings import serves_region
from pipelines.assets.central import central_key
from pipelines.assets.regional import regional_sales
from pipelines.checks import region_of
from pipelines.partitions import REGION_TAG
from pipelines.resources import KandaSettings


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
    name="sale_events_expectations",
    description="Great Expectations suite `sale_events_day` on each recent local day of the region's stored events.",
)
def sale_events_expectations(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    settings = kanda.load()
    region = region_of(context).code
    results = run_region_suites(settings, region)
    index = build_data_docs(settings, results) if results else None
    return to_dagster(region, results, index, "no loaded events to validate yet")


@asset_check(
    asset=central_key("region_daily"),
    name="central_rollups_expectations",
    description="Great Expectations suites on the region's rows of each published rollup table.",
)
def central_rollups_expectations(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    settings = kanda.load()
    region = region_of(context).code
    results = run_central_suites(settings, [region])
    index = build_data_docs(settings, results) if results else None
    return to_dagster(region, results, index, "nothing published for this region yet")


quality_suites_job = define_asset_job(
    name="quality_suites",
    selection=AssetSelection.checks(sale_events_expectations, central_rollups_expectations),
    description="The Great Expectations suites of one region (stored events, published rollups), after a publish.",
)


#: Materializations read per page by the sensor (each region's newest one becomes its request).
PAGE = 1000


@sensor(
    name="quality_suites_after_publish",
    job=quality_suites_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a region's central tables are materialized, run its Great Expectations suites.",
)
def quality_suites_after_publish(context: SensorEvaluationContext) -> list[RunRequest] | SkipReason:
    """One request per region published since the last tick. Dagster's `asset_sensor` reads only the newest
    materialization, so of two regions published between two ticks only the later one had its suites run. The
    cursor is the last storage id read, as `asset_sensor` kept it, so an existing cursor carries over."""
    after = int(context.cursor) if context.cursor and context.cursor.isdigit() else None
    newest: dict[str, EventLogRecord] = {}
    last = after
    while True:
        page = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=central_key("region_daily"), after_storage_id=last), limit=PAGE, ascending=True
        )
        for record in page.records:
            last = record.storage_id
            if record.partition_key:
                newest[record.partition_key] = record
        if not page.has_more or not page.records:
            break
    if last == after:
        return SkipReason("no central materialization since the last tick")
    context.update_cursor(str(last))
    requests, elsewhere = [], []
    for region, record in sorted(newest.items()):
        if not serves_region(region):
            elsewhere.append(region)
            continue
        # The job selects only checks, so it has no partitions: the region is named by the tag the checks read (a
        # `partition_key` made every tick fail). The region tag queues it with the region's other runs (one at a
        # time: the suites read the store), so a file landing meanwhile waits for them.
        requests.append(
            RunRequest(
                run_key=f"quality-{region}-{record.timestamp}", tags={"dagster/partition": region, REGION_TAG: region}
            )
        )
    skip = f"served by another code location (KANDA_REGIONS): {', '.join(elsewhere)}" if elsewhere else None
    if not requests:
        return SkipReason(skip or "the materializations name no region")
    return requests
