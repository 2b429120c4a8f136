"""Daily report jobs and schedules: one per region, at 06:00 in the region's own zone, for its previous local day.

06:00 leaves the night's files time to land and be published. A day is requested only once it is a partition
(some publish sent it centrally); until then the tick says why it skipped. A day published after its own tick
(late files) is requested at a later one: each tick also asks for the `CATCH_UP_DAYS` days before, those published
and never run, and those whose run failed (the relay was down, a recipient was refused), under the next retry key
(`pipelines.run_keys.attempt_key`, up to its `MAX_ATTEMPTS`): delivery skips the creators already sent, so a retry
sends the rest. One run key per region, day and attempt, so no day is reported twice by the schedule. Runs carry
the region tag, so they queue behind the region's flow run (one run per region at a time, `dagster.yaml`).
"""

import datetime as dt

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from pipelines.assets.reports import creator_report_assets
from pipelines.partitions import REGION_TAG, report_days_name, served_regions
from pipelines.run_keys import attempt_key, run_under
from regions import all_regions

#: Local time of day the previous day's reports go out.
REPORT_HOUR = 6
#: Days before the previous one that a tick still reports if they were published late and never run.
CATCH_UP_DAYS = 7


def _job(asset) -> JobDefinition:
    code = asset.key.path[-1].split("_", 1)[0].upper()
    return define_asset_job(
        name=f"{code.lower()}_creator_reports_job",
        selection=[asset],
        tags={REGION_TAG: code},
        description=f"Generate and deliver {code} creators' reports of one local day.",
    )


def _schedule(job: JobDefinition) -> ScheduleDefinition:
    code = job.name.split("_", 1)[0].upper()
    region = all_regions()[code]

    @schedule(
        name=f"{code.lower()}_creator_reports_schedule",
        job=job,
        cron_schedule=f"0 {REPORT_HOUR} * * *",
        execution_timezone=region.zone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"The previous local day's {code} reports at {REPORT_HOUR:02d}:00 {region.zone}.",
    )
    def reports_schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
        tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        yesterday = tick.astimezone(region.tz).date() - dt.timedelta(days=1)
        published = set(context.instance.get_dynamic_partitions(report_days_name(code)))
        wanted = []
        for back in range(CATCH_UP_DAYS + 1):
            day = (yesterday - dt.timedelta(days=back)).isoformat()
            if day not in published:
                continue
            key = attempt_key(context.instance, f"{code}-reports-{day}")
            if key is not None and (back == 0 or run_under(context.instance, key) is None):
                wanted.append(RunRequest(run_key=key, partition_key=day))
        if not wanted:
            return SkipReason(f"{code}: {yesterday.isoformat()} has not been published yet")
        return wanted

    return reports_schedule


report_jobs: list[JobDefinition] = [_job(asset) for asset in creator_report_assets]
#: Only the regions this host serves (`KANDA_REGIONS`): a report reads its region's store.
_served = {region.code for region in served_regions()}
report_schedules: list[ScheduleDefinition] = [
    _schedule(job) for job in report_jobs if job.name.split("_", 1)[0].upper() in _served
]
