"""Daily report schedules (placeholder until the reports feature lands)."""

from dagster import JobDefinition, ScheduleDefinition

report_jobs: list[JobDefinition] = []
report_schedules: list[ScheduleDefinition] = []
