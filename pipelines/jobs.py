"""The one job a region run executes: ingest, build, publish, with their checks, for one partition."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from pipelines.assets.ingestion import regional_sales
from pipelines.assets.rollups import central_rollups, regional_rollups
from pipelines.partitions import region_partitions

region_pipeline_job = define_asset_job(
    name="region_pipeline",
    selection=AssetSelection.assets(regional_sales, regional_rollups, central_rollups),
    partitions_def=region_partitions,
    description="Ingest a region's landing folder, rebuild its rollups and publish the changed days centrally.",
)
