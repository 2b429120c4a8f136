"""The Dagster side: one daily-partitioned asset per region (days in the region's zone) and a 06:00 local schedule,
both calling the same `write_reports` as the CLI."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster import DagsterInstance, build_schedule_context, instance_for_test, materialize
from dagster._core.storage.tags import RUN_KEY_TAG

from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from pipelines.assets.reports import creator_report_assets
from pipelines.definitions import defs
from pipelines.resources import KandaSettings
from regions import all_regions
from tests.support.reports import load_and_publish, sale, write_sales


def test_the_region_asset_delivers_a_day_once_and_fails_on_a_day_not_published(settings: Settings):
    at = dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC)
    write_sales(settings, "KE", [sale(i, f"KE-C000{i}", f"KE-P0000{4 * i - 3}", 500_00, at) for i in (1, 2)], "d")
    load_and_publish(settings, "KE")
    (asset,) = [a for a in creator_report_assets if a.key.to_user_string() == "ke_creator_reports"]
    resources = {"kanda": KandaSettings(home=str(settings.home))}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("ke_report_days", ["2026-10-05"])  # the publish step adds published days
        first = materialize([asset], partition_key="2026-10-05", resources=resources, instance=instance)
        assert first.success
        meta = {k: v.value for k, v in first.asset_materializations_for_node("ke_creator_reports")[0].metadata.items()}
        assert (meta["mode"], meta["reports"], meta["delivered"], meta["delivered_before"]) == ("outbox", 2, 2, 0)
        assert len(list((settings.outbox_dir / "KE" / "2026-10-05").glob("*.eml"))) == 2

        again = materialize([asset], partition_key="2026-10-05", resources=resources, instance=instance)
        meta = {k: v.value for k, v in again.asset_materializations_for_node("ke_creator_reports")[0].metadata.items()}
        assert (meta["delivered"], meta["delivered_before"]) == (0, 2)

        # new data for the day, ingested but not published yet: the run fails and says why
        write_sales(settings, "KE", [sale(9, "KE-C0001", "KE-P00002", 700_00, at)], "late")
        ingest_landing(settings, "KE")
        early = materialize(
            [asset], partition_key="2026-10-05", resources=resources, instance=instance, raise_on_error=False
        )
        (failure,) = [e for e in early.all_events if e.is_step_failure]
        assert "not published" in str(failure.step_failure_data.error.message)
        assert not early.success


def test_each_region_is_scheduled_at_six_in_its_own_zone_for_its_previous_local_day():
    schedule = defs.resolve_schedule_def("eg_creator_reports_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "Africa/Cairo")
    # 06:00 on 25 April 2026 in Cairo (UTC+3 since the night before): the day to report is the 24th
    tick = dt.datetime(2026, 4, 25, 6, tzinfo=ZoneInfo("Africa/Cairo"))
    with instance_for_test() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        )
        skipped = schedule.evaluate_tick(context)
        assert not skipped.run_requests and "not been published" in skipped.skip_message  # no empty days offered
        instance.add_dynamic_partitions("eg_report_days", ["2026-04-23", "2026-04-24"])
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        )
        # the 24th, and the 23rd: published after its own tick had skipped it, and never run
        requests = schedule.evaluate_tick(context).run_requests
        assert [r.partition_key for r in requests] == ["2026-04-24", "2026-04-23"]
        assert [r.run_key for r in requests] == ["EG-reports-2026-04-24", "EG-reports-2026-04-23"]
        # once the 23rd has run, later ticks leave it alone
        job = defs.resolve_job_def("eg_creator_reports_job")
        run = instance.create_run_for_job(job, tags={RUN_KEY_TAG: "EG-reports-2026-04-23"})
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        )
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.partition_key == "2026-04-24"
        # a run that failed (the relay was down at 06:00) is asked for again at the next tick, under a retry key
        instance.report_run_failed(run)
        tomorrow = tick + dt.timedelta(days=1)
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tomorrow, repository_def=defs.get_repository_def()
        )
        retried = schedule.evaluate_tick(context).run_requests
    assert [(r.partition_key, r.run_key) for r in retried] == [
        ("2026-04-24", "EG-reports-2026-04-24"),
        ("2026-04-23", "EG-reports-2026-04-23-retry1"),
    ]
    assert {s.name for s in defs.schedules} == {f"{code.lower()}_creator_reports_schedule" for code in all_regions()}
