"""Partitions: one per region for the region flow, and per region the local days that have been published.

A region's store has one writer, so a region is the natural unit of a run. Report partitions are dynamic: a day
exists once some publish has sent it centrally (the publish step adds it), so the UI offers the days that have
data instead of every calendar day since some fixed start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from dagster import DagsterInstance, DynamicPartitionsDefinition, StaticPartitionsDefinition

from regions import RegionConfig, all_regions

#: Region codes from `regions/config/*.yaml`; adding a region file adds a partition.
region_partitions = StaticPartitionsDefinition(sorted(all_regions()))

#: Run tag naming the region a run writes; `dagster.yaml` allows one queued-to-running run per value.
REGION_TAG = "kanda/region"


def report_days_name(code: str) -> str:
    return f"{code.lower()}_report_days"


def report_days(region: RegionConfig) -> DynamicPartitionsDefinition:
    """The region's published local days (in its own zone), as partitions of its creator reports."""
    return DynamicPartitionsDefinition(name=report_days_name(region.code))


def add_report_days(instance: DagsterInstance, code: str, days: Iterable[dt.date]) -> None:
    """Make published days available as report partitions (idempotent: known days are skipped)."""
    name = report_days_name(code)
    wanted = {d.isoformat() for d in days}
    missing = sorted(wanted - set(instance.get_dynamic_partitions(name))) if wanted else []
    if missing:
        instance.add_dynamic_partitions(name, missing)
