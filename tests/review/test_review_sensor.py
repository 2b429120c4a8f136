"""The Dagster side of review: a sensor per region asks once per set of approvals, and the job reprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance, RunRequest, build_sensor_context

from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import approve, enqueue_region, list_items, reject
from kanda.settings import Settings
from pipelines.definitions import defs
from pipelines.resources import KandaSettings
from pipelines.review import review_reprocess
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

    with DagsterInstance.ephemeral() as instance:

        def evaluate() -> list[RunRequest]:
            with build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
                return list(sensor.evaluate_tick(context).run_requests or [])

        assert evaluate() == []  # nothing approved yet
        approve(settings, STEWARD, ids["ch_bad"], edits={"amount_minor": "25000"})
        (first,) = evaluate()
        assert first.tags["kanda/region"] == "EG"  # queued behind the region's other runs
        assert first.run_config == {"ops": {"reprocess_approved": {"config": {"region": "EG"}}}}
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
            failed = review_reprocess.execute_in_process(
                run_config=second.run_config,
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

        result = review_reprocess.execute_in_process(
            run_config=retry.run_config, resources=resources, instance=instance, tags={"dagster/run_key": retry.run_key}
        )
        assert result.success
        assert result.output_for_node("reprocess_approved")["loaded"] == 1
        assert evaluate() == []  # done: nothing waits any more
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]
        assert con.execute("SELECT status FROM quarantine WHERE transaction_id = 'ch_wrong'").fetchall() == [
            ("rejected",)
        ]


def test_an_ingested_region_is_queued_for_review(settings: Settings):
    """Each materialisation of a region's sales requests a review run (enqueue, then reprocess) for that region."""
    resources = {"kanda": KandaSettings(home=str(settings.home))}
    sensor = defs.resolve_sensor_def("review_enqueue_after_ingest")
    with DagsterInstance.ephemeral() as instance:

        def evaluate(cursor: str | None = None):
            with build_sensor_context(
                instance=instance, resources=resources, definitions=defs, cursor=cursor
            ) as context:
                result = sensor.evaluate_tick(context)
                return list(result.run_requests or []), result.cursor

        assert evaluate()[0] == []
        instance.report_runless_asset_event(AssetMaterialization("regional_sales", partition="KE"))
        (request,), cursor = evaluate()
        assert request.run_config == {"ops": {"reprocess_approved": {"config": {"region": "KE"}}}}
        assert request.tags["kanda/region"] == "KE"
        assert evaluate(cursor)[0] == []  # each materialisation is handled once
