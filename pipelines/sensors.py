"""Landing-folder sensors: one per region, each turning "files are waiting" into one run for that region.

A run costs seconds to launch, so the sensor never asks for a run per file: whatever is waiting when it ticks
becomes one batch, and the run ingests the whole folder. The run key names that batch (file names, sizes and
modification times), so an unchanged folder is never requested twice while a changed one is requested again; after
a failed run (a busy store, a crash) the same batch is asked for again under a retry key (`pipelines.run_keys`).
While a run of the region is queued or running, a tick asks for nothing: that run takes what is in the folder.
With the folder empty and the region's last run failed (after it had ingested and filed its files away, say, the
publish failing), a tick asks for a catch-up run, which builds and publishes what that run left.

`region_files_sensor` requests nothing: its ticks fail, naming each file and its problem, while a region file in
`KANDA_REGIONS_DIR` does not validate. Such a region has no partition nor sensors (the code location serves every
other region), so this failing sensor on the Automation page is where a Dagster user sees it.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from kanda.regional.ingest import pending_files
from pipelines.jobs import region_pipeline_job
from pipelines.partitions import REGION_TAG, served_regions
from pipelines.resources import KandaSettings
from pipelines.run_keys import MAX_ATTEMPTS, attempt_key, catch_up_key, unfinished_region_run
from regions import RegionConfig, all_regions, broken_regions

#: Short: a tick only lists a folder, and freshness (file landed -> visible centrally) starts with it.
MINIMUM_INTERVAL_SECONDS = 5


def batch_key(region: str, files: Sequence[Path]) -> str | None:
    """A stable name for this set of waiting files; None if they all vanished while we looked.

    The inode change time is part of it: a file landed again with its name, size and modified time kept (`rsync
    -t`, `scp -p`, a rejected file moved back after its region was fixed) is a new delivery, whose key Dagster has
    not launched yet. Keyed by those three alone, it asked under a key whose run had succeeded, so Dagster skipped
    it every tick and the file waited until another one landed. A file nobody touches keeps its key."""
    parts = []
    for path in sorted(files):
        try:
            stat = path.stat()
        except FileNotFoundError:  # a run moved it to processed/ between the listing and now
            continue
        parts.append(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}")
    if not parts:
        return None
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"{region}-{len(parts)}-{digest}"


def build_landing_sensor(region: RegionConfig) -> SensorDefinition:
    """The sensor for one region; a factory so that adding a region config adds its sensor."""

    @sensor(
        name=f"{region.code.lower()}_landing_sensor",
        job=region_pipeline_job,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Requests one {region.code} run for all files waiting in its landing folder ({region.file_glob}).",
    )
    def landing_sensor(context: SensorEvaluationContext, kanda: KandaSettings) -> RunRequest | SkipReason:
        files = pending_files(kanda.load(), region)
        key = batch_key(region.code, files)
        if key is None:
            # nothing waits, but the region's last run failed after taking its work: finish the job
            key = catch_up_key(context.instance, region.code, region_pipeline_job.name)
            if key is None:
                return SkipReason(f"{region.code}: landing folder is empty")
        unfinished = unfinished_region_run(context.instance, region.code)
        if unfinished:
            return SkipReason(
                f"{region.code}: run {unfinished} of the region is queued or running; it takes the folder"
            )
        attempt = attempt_key(context.instance, key)
        if attempt is None:
            what = "these files" if files else "finishing the region's failed run"
            return SkipReason(f"{region.code}: {MAX_ATTEMPTS} runs for {what} failed; see their logs")
        return RunRequest(run_key=attempt, partition_key=region.code, tags={REGION_TAG: region.code})

    return landing_sensor


#: Only the regions this host serves (`KANDA_REGIONS`): another region's landing folder is on its own host.
landing_sensors = [build_landing_sensor(region) for region in served_regions()]

#: How often the region files' verdict is repeated (they are read once, when the code location loads).
REGION_FILES_INTERVAL_SECONDS = 60


class BrokenRegionFiles(Exception):
    """Region files that did not load when the code location did; the message names each file and its problem."""


@sensor(
    name="region_files_sensor",
    minimum_interval_seconds=REGION_FILES_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Fails its ticks, naming each file and its problem, while a region file does not validate (that region is"
        " not served; every other region is). Fix the file, then reload the code location."
    ),
)
def region_files_sensor(context: SensorEvaluationContext) -> SkipReason:
    broken = broken_regions()
    if broken:
        problems = "\n".join(f"- {line}" for reason in broken.values() for line in reason.splitlines())
        raise BrokenRegionFiles(
            f"{len(broken)} region file(s) did not load, so their regions are not served"
            f" (the other {len(all_regions())} regions are):\n{problems}"
        )
    return SkipReason(f"every region file loads ({len(all_regions())} regions)")
