"""Daily report jobs and schedules: one per region, at 06:00 in the region's own zone, for its previous local day.

`build_schedule_from_partitioned_job` runs the latest complete partition, i.e. the local day that ended at the
last local midnight; 06:00 leaves the night's files time to land and be published. Runs carry the region tag, so
they queue behind the region's ingestion run (one run per region at a time, `dagster.yaml`).
"""

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from pipelines.assets.reports import creator_report_assets
from pipelines.partitions import REGION_TAG

#: Local time of day the previous day's reports go out.
REPORT_HOUR = 6


def _job(asset) -> JobDefinition:
    code = asset.key.path[-1].split("_", 1)[0].upper()
    return define_asset_job(
        name=f"{code.lower()}_creator_reports_job",
        selection=[asset],
        partitions_def=asset.partitions_def,
        tags={REGION_TAG: code},
        description=f"Generate and deliver {code} creators' reports of one local day.",
    )


report_jobs: list[JobDefinition] = [_job(asset) for asset in creator_report_assets]
report_schedules: list[ScheduleDefinition] = [
    build_schedule_from_partitioned_job(
        job,
        hour_of_day=REPORT_HOUR,
        name=f"{job.name.removesuffix('_job')}_schedule",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    for job in report_jobs
]
