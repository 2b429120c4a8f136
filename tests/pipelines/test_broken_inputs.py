"""What a Dagster user sees of a broken input: a rejected landing file fails the run's `no_rejected_files` check
(the healthy files still load and publish), and a region file that does not validate leaves the code location up
for every other region, with `region_files_sensor` failing on it. `KANDA_REGIONS` naming no known region is an error.

The code location builds its partitions, sensors and schedules when it is imported, so the region-file cases import
it in a fresh interpreter, as `dagster code-server` would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from pipelines import checks
from pipelines.jobs import REGION_FLOW_ASSETS
from pipelines.resources import KandaSettings
from regions.synthetic.core import DirtMix
from tests.regions.spec_regions import RW_YAML
from tests.support.files import make_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KANDA_CATALOG_URL", "KANDA_WAREHOUSE", "KANDA_BUYER_SALT", "KANDA_BATCH_ROWS", "KANDA_REGIONS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "kanda"
    monkeypatch.setenv("KANDA_HOME", str(home))
    return home


# ------------------------------------------------------------------------------------------- rejected landing file
def test_a_rejected_file_fails_the_runs_check_while_the_healthy_rows_load_and_publish(home: Path) -> None:
    settings = KandaSettings(home=str(home)).load()
    make_files(settings, regions=["KE"], rows=200, days=2, seed=11, dirt=DirtMix(), start=dt.date(2025, 3, 1))
    (settings.landing("KE") / "not_a_statement.csv").write_text("name,email\nx,y\n")
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*REGION_FLOW_ASSETS, *checks.FLOW_CHECKS],
            partition_key="KE",
            resources={"kanda": KandaSettings(home=str(home))},
            instance=instance,
        )
    assert result.success  # not blocking: the healthy file's rows go all the way to the central tables
    sales = {
        e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    assert sales["regional_sales"]["loaded"] > 0
    assert set(sales["regional_sales"]["rejected"]) == {"not_a_statement.csv"}
    assert sales["central/region_daily"]["publish_id"].startswith("KE-")
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = verdicts["no_rejected_files"]
    assert not check.passed
    assert check.severity == AssetCheckSeverity.ERROR
    assert "not_a_statement.csv" in check.description
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["rejected_files"] == 1 and metadata["region"] == "KE"
    assert "none of the required columns" in metadata["rejected: not_a_statement.csv"]


def test_the_region_run_selects_the_rejection_check(home: Path) -> None:
    from pipelines.definitions import defs

    job = defs.resolve_job_def("region_pipeline")
    selected = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert "no_rejected_files" in selected
    assert {c.check_key.name for c in checks.FLOW_CHECKS} <= selected


# ------------------------------------------------------------------------------------------------ region files
LOAD = """
import json
from dagster import build_sensor_context
from pipelines.definitions import defs
from pipelines.partitions import region_partitions

sensor = defs.resolve_sensor_def("region_files_sensor")
try:
    with build_sensor_context() as context:
        tick = sensor.evaluate_tick(context)
    verdict = {"failed": False, "message": tick.skip_message}
except Exception as exc:
    verdict = {"failed": True, "message": str(exc)}
print(json.dumps({
    "partitions": region_partitions.get_partition_keys(),
    "sensors": sorted(s.name for s in defs.sensors),
    "schedules": sorted(s.name for s in defs.schedules),
    "region_files_sensor": verdict,
}))
"""


def load_code_location(home: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_") and k != "DAGSTER_HOME"}
    environment = {**clean, "PYTHONPATH": str(ROOT), "KANDA_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=300, env=environment, cwd=ROOT
    )


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    """One healthy region (RW, inline rail) beside a file that is not YAML and one with a zone that does not exist."""
    folder = tmp_path / "regions"
    folder.mkdir()
    (folder / "rw.yaml").write_text(RW_YAML)
    (folder / "xx.yaml").write_text("code: XX\nname: B\ncurrency: [unclosed\n")
    (folder / "yy.yaml").write_text(
        RW_YAML.replace("code: RW", "code: YY").replace("zone: Africa/Kigali", "zone: Mars/Olympus")
    )
    return folder


def test_a_broken_region_file_leaves_the_code_location_serving_the_others(home: Path, broken_dir: Path) -> None:
    done = load_code_location(home, KANDA_REGIONS_DIR=str(broken_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"KE", "NG", "RW"} <= set(loaded["partitions"])
    assert not {"XX", "YY"} & set(loaded["partitions"])
    assert {"ke_landing_sensor", "rw_landing_sensor", "rw_review_sensor", "region_files_sensor"} <= set(
        loaded["sensors"]
    )
    assert "rw_creator_reports_schedule" in loaded["schedules"]
    verdict = loaded["region_files_sensor"]
    assert verdict["failed"], verdict
    assert f"{broken_dir / 'xx.yaml'}:4: expected ',' or ']'" in verdict["message"]
    assert f"{broken_dir / 'yy.yaml'}:5: zone: 'Mars/Olympus' is not an IANA time zone" in verdict["message"]
    assert str(broken_dir / "rw.yaml") not in verdict["message"]
    assert "xx.yaml" in done.stderr  # and the load's log says it too


def test_without_broken_files_the_region_files_sensor_skips(home: Path) -> None:
    done = load_code_location(home)
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])["region_files_sensor"]
    assert not verdict["failed"] and verdict["message"].startswith("every region file loads")


def test_an_unknown_code_in_kanda_regions_is_an_error_naming_it(home: Path) -> None:
    done = load_code_location(home, KANDA_REGIONS="KE,xq")
    assert done.returncode != 0
    assert "UnknownServedRegion: KANDA_REGIONS names unknown region(s) XQ; known: " in done.stderr
    assert "KE" not in done.stderr.rsplit("unknown region(s)", 1)[1].split(";")[0]


def test_a_served_region_whose_file_is_broken_leaves_the_other_served_ones(home: Path, broken_dir: Path) -> None:
    done = load_code_location(home, KANDA_REGIONS_DIR=str(broken_dir), KANDA_REGIONS="KE,XX")
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert {s for s in loaded["sensors"] if s.endswith(("_landing_sensor", "_review_sensor"))} == {
        "ke_landing_sensor",
        "ke_review_sensor",
    }
    assert loaded["schedules"] == ["ke_creator_reports_schedule"]
    assert loaded["region_files_sensor"]["failed"]
    assert "xx.yaml" in loaded["region_files_sensor"]["message"]
