"""One partition per region: a region's store has one writer, so a region is the natural unit of a run."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from regions import all_regions

#: Region codes from `regions/config/*.yaml`; adding a region file adds a partition.
region_partitions = StaticPartitionsDefinition(sorted(all_regions()))

#: Run tag naming the region a run writes; `dagster.yaml` allows one queued-to-running run per value.
REGION_TAG = "kanda/region"
