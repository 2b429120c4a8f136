"""Steward review in Dagster: queue new quarantine after each region run, reprocess approved fixes per region.

- `review_reprocess` (job, one op): for the region in its run config, `enqueue_region` then `reprocess_region`.
  It writes the region's store, so its runs carry the region tag and queue behind that region's other runs
  (`dagster.yaml`: one run per region at a time).
- `<region>_review_sensor` (one per region): requests a run when approved fixes, waivers or unrecorded rejections
  wait. The run key names that set of items, so the same approvals are never requested twice; a new approval
  makes a new set, hence a new run. A failed run (a busy store, a crash) gets a retry key, so approvals are
  never stranded.
- `review_enqueue_after_ingest`: when `regional_sales` is materialised for a region, requests a `review_reprocess`
  run for it, which puts the newly quarantined rows in the stewards' queue (and marks rows the run released).
"""

import hashlib

from dagster import (
    AssetKey,
    Config,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogEntry,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    job,
    op,
    sensor,
)
from dagster._core.storage.tags import RUN_KEY_TAG

from kanda.review.enqueue import enqueue_region
from kanda.review.reprocess import pending_items, reprocess_region
from pipelines.partitions import REGION_TAG
from pipelines.resources import KandaSettings
from regions import RegionConfig, all_regions

MINIMUM_INTERVAL_SECONDS = 30


class ReprocessConfig(Config):
    region: str


@op(description="Queue the region's new quarantine rows, then load its approved fixes and republish.")
def reprocess_approved(context: OpExecutionContext, config: ReprocessConfig, kanda: KandaSettings) -> dict:
    settings = kanda.load()
    queued = enqueue_region(settings, config.region)
    result = reprocess_region(settings, config.region)
    summary = {
        "queued": queued,
        "loaded": len(result.loaded),
        "duplicates": len(result.duplicates),
        "quarantined_again": len(result.quarantined),
        "already_loaded": len(result.already_loaded),
        "rejections_recorded": len(result.rejected_recorded),
        "batch_id": result.batch_id or "",
        "publish_id": result.publish_id or "",
    }
    context.add_output_metadata(summary)
    context.log.info(f"{config.region}: {summary}")
    return summary


@job(description="Queue a region's quarantine for review and reprocess its approved fixes (config: region).")
def review_reprocess() -> None:
    reprocess_approved()


def approvals_key(region: str, item_ids: list[int]) -> str:
    """A stable name for one set of waiting items."""
    digest = hashlib.sha256(",".join(map(str, sorted(item_ids))).encode()).hexdigest()[:16]
    return f"{region}-review-{len(item_ids)}-{digest}"


def attempt_key(instance: DagsterInstance, key: str) -> str | None:
    """The run key for this set of items: the same while a run for it is queued, running or done, and a new one
    after a run for it failed (a busy store, a crash), so that a failure does not strand the approvals. After
    `MAX_ATTEMPTS` failures, None: something needs a person (the run logs say what)."""
    for attempt in range(MAX_ATTEMPTS):
        candidate = key if attempt == 0 else f"{key}-retry{attempt}"
        runs = instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: candidate}), limit=1)
        if not runs or runs[0].status not in FAILED:
            return candidate
    return None


MAX_ATTEMPTS = 4
FAILED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def run_request(region: str, run_key: str) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {"reprocess_approved": {"config": {"region": region}}}},
        tags={REGION_TAG: region},
    )


def build_review_sensor(region: RegionConfig) -> SensorDefinition:
    @sensor(
        name=f"{region.code.lower()}_review_sensor",
        job=review_reprocess,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Requests a {region.code} reprocess run when stewards' approved fixes or rejections wait.",
    )
    def review_sensor(context: SensorEvaluationContext, kanda: KandaSettings) -> RunRequest | SkipReason:
        waiting = pending_items(kanda.load(), region.code)
        if not waiting:
            return SkipReason(f"{region.code}: no approved fixes waiting")
        key = attempt_key(context.instance, approvals_key(region.code, waiting))
        if key is None:
            return SkipReason(f"{region.code}: {MAX_ATTEMPTS} reprocess runs failed; see their logs")
        return run_request(region.code, key)

    return review_sensor


@asset_sensor(
    name="review_enqueue_after_ingest",
    asset_key=AssetKey("regional_sales"),
    job=review_reprocess,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a region's sales are ingested, queue its newly quarantined rows for review.",
)
def review_enqueue_after_ingest(
    context: SensorEvaluationContext, asset_event: EventLogEntry
) -> RunRequest | SkipReason:
    materialization = asset_event.asset_materialization
    region = materialization.partition if materialization else None
    if region not in all_regions():
        return SkipReason("the materialization names no region")
    return run_request(region, f"enqueue-{region}-{asset_event.timestamp}")


review_jobs = [review_reprocess]
review_sensors: list[SensorDefinition] = [
    *(build_review_sensor(region) for region in all_regions().values()),
    review_enqueue_after_ingest,
]
