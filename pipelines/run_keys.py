"""Run keys for the sensors that ask for region runs: a key per batch of work, and a new one after a failed run.

Dagster never launches a run key twice, whatever became of the run: a key that named only the work (the files
waiting, the approvals waiting) stranded that work when its run failed (a busy store, a crash). `attempt_key` gives
the same key while a run for it is queued, running or done, and the next `-retryN` after a failed one.
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
