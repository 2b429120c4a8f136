"""Runs that Dagster did not start still show in Dagster: each region-flow step the CLI or the demo ran is
recorded as a runless asset materialization on the instance under the same `KANDA_HOME`.

Registered as the `dagster` entry point of group `kanda.observers` (pyproject.toml), which `kanda.flow` loads;
kanda's core never imports this package.
"""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, MetadataValue

from kanda.flow import StepEvent
from pipelines.assets.central import CENTRAL_KEYS
from pipelines.instance import kanda_instance
from pipelines.partitions import add_report_days

#: Which assets each flow step materializes (the same mapping the Dagster assets implement).
STEP_ASSETS: dict[str, list[AssetKey]] = {
    "ingest": [AssetKey("regional_sales")],
    "load_fixes": [AssetKey("regional_sales")],
    "build": [AssetKey("regional_rollups")],
    "publish": [*CENTRAL_KEYS, AssetKey("bi_snapshot")],
    "queue_review": [AssetKey("review_queue")],
}


def record_in_dagster(event: StepEvent) -> None:
    """Report the step's assets for the event's region (partition), with the step's figures as metadata."""
    keys = STEP_ASSETS.get(event.step)
    if not keys:
        return
    instance = kanda_instance(event.home)
    metadata = {"recorded_by": "kanda CLI (runless)", **{k: _value(v) for k, v in event.metadata.items()}}
    for key in keys:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, partition=event.region, metadata=metadata)
        )
    if event.step == "publish":
        import datetime as dt

        add_report_days(instance, event.region, [dt.date.fromisoformat(d) for d in event.metadata.get("days", [])])


def _value(value):
    if isinstance(value, dict | list | tuple):
        return MetadataValue.json(value)
    return MetadataValue.text("") if value is None else value
