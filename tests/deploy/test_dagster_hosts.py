"""Region workers with Dagster on PostgreSQL storage: one code server per region "host", one central daemon.

Real processes: a `dagster code-server` per region data folder (`KANDA_REGIONS` restricts it to its region), and
`dagster-daemon` with deploy/dagster.yaml on a fresh PostgreSQL database. A file landed in each region's folder is
picked up by that location's sensor and ingested and published by a run that executed in that region's code server
(its store is the one in that folder); both regions' rows are then visible centrally. Two more runs of one region,
queued before the daemon starts, run one after the other: the per-region run limit holds with a real daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from kanda.central.query import NothingPublished, run_query
from kanda.regional.store import open_store
from kanda.settings import load_settings
from tests.deploy.conftest import Installation, free_port
from tests.support.files import make_files

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WAIT_SECONDS = 240


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    """A real process in its own process group, ended (the group: the code server's child too) afterwards."""
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        try:
            yield proc
        finally:
            group = proc.pid  # its own session: the group id is its pid
            with suppress(ProcessLookupError):
                os.killpg(group, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(group, 9)
                proc.wait()


def wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    import socket

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"code server did not listen on {port}: {log.read_text()[-3000:]}")


def launch_region_run(workspace: Path, code: str, env: dict[str, str]) -> str:
    """Submit a region_pipeline run for `code` through the instance's run coordinator (the queue), as the UI does;
    returns its run id once it is queued."""
    run_id = str(uuid.uuid4())
    tags = json.dumps({"kanda/region": code, "dagster/partition": code})
    target = ["-w", str(workspace), "-l", f"kanda-{code.lower()}", "-j", "region_pipeline"]
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", *target, "--tags", tags, "--run-id", run_id],
        env=env,
        cwd=workspace.parent,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return run_id


def successful_pipeline_runs(instance: DagsterInstance, code: str) -> list:
    runs = instance.get_runs(filters=RunsFilter(tags={"kanda/region": code}, statuses=[DagsterRunStatus.SUCCESS]))
    return [r for r in runs if r.job_name == "region_pipeline"]


def test_each_region_runs_in_its_own_code_server_and_publishes_centrally(
    installation: Installation, new_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    dagster_url = new_database()  # psycopg 3 URL: the instance must still talk psycopg2 to it
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KANDA_", "DAGSTER_", "AWS_"))},
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(dagster_home),
        "KANDA_DAGSTER_PG_URL": dagster_url,
    }
    ports = {"KE": free_port(), "NG": free_port()}
    workspace = {
        "load_from": [
            {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": f"kanda-{code.lower()}"}}
            for code, port in ports.items()
        ]
    }
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    homes = {code: tmp_path / f"{code.lower()}-host" for code in ports}
    # The storage's tables are created once, before two code servers start on the fresh database at the same time:
    # each would create them, and the slower one failed on a type the other had just made (run_tags).
    migrated = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=base, capture_output=True, text=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-3000:]

    with (
        process(
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "pipelines.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(ports["KE"]),
                "--location-name",
                "kanda-ke",
            ],
            {**base, **installation.environment(homes["KE"], KANDA_REGIONS="KE")},
            tmp_path / "ke-server.log",
            tmp_path,
        ) as ke_server,
        process(
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "pipelines.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(ports["NG"]),
                "--location-name",
                "kanda-ng",
            ],
            {**base, **installation.environment(homes["NG"], KANDA_REGIONS="NG")},
            tmp_path / "ng-server.log",
            tmp_path,
        ) as ng_server,
    ):
        wait_for_port(ports["KE"], ke_server, tmp_path / "ke-server.log")
        wait_for_port(ports["NG"], ng_server, tmp_path / "ng-server.log")
        for code, home in homes.items():
            host = installation.host(home, monkeypatch, KANDA_REGIONS=code)
            make_files(host, regions=[code], rows=150, days=1)
        central = installation.host(tmp_path / "central", monkeypatch)
        # Two KE runs queued before the daemon starts (as a backfill or two people in the UI would queue them):
        # `max_concurrent_runs` would let both start at once; the per-region limit must make one wait.
        queued = [launch_region_run(tmp_path / "workspace.yaml", "KE", base) for _ in range(2)]
        with process(
            [str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")],
            {**base, "KANDA_HOME": str(tmp_path / "daemon")},
            tmp_path / "daemon.log",
            tmp_path,
        ) as daemon:
            regions: set[str] = set()
            deadline = time.monotonic() + WAIT_SECONDS
            while regions != {"KE", "NG"} and time.monotonic() < deadline:
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                time.sleep(3)
                try:
                    regions = {
                        r["region"]
                        for r in run_query(central, "SELECT DISTINCT region FROM rollups.region_daily").to_pylist()
                    }
                except NothingPublished:
                    continue
            logs = "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log")))
            assert regions == {"KE", "NG"}, f"not both visible within {WAIT_SECONDS} s\n{logs}"

            # A run's rows are visible once it has published; its last steps (readers, review queue) follow. Wait
            # for both runs to finish before the processes stop: stopping a code server ends the run it hosts.
            monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
            monkeypatch.setenv("KANDA_DAGSTER_PG_URL", dagster_url)
            instance = DagsterInstance.get()
            finished = {code: successful_pipeline_runs(instance, code) for code in ports}
            while time.monotonic() < deadline and not (
                all(finished.values()) and {r.run_id for r in finished["KE"]} >= set(queued)
            ):
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                time.sleep(1)
                finished = {code: successful_pipeline_runs(instance, code) for code in ports}
            ke_runs = instance.get_run_records(filters=RunsFilter(tags={"kanda/region": "KE"}))

    # Which process ran what: each region's run belongs to its own code location, and the store it wrote is the
    # one in that region's folder (the other folder has no store of it).
    try:
        # One writer per regional store across hosts: no two KE runs were ever running at the same time, although
        # the two queued ones were both waiting when the daemon started.
        assert set(queued) <= {r.run_id for r in finished["KE"]}, "the queued KE runs did not both finish"
        spans = sorted((r.start_time, r.end_time) for r in ke_runs if r.start_time is not None)
        assert len(spans) >= 2 and all(end is not None for _, end in spans)
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), f"KE runs overlapped: {spans}"
        for code in ("KE", "NG"):
            pipeline_runs = finished[code]
            assert pipeline_runs, f"no successful region_pipeline run for {code}"
            assert {r.remote_job_origin.location_name for r in pipeline_runs} == {f"kanda-{code.lower()}"}
            other = next(c for c in homes if c != code)
            assert not load_settings(homes[other]).store_path(code).exists()
    finally:
        instance.dispose()
    for code, home in homes.items():
        monkeypatch.setenv("KANDA_HOME", str(home))
        with open_store(load_settings(), code, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM publish_log").fetchall()[0][0] >= 1
