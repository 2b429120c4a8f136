"""Partitions: one per region for the region flow, and per region the local days that have been published.

A region's store has one writer, so a region is the natural unit of a run. Report partitions are dynamic: a day
exists once some publish has sent it centrally (the publish step adds it), so the UI offers the days that have
data instead of every calendar day since some fixed start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from dagster import DagsterInstance, DynamicPartitionsDefinition, StaticPartitionsDefinition

from kanda.settings import KANDA, environment
from regions import RegionConfig, all_regions, broken_regions, unavailable_regions

#: Region codes from `regions/config/*.yaml` (and `KANDA_REGIONS_DIR`); adding a region file adds a partition. A
#: region whose file does not validate has none: the others are served, and `region_files_sensor` names the file.
region_partitions = StaticPartitionsDefinition(sorted(all_regions()))


class UnknownServedRegion(ValueError):
    """`KANDA_REGIONS` names a region code that no region file defines (a typo would otherwise serve nothing)."""


def served_codes() -> tuple[str, ...]:
    """The codes in `KANDA_REGIONS` (upper-cased, as `kanda.settings` reads them); empty: every region."""
    given = environment(KANDA)["regions"] or ""
    return tuple(sorted({code.strip().upper() for code in given.split(",") if code.strip()}))


def served_regions() -> list[RegionConfig]:
    """The regions this host runs: those named by `KANDA_REGIONS`, or every region when it is unset.

    A code that no region file defines is an error naming it, raised when the code location loads. A code whose
    region file does not validate is not: that region is left out like any broken region (`region_files_sensor`
    names the file and why) and the host serves the others it names.
    """
    regions = all_regions()
    served = served_codes()
    unknown = [code for code in served if code not in regions and code not in unavailable_regions()]
    if unknown:
        known = ", ".join(sorted(regions))
        broken = f"; region files that did not load: {', '.join(broken_regions())}" if broken_regions() else ""
        raise UnknownServedRegion(f"KANDA_REGIONS names unknown region(s) {', '.join(unknown)}; known: {known}{broken}")
    return [region for region in regions.values() if not served or region.code in served]


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
