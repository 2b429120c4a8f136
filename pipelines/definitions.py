"""The code location, assembled from its folders: assets from `assets/`, checks, jobs, sensors and schedules from
their modules, and the one resource declared once.

Every run uses the in-process executor: a region's steps run strictly one after another (they share the store
lock), so a subprocess per step would only add seconds of start-up per step on small machines.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor, load_asset_checks_from_modules, load_assets_from_package_module

from pipelines import assets, checks, expectations
from pipelines.expectations import quality_suites_after_publish, quality_suites_job
from pipelines.jobs import region_pipeline_job
from pipelines.reports import report_jobs, report_schedules
from pipelines.resources import KandaSettings
from pipelines.review import review_sensors
from pipelines.sensors import landing_sensors, region_files_sensor

defs = Definitions(
    assets=load_assets_from_package_module(assets),
    asset_checks=load_asset_checks_from_modules([checks, expectations]),
    jobs=[region_pipeline_job, quality_suites_job, *report_jobs],
    sensors=[*landing_sensors, *review_sensors, quality_suites_after_publish, region_files_sensor],
    schedules=report_schedules,
    resources={"kanda": KandaSettings()},
    executor=in_process_executor,
)
