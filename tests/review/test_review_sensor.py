"""The Dagster side of review: a sensor per region asks once per set of approvals, and the region flow loads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context

from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import approve, enqueue_region, list_items, reject
from kanda.settings import Settings
from pipelines.definitions import defs
from pipelines.resources import KandaSettings
from tests.support.steward_files import ingest_dirty_egypt

STEWARD = Actor("amina", "steward", None)


def test_the_sensor_requests_one_run_per_set_of_approvals_and_the_job_reprocesses(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    ids = {i.transaction_id: i.id for i in list_items(settings, STEWARD)}
    resources = {"kanda": KandaSettings(home=str(settings.home))}
    sensor = defs.resolve_sensor_def("eg_review_sensor")
    region_flow = defs.resolve_job_def("region_pipeline")

    with DagsterInstance.ephemeral() as instance:

        def evaluate() -> list[RunRequest]:
            with build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
                return list(sensor.evaluate_tick(context).run_requests or [])

        assert evaluate() == []  # nothing approved yet
        approve(settings, STEWARD, ids["ch_bad"], edits={"amount_minor": "25000"})
        (first,) = evaluate()
        assert first.tags["kanda/region"] == "EG"  # queued behind the region's other runs
        assert first.partition_key == "EG"  # a run of the region flow, whose first step loads the fixes
        assert evaluate()[0].run_key == first.run_key  # same approvals, same key: never launched twice
        reject(settings, STEWARD, ids["ch_wrong"], "sandbox")
        (second,) = evaluate()
        assert second.run_key != first.run_key
        assert defs.resolve_sensor_def("ke_review_sensor").evaluate_tick(
            build_sensor_context(instance=instance, resources=resources, definitions=defs)
        ).run_requests in (None, [])

        # a run for these approvals that fails (the store is busy: another process holds it) does not strand them
        monkeypatch.setenv("KANDA_LOCK_WAIT", "0.2")
        with open_store(settings, "EG", read_only=True):
            failed = region_flow.execute_in_process(
                partition_key=second.partition_key,
                resources=resources,
                instance=instance,
                tags={"dagster/run_key": second.run_key},
                raise_on_error=False,
            )
        monkeypatch.delenv("KANDA_LOCK_WAIT")
        assert not failed.success
        (retry,) = evaluate()
        assert retry.run_key == f"{second.run_key}-retry1"
        assert evaluate()[0].run_key == retry.run_key

        result = region_flow.execute_in_process(
            partition_key=retry.partition_key,
            resources=resources,
            instance=instance,
            tags={"dagster/run_key": retry.run_key},
        )
        assert result.success
        (sales,) = [
            e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "regional_sales"
        ]
        assert sales.materialization.metadata["fixes_loaded"].value == 1
        published = [e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "central"]
        assert len(published) == 4  # the same assets as a landed file's run: the fix is published
        assert evaluate() == []  # done: nothing waits any more
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]
        assert con.execute("SELECT status FROM quarantine WHERE transaction_id = 'ch_wrong'").fetchall() == [
            ("rejected",)
        ]
