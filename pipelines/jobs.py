"""The one job a region run executes: the region flow's steps as assets, with the checks that guard them.

The Great Expectations checks are not in it: they run in their own job after a publish
(`pipelines/expectations.py`), so they never delay freshness.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from pipelines import checks
from pipelines.assets.central import bi_snapshot, central_rollups
from pipelines.assets.regional import NO_REJECTED_FILES, regional_rollups, regional_sales, review_queue

REGION_FLOW_ASSETS = [regional_sales, regional_rollups, central_rollups, bi_snapshot, review_queue]

region_pipeline_job = define_asset_job(
    name="region_pipeline",
    selection=AssetSelection.assets(*REGION_FLOW_ASSETS).without_checks()
    | AssetSelection.checks(*checks.FLOW_CHECKS)
    | AssetSelection.checks(NO_REJECTED_FILES.key),
    description=(
        "The region flow: ingest waiting files and approved fixes, build the models once, publish the changed days,"
        " refresh the BI snapshot and queue new quarantine rows for review."
    ),
)
