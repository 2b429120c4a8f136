"""Landing-folder sensors: one per region, each turning "files are waiting" into one run for that region.

A run costs seconds to launch, so the sensor never asks for a run per file: whatever is waiting when it ticks
becomes one batch, and the run ingests the whole folder. The run key names that batch (file names, sizes and
modification times), so an unchanged folder is never requested twice while a changed one is requested again.
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
from kanda.settings import serves_region
from pipelines.jobs import region_pipeline_job
from pipelines.partitions import REGION_TAG
from pipelines.resources import KandaSettings
from regions import RegionConfig, all_regions

#: Short: a tick only lists a folder, and freshness (file landed -> visible centrally) starts with it.
MINIMUM_INTERVAL_SECONDS = 5


def batch_key(region: str, files: Sequence[Path]) -> str | None:
    """A stable name for this set of waiting files; None if they all vanished while we looked."""
    parts = []
    for path in sorted(files):
        try:
            stat = path.stat()
        except FileNotFoundError:  # a run moved it to processed/ between the listing and now
            continue
        parts.append(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}")
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
            return SkipReason(f"{region.code}: landing folder is empty")
        return RunRequest(run_key=key, partition_key=region.code, tags={REGION_TAG: region.code})

    return landing_sensor


#: Only the regions this host serves (`KANDA_REGIONS`): another region's landing folder is on its own host.
landing_sensors = [build_landing_sensor(region) for region in all_regions().values() if serves_region(region.code)]
