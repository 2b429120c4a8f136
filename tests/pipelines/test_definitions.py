"""The Dagster glue: graph shape pinned by a snapshot, one region end to end in process, and the sensor.

The snapshot makes any change to assets, deps, groups, partitions, checks, sensors or jobs a visible diff in
review; regenerate it deliberately with `KANDA_UPDATE_SNAPSHOTS=1 pytest tests/pipelines`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DynamicPartitionsDefinition,
    RunRequest,
    TimeWindowPartitionsDefinition,
    build_sensor_context,
    materialize,
)

from pipelines import checks
from pipelines.assets.central import CENTRAL_KEYS
from pipelines.definitions import defs
from pipelines.jobs import REGION_FLOW_ASSETS
from pipelines.resources import KandaSettings
from regions import get_region
from regions.synthetic.core import DirtMix
from tests.support.demo import DemoRun
from tests.support.files import make_files

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
ASSETS = REGION_FLOW_ASSETS
CHECKS = checks.FLOW_CHECKS


def graph_snapshot() -> dict:
    """Everything about the definitions that a reviewer should notice changing, in a stable order."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "partitions": _partitions(partitions),
            "pools": sorted(node.pools or []),
            "checks": {
                c.name: {"blocking": graph.get(c).blocking, "partitioned": graph.get(c).partitions_def is not None}
                for c in sorted(node.check_keys, key=lambda c: c.name)
            },
        }
    sensors = {
        s.name: {
            "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],  # region_files_sensor requests nothing
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "default_status": s.default_status.value,
        }
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    schedules = {
        s.name: {
            "job": s.job_name,
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "default_status": s.default_status.value,
        }
        for s in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }
    return json.loads(json.dumps({"assets": assets, "sensors": sensors, "schedules": schedules, "jobs": jobs}))


def _partitions(partitions) -> list[str] | dict | None:
    """Static partitions by their keys; time partitions by their definition (their keys grow every day)."""
    if partitions is None:
        return None
    if isinstance(partitions, DynamicPartitionsDefinition):
        return {"dynamic": partitions.name}
    if isinstance(partitions, TimeWindowPartitionsDefinition):
        return {
            "cron": partitions.cron_schedule,
            "start": partitions.start.isoformat(),
            "timezone": partitions.timezone,
            "format": partitions.fmt,
        }
    return sorted(partitions.get_partition_keys())


def test_asset_graph_matches_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("KANDA_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), "no snapshot committed: run with KANDA_UPDATE_SNAPSHOTS=1"
    assert current == json.loads(SNAPSHOT.read_text()), "graph changed: rerun with KANDA_UPDATE_SNAPSHOTS=1"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KANDA_HOME, with every other KANDA_* override cleared so nothing leaks in from the shell."""
    for name in ("KANDA_CATALOG_URL", "KANDA_WAREHOUSE", "KANDA_BUYER_SALT", "KANDA_BATCH_ROWS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "kanda"
    monkeypatch.setenv("KANDA_HOME", str(home))
    return home


def _run_region(home: Path, instance: DagsterInstance, code: str):
    result = materialize(
        [*ASSETS, *CHECKS],
        partition_key=code,
        resources={"kanda": KandaSettings(home=str(home))},
        instance=instance,
    )
    assert result.success
    metadata = {
        event.asset_key.to_user_string(): {k: v.value for k, v in event.metadata.items()}
        for event in result.get_asset_materialization_events()
        for event in [event.materialization]
    }
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return metadata, verdicts


def test_materialise_one_region(home: Path) -> None:
    settings = KandaSettings(home=str(home)).load()
    make_files(settings, regions=["KE"], rows=300, days=2, seed=1, dirt=DirtMix(), start=dt.date(2025, 3, 1))
    with DagsterInstance.ephemeral() as instance:
        first, verdicts = _run_region(home, instance, "KE")
        sales = first["regional_sales"]
        assert sales["files"] == 1 and sales["rejected"] == {}
        assert sales["rows_in"] > 0
        assert sales["rows_in"] == sales["loaded"] + sales["quarantined"] + sales["duplicates"]
        assert set(verdicts) == {
            "no_rejected_files",
            "batch_conservation",
            "quarantine_rate",
            "rollups_match_events",
            "usd_agrees_across_rollups",
            "reconciliation",
        }
        passing = ("batch_conservation", "rollups_match_events", "usd_agrees_across_rollups", "reconciliation")
        for name in ("no_rejected_files", *passing):
            assert verdicts[name].passed, verdicts[name].description
        central = first["central/creator_daily"]
        assert central["publish_id"].startswith("KE-") and central["days"] >= 2
        spec = defs.resolve_asset_graph().get(AssetKey(["central", "creator_daily"]))
        assert spec.metadata["dagster/table_name"] == "rollups.creator_daily"
        assert spec.owners == ["team:kanda-data"] and spec.freshness_policy is not None
        assert central["dagster/row_count"] == central["rows_published"] > 0
        columns = {c.name: c for c in central["dagster/column_schema"].columns}
        assert columns["net_minor"].description, "column docs come from warehouse_models' models.yml"
        assert first["review_queue"]["queued"] == sales["quarantined"]
        assert instance.get_dynamic_partitions("ke_report_days"), "published days become report partitions"

        second, verdicts = _run_region(home, instance, "KE")
        assert second["regional_sales"]["files"] == 0
        assert second["regional_sales"]["loaded"] == 0
        assert second["regional_rollups"]["built"] is False  # the store did not change: nothing rebuilt
        assert second["central/creator_daily"]["publish_id"] == "none (up to date)"
        assert verdicts["batch_conservation"].passed and verdicts["reconciliation"].passed


def test_sensor_batches_waiting_files_into_one_request(home: Path) -> None:
    region = get_region("KE")
    sensor = defs.resolve_sensor_def("ke_landing_sensor")
    folder = KandaSettings(home=str(home)).load().landing(region.code)

    instance = DagsterInstance.ephemeral()  # the sensor asks it for the region's runs (none here)

    def evaluate() -> list[RunRequest]:
        resources = {"kanda": KandaSettings(home=str(home))}
        with build_sensor_context(resources=resources, definitions=defs, instance=instance) as context:
            return list(sensor.evaluate_tick(context).run_requests or [])

    assert evaluate() == []  # no folder yet
    folder.mkdir(parents=True)
    assert evaluate() == []  # empty folder
    (folder / "notes.txt").write_text("not a statement")  # outside the region's file glob
    assert evaluate() == []

    for name in ("a.csv", "b.csv", "c.csv"):
        (folder / name).write_text(f"{name}\n")
    (request,) = evaluate()
    assert request.partition_key == "KE"
    assert request.tags["kanda/region"] == "KE"
    assert request.run_key.startswith("KE-3-")
    assert evaluate()[0].run_key == request.run_key  # same batch, same key: Dagster will not launch it twice

    (folder / "d.csv").write_text("d\n")
    (changed,) = evaluate()
    assert changed.run_key != request.run_key


def ke_landing_tick(home: Path, instance: DagsterInstance):
    """One tick of Kenya's landing sensor on `home`, asking `instance` for the region's runs."""
    resources = {"kanda": KandaSettings(home=str(home))}
    with build_sensor_context(resources=resources, definitions=defs, instance=instance) as context:
        return defs.resolve_sensor_def("ke_landing_sensor").evaluate_tick(context)


def test_a_batch_whose_run_failed_is_asked_for_again_and_none_while_a_run_is_unfinished(home: Path) -> None:
    """Dagster never launches a run key twice: a batch whose run failed (the store busy) stayed in the landing
    folder for good. Files that landed while a run was queued got a run of their own, which found nothing."""
    from dagster import DagsterRunStatus
    from dagster._core.storage.tags import RUN_KEY_TAG
    from dagster._core.test_utils import create_run_for_test

    folder = KandaSettings(home=str(home)).load().landing("KE")
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("a\n")

    with DagsterInstance.ephemeral() as instance:

        def evaluate():
            return ke_landing_tick(home, instance)

        (first,) = evaluate().run_requests
        failed = {RUN_KEY_TAG: first.run_key, "kanda/region": "KE"}
        create_run_for_test(instance, job_name="region_pipeline", tags=failed, status=DagsterRunStatus.FAILURE)
        (again,) = evaluate().run_requests
        assert again.run_key == f"{first.run_key}-retry1"

        running = {RUN_KEY_TAG: again.run_key, "kanda/region": "KE"}
        create_run_for_test(instance, job_name="region_pipeline", tags=running, status=DagsterRunStatus.STARTED)
        (folder / "b.csv").write_text("b\n")
        waiting = evaluate()
        assert not waiting.run_requests and "queued or running" in waiting.skip_message


def test_a_run_that_failed_after_taking_its_files_is_finished_by_a_catch_up_run(home: Path) -> None:
    """A run that failed after its ingest (the catalog down at publish, the worker killed) had filed the files away:
    the folder was empty, the sensor asked for nothing, and the region's days stayed unpublished until another
    file landed. The sensor asks for a run that finishes the job, under one key for that failure (its own failed
    runs retried `MAX_ATTEMPTS` times, then it stops and says so), and for nothing once a run succeeded."""
    from dagster import DagsterRunStatus
    from dagster._core.storage.tags import RUN_KEY_TAG
    from dagster._core.test_utils import create_run_for_test

    from pipelines.run_keys import MAX_ATTEMPTS

    KandaSettings(home=str(home)).load().landing("KE").mkdir(parents=True)

    def run(key: str, status: DagsterRunStatus, job: str = "region_pipeline") -> None:
        create_run_for_test(instance, job_name=job, tags={RUN_KEY_TAG: key, "kanda/region": "KE"}, status=status)

    with DagsterInstance.ephemeral() as instance:
        assert not ke_landing_tick(home, instance).run_requests  # nothing ever ran: nothing to finish
        run("KE-1-abc", DagsterRunStatus.SUCCESS)
        run("ke-report-day", DagsterRunStatus.FAILURE, job="ke_creator_reports_job")  # not the region's pipeline
        assert "landing folder is empty" in ke_landing_tick(home, instance).skip_message

        run("KE-1-def", DagsterRunStatus.FAILURE)  # took its file, then failed
        (catch_up,) = ke_landing_tick(home, instance).run_requests
        assert catch_up.run_key.startswith("KE-catch-up-") and catch_up.partition_key == "KE"
        assert ke_landing_tick(home, instance).run_requests[0].run_key == catch_up.run_key  # one key per failure
        keys = [catch_up.run_key]
        for _ in range(MAX_ATTEMPTS):
            run(keys[-1], DagsterRunStatus.FAILURE)  # the catalog is still down
            tick = ke_landing_tick(home, instance)
            keys.append(tick.run_requests[0].run_key if tick.run_requests else tick.skip_message)
        assert keys[1:-1] == [f"{catch_up.run_key}-retry{n}" for n in range(1, MAX_ATTEMPTS)]
        assert "runs for finishing the region's failed run failed" in keys[-1]

        run("KE-1-ghi", DagsterRunStatus.SUCCESS)  # a later run finished everything
        assert "landing folder is empty" in ke_landing_tick(home, instance).skip_message


def test_a_file_landed_again_with_its_times_kept_gets_a_run_of_its_own(home: Path) -> None:
    """A file re-delivered with its name, size and modified time kept (`rsync -t`, a rejected file moved back once
    its region was fixed) was asked for under the key of the run that had ingested it. Dagster never launches a
    key twice, so the file waited in landing until some other file arrived."""
    import shutil
    import time

    from dagster import DagsterRunStatus
    from dagster._core.storage.tags import RUN_KEY_TAG
    from dagster._core.test_utils import create_run_for_test

    folder = KandaSettings(home=str(home)).load().landing("KE")
    folder.mkdir(parents=True)
    kept = home / "statement.csv"
    kept.write_text("a\n")
    shutil.copy2(kept, folder / "statement.csv")

    with DagsterInstance.ephemeral() as instance:

        def evaluate():
            return ke_landing_tick(home, instance)

        (first,) = evaluate().run_requests
        assert evaluate().run_requests[0].run_key == first.run_key  # untouched, the same key
        done = {RUN_KEY_TAG: first.run_key, "kanda/region": "KE"}
        create_run_for_test(instance, job_name="region_pipeline", tags=done, status=DagsterRunStatus.SUCCESS)
        (folder / "statement.csv").unlink()  # the run filed it away
        time.sleep(0.05)  # past the file system's clock tick, as any real delivery is
        shutil.copy2(kept, folder / "statement.csv")  # delivered again, its times kept
        (again,) = evaluate().run_requests
        assert again.run_key != first.run_key


def test_a_region_check_launched_without_a_region_says_how_to_launch_it(home: Path) -> None:
    """The quality suites job (or a check's own button) launched from the UI without a partition ended in a bare
    `KeyError: 'dagster/partition'`; the failure now names the tag and the regions."""
    job = defs.resolve_job_def("quality_suites")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, resources={"kanda": KandaSettings(home=str(home))}
        )
    failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all("launch it with a region partition (the tag dagster/partition" in m for m in failures)
    assert all("KeyError" not in m and "KE, " in m for m in failures)


def test_the_quality_suites_sensor_names_its_region_by_tag(home: Path) -> None:
    """The suites' job selects only checks, so it has no partitions: a request with a partition key failed every
    tick, and the suites never ran under Dagster."""
    from dagster import AssetMaterialization

    from pipelines.expectations import quality_suites_after_publish

    materialization = AssetMaterialization(asset_key=AssetKey(["central", "region_daily"]), partition="KE")
    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(materialization)
        with build_sensor_context(instance=instance, definitions=defs) as context:
            result = quality_suites_after_publish.evaluate_tick(context)
    (request,) = result.run_requests
    assert request.partition_key is None
    assert request.tags["dagster/partition"] == "KE" and request.tags["kanda/region"] == "KE"


def test_two_regions_published_between_two_ticks_both_get_their_quality_suites(home: Path) -> None:
    """Dagster's `asset_sensor` reads only the newest materialization: of KE and NG published between two ticks,
    only NG's suites ran and KE's publish was never validated."""
    from dagster import AssetMaterialization

    from pipelines.expectations import quality_suites_after_publish

    key = AssetKey(["central", "region_daily"])
    with DagsterInstance.ephemeral() as instance:

        def evaluate(cursor: str | None):
            with build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
                return quality_suites_after_publish.evaluate_tick(context)

        for code in ("KE", "NG"):
            instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition=code))
        first = evaluate(None)
        assert sorted(r.tags["kanda/region"] for r in first.run_requests) == ["KE", "NG"]
        assert not evaluate(first.cursor).run_requests  # nothing new: nothing asked twice

        instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition="GH"))
        (later,) = evaluate(first.cursor).run_requests
        assert later.tags["kanda/region"] == "GH"


def test_a_region_run_builds_the_models_exactly_once(home: Path) -> None:
    """The build Dagster shows is the build that is published: the publish step does not build again."""
    settings = KandaSettings(home=str(home)).load()
    make_files(settings, regions=["GH"], rows=200, days=2, seed=3, dirt=DirtMix(), start=dt.date(2025, 3, 1))
    builds: list[str] = []
    import kanda.regional.models as models

    original = models.load_seeds  # runs once at the start of every real build

    def counting(con):
        builds.append("build")
        return original(con)

    with pytest.MonkeyPatch.context() as mp, DagsterInstance.ephemeral() as instance:
        mp.setattr(models, "load_seeds", counting)
        metadata, _ = _run_region(home, instance, "GH")
    assert metadata["regional_rollups"]["built"] is True
    assert metadata["central/region_daily"]["publish_id"].startswith("GH-")
    assert builds == ["build"], f"models built {len(builds)} times in one region run"


def test_the_cli_demo_shows_in_the_dagster_instance(demo_run: DemoRun) -> None:
    """After `kanda demo` (no Dagster run at all), the instance under KANDA_HOME shows every region's central
    tables, store and review queue as materialized, and the published days as report partitions."""
    from pipelines.instance import kanda_instance
    from regions import all_regions

    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    instance = kanda_instance(demo_run.home.resolve())
    regions = set(all_regions())
    for key in [*CENTRAL_KEYS, AssetKey("regional_sales"), AssetKey("regional_rollups"), AssetKey("review_queue")]:
        assert instance.get_materialized_partitions(key) == regions, key
    assert all(instance.get_dynamic_partitions(f"{code.lower()}_report_days") for code in regions)


def test_the_code_location_loads_without_any_warning() -> None:
    """No deprecation, beta or preview warning on load: they become errors here (a fresh interpreter, so nothing
    imported earlier hides a warning that is only emitted once)."""
    import subprocess
    import sys

    script = (
        "from pipelines.definitions import defs\n"
        "defs.resolve_asset_graph(); defs.resolve_all_job_defs()\n"
        "[s for s in defs.sensors]; [s for s in defs.schedules]\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_failing_region_run_never_blocks_another_region(home: Path) -> None:
    """A broken store fails its own region's run, with the cause; another region's run in the same instance still
    materializes everything. Runs queue per region (dagster.yaml limits one run per `kanda/region` value), so the
    failed run holds no slot another region waits for."""
    import yaml

    settings = KandaSettings(home=str(home)).load()
    make_files(settings, regions=["KE", "NG"], rows=200, days=2, seed=5, dirt=DirtMix(), start=dt.date(2025, 3, 1))
    from kanda import flow

    flow.run_region(settings, "NG", steps=("ingest",))
    settings.store_path("NG").write_bytes(b"this is not a DuckDB file" * 100)  # corrupted on disk
    with DagsterInstance.ephemeral() as instance:
        broken = materialize(
            [*ASSETS, *CHECKS],
            partition_key="NG",
            resources={"kanda": KandaSettings(home=str(home))},
            instance=instance,
            raise_on_error=False,
        )
        assert not broken.success
        healthy, verdicts = _run_region(home, instance, "KE")
    assert healthy["central/region_daily"]["publish_id"].startswith("KE-")
    assert all(v.passed for v in verdicts.values() if v.check_name != "quarantine_rate")
    limits = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())["concurrency"]["runs"]
    per_region = {limit["key"]: limit for limit in limits["tag_concurrency_limits"]}
    assert per_region["kanda/region"]["value"] == {"applyLimitPerUniqueValue": True}
    assert per_region["kanda/region"]["limit"] == 1
