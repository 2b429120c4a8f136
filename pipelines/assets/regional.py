"""The regional stage of the region flow: the store (ingest + approved fixes), the models, the review queue.

Each asset calls one step of `kanda.flow`, the same functions the CLI runs, so a Dagster run and `kanda ingest` /
`kanda publish` leave the same store and ledger. Partition = region code: a store has one writer.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from kanda import flow
from kanda.regional.store import open_store
from pipelines.metadata import OWNERS
from pipelines.partitions import region_partitions
from pipelines.resources import KandaSettings

#: The check `regional_sales` reports with each materialization: a file of this run refused whole is a failure
#: (`kanda ingest` exits 1 for it), while the healthy files' rows still load and the flow goes on.
NO_REJECTED_FILES = AssetCheckSpec(
    name="no_rejected_files",
    asset="regional_sales",
    description=(
        "No landing file of this run was rejected whole (unreadable, wrong format, wrong currency): each rejected"
        " file is named with its reason. Not blocking: the healthy files' rows load and publish."
    ),
)


@asset(
    partitions_def=region_partitions,
    group_name="regional",
    kinds={"duckdb", "python"},
    owners=OWNERS,
    description=(
        "The region's DuckDB store: native files from its landing folder validated against the sale contract and"
        " loaded (bad rows quarantined, duplicates counted, each file once), plus stewards' approved fixes."
    ),
    metadata={"dagster/table_name": "sale_events"},
    check_specs=[NO_REJECTED_FILES],
)
def regional_sales(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Steps `ingest` and `load_fixes`: everything that writes events into the store."""
    settings = kanda.load()
    report = flow.ingest(settings, context.partition_key)
    fixes = flow.load_fixes(settings, context.partition_key)
    ingested = flow.ingest_metadata(report)
    rejected = ingested["rejected"]
    for name, reason in rejected.items():
        context.log.error(f"{report.region}: rejected {name}: {reason}")
    with open_store(settings, context.partition_key, read_only=True) as con:
        events = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
    return MaterializeResult(
        check_results=[rejected_files_check(report.region, rejected)],
        metadata={
            **{k: MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in ingested.items()},
            "fixes_loaded": len(fixes.loaded),
            "rejections_recorded": len(fixes.rejected_recorded),
            "dagster/row_count": events,
        },
    )


def rejected_files_check(region: str, rejected: dict[str, str]) -> AssetCheckResult:
    """`no_rejected_files`: an ERROR-severity failure naming each file this run rejected and why."""
    if not rejected:
        return AssetCheckResult(
            check_name=NO_REJECTED_FILES.name,
            passed=True,
            description=f"{region}: no file rejected in this run",
            metadata={"region": region, "rejected_files": 0},
        )
    names = ", ".join(rejected)
    return AssetCheckResult(
        check_name=NO_REJECTED_FILES.name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{region}: {len(rejected)} file(s) rejected whole ({names}), kept under the data folder's"
            f" rejected/{region.lower()}/ with the reason; the other files loaded. Land a corrected file again."
        ),
        metadata={
            "region": region,
            "rejected_files": len(rejected),
            **{f"rejected: {name}": MetadataValue.text(reason) for name, reason in rejected.items()},
        },
    )


@asset(
    partitions_def=region_partitions,
    deps=[regional_sales],
    group_name="regional",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="The warehouse_models SQL (staging, intermediate, facts, rollups) built once inside the store.",
)
def regional_rollups(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Step `build`: the build that the publish step then publishes (it is not built a second time)."""
    result = flow.build(kanda.load(), context.partition_key)
    return MaterializeResult(metadata={"models": MetadataValue.json(result.models), "built": result.built})


@asset(
    partitions_def=region_partitions,
    deps=[regional_sales],
    group_name="review",
    kinds={"python"},
    owners=OWNERS,
    description="The stewards' review queue in the application database: every quarantined row once.",
)
def review_queue(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Step `queue_review`."""
    queued = flow.queue_review(kanda.load(), context.partition_key)
    return MaterializeResult(metadata={"queued": queued})
