"""Steward review in Dagster: approved fixes start the region flow, which loads and publishes them.

- `<region>_review_sensor` (one per region): requests a `region_pipeline` run for the region when approved fixes,
  waivers or unrecorded rejections wait. That run's `regional_sales` step loads them (`kanda.flow.load_fixes`)
  and the following steps build, publish and queue exactly as for a landed file, so the same assets materialize.
  The run key names that set of items, so the same approvals are never requested twice; a new approval makes a
  new set, hence a new run. A failed run (a busy store, a crash) gets a retry key, so approvals are never
  stranded.
- New quarantine rows reach the stewards' queue through the flow's `review_queue` asset in every region run.
"""

import hashlib

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from kanda.review.reprocess import pending_items
from pipelines.jobs import region_pipeline_job
from pipelines.partitions import REGION_TAG, served_regions
from pipelines.resources import KandaSettings
from pipelines.run_keys import MAX_ATTEMPTS, attempt_key
from regions import RegionConfig

MINIMUM_INTERVAL_SECONDS = 30


def approvals_key(region: str, item_ids: list[int]) -> str:
    """A stable name for one set of waiting items."""
    digest = hashlib.sha256(",".join(map(str, sorted(item_ids))).encode()).hexdigest()[:16]
    return f"{region}-review-{len(item_ids)}-{digest}"


def run_request(region: str, run_key: str) -> RunRequest:
    return RunRequest(run_key=run_key, partition_key=region, tags={REGION_TAG: region})


def build_review_sensor(region: RegionConfig) -> SensorDefinition:
    @sensor(
        name=f"{region.code.lower()}_review_sensor",
        job=region_pipeline_job,
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


#: Only the regions this host serves (`KANDA_REGIONS`).
review_sensors: list[SensorDefinition] = [build_review_sensor(region) for region in served_regions()]
