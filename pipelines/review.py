"""Reprocessing of approved steward fixes (placeholder until the review feature lands)."""

from dagster import JobDefinition, SensorDefinition

review_jobs: list[JobDefinition] = []
review_sensors: list[SensorDefinition] = []
