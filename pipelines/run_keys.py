"""Run keys for the sensors that ask for region runs: a key per batch of work, and a new one after a failed run.

Dagster never launches a run key twice, whatever became of the run: a key that named only the work (the files
waiting, the approvals waiting) stranded that work when its run failed (a busy store, a crash). `attempt_key` gives
the same key while a run for it is queued, running or done, and the next `-retryN` after a failed one.

A run can also fail after its work has left the folder: its files ingested and filed away, or stewards' fixes
loaded, then the publish failed (the catalog down, the worker killed). Nothing waits in the landing folder or the
review queue then, yet the region's days are unpublished. `catch_up_key` names that state, so that the landing
sensor asks for a run that finishes the job (a run with no files builds and publishes what is dirty).
"""

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import RUN_KEY_TAG

from pipelines.partitions import REGION_TAG

#: Runs per batch of work before the sensor stops asking: something then needs a person (the run logs say what).
MAX_ATTEMPTS = 4
FAILED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
#: A run that has not finished: a batch seen meanwhile waits for it (it may take that batch's files too).
UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def run_under(instance: DagsterInstance, key: str) -> DagsterRun | None:
    """The newest run launched under the run key, if any."""
    runs = instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: key}), limit=1)
    return runs[0] if runs else None


def attempt_key(instance: DagsterInstance, key: str) -> str | None:
    """The run key for this batch: `key` until a run under it failed, then `key-retry1`, ...; None after
    `MAX_ATTEMPTS` failed runs."""
    for attempt in range(MAX_ATTEMPTS):
        candidate = key if attempt == 0 else f"{key}-retry{attempt}"
        run = run_under(instance, candidate)
        if run is None or run.status not in FAILED:
            return candidate
    return None


def unfinished_region_run(instance: DagsterInstance, region: str) -> str | None:
    """The id of a queued or running run of the region, if any: it ingests the whole landing folder, so files that
    landed after it was requested are often its own, and another run asked for now would start with nothing. A run
    whose worker died stays STARTED until run monitoring marks it failed (`pipelines/run_launcher.py`)."""
    runs = instance.get_runs(filters=RunsFilter(tags={REGION_TAG: region}, statuses=UNFINISHED), limit=1)
    return runs[0].run_id if runs else None


#: How many of a region's latest finished runs `catch_up_key` looks through for the last success.
CATCH_UP_WINDOW = 50


def catch_up_key(instance: DagsterInstance, region: str, job_name: str) -> str | None:
    """A key for a run that finishes what the region's failed runs left, or None when its newest finished run of
    `job_name` succeeded (or it has none). Named after the first failure since the last success, so that the same
    state keeps one key, and its own failed runs get `attempt_key`'s retries, then stop."""
    finished = instance.get_runs(
        filters=RunsFilter(job_name=job_name, tags={REGION_TAG: region}, statuses=[DagsterRunStatus.SUCCESS, *FAILED]),
        limit=CATCH_UP_WINDOW,
    )
    failed_since: list[DagsterRun] = []
    for run in finished:  # newest first
        if run.status == DagsterRunStatus.SUCCESS:
            break
        failed_since.append(run)
    return f"{region}-catch-up-{failed_since[-1].run_id[:8]}" if failed_since else None
