"""Runs orphaned by a killed `dagster dev` are failed by run monitoring, so a region's queue does not stop for good.

The end-to-end test uses real processes with the repo's `dagster.yaml` (only the monitoring interval shortened):
`dagster dev` runs a job whose step waits, everything is killed as in a crash, and a second `dagster dev` must mark
the run failed. The others ask the launcher's health check directly about runs in a real instance.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from pipelines.run_launcher import KandaRunLauncher, worker_pid
from tests.deploy.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOG = logging.getLogger(__name__)

SLEEPER = """
import os, time
from pathlib import Path
from dagster import Definitions, job, op

@op
def wait_for_a_crash():
    Path(os.environ["STEP_STARTED"]).write_text(str(os.getpid()))
    time.sleep(600)

@job
def sleeper():
    wait_for_a_crash()

defs = Definitions(jobs=[sleeper])
"""


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    """The repo's Dagster instance (its launcher and monitoring settings) on a private data folder."""
    monkeypatch.setenv("KANDA_HOME", str(tmp_path / "home"))
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(dagster_home)) as loaded:
        yield loaded


def started_run(instance: DagsterInstance, grpc_info: dict, pid: int | None) -> DagsterRun:
    run = instance.add_run(
        DagsterRun(
            job_name="region_pipeline", status=DagsterRunStatus.STARTED, tags={GRPC_INFO_TAG: json.dumps(grpc_info)}
        )
    )
    if pid is not None:
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def monitor(instance: DagsterInstance, run: DagsterRun) -> DagsterRunStatus:
    monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), LOG)
    return instance.get_run_by_id(run.run_id).status


def a_dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_the_repo_instance_monitors_runs_with_kandas_launcher(instance: DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, KandaRunLauncher)
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds > 0


def test_a_run_whose_server_and_worker_are_gone_is_failed(instance: DagsterInstance) -> None:
    run = started_run(instance, {"host": "localhost", "port": free_port()}, a_dead_pid())

    assert monitor(instance, run) == DagsterRunStatus.FAILURE
    failure = instance.all_logs(run.run_id)[-1]
    assert "no longer exists" in failure.message


def test_a_run_whose_worker_still_lives_is_left_running(instance: DagsterInstance) -> None:
    """Its code server is gone but its worker process is not (an orphan that will still report its end)."""
    run = started_run(instance, {"host": "127.0.0.1", "port": free_port()}, os.getpid())

    assert monitor(instance, run) == DagsterRunStatus.STARTED


def test_a_run_on_a_host_out_of_reach_is_left_to_the_runtime_limit(instance: DagsterInstance) -> None:
    """A dead pid means nothing for a worker on another host: the run is not failed on a guess."""
    run = started_run(instance, {"host": "region-host.invalid", "port": free_port()}, a_dead_pid())

    assert monitor(instance, run) == DagsterRunStatus.STARTED


def test_a_run_without_a_recorded_worker_is_left_running(instance: DagsterInstance) -> None:
    run = started_run(instance, {"host": "localhost", "port": free_port()}, None)

    assert worker_pid(instance, run.run_id) is None
    assert monitor(instance, run) == DagsterRunStatus.STARTED


def dagster_dev(home: Path, defs: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [str(BIN / "dagster"), "dev", "-f", str(defs), "-h", "127.0.0.1", "-p", str(port)]
    with log.open("a") as out:
        proc = subprocess.Popen(args, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        with suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return proc, port
        time.sleep(1)
    pytest.fail(f"dagster dev did not answer: {log.read_text()[-3000:]}")


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=60)


def wait_for(condition, what: str, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s; dagster dev said: {log.read_text()[-3000:]}")
        time.sleep(1)


@pytest.mark.slow
def test_a_run_orphaned_by_a_killed_dagster_dev_is_failed_after_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_graphql import DagsterGraphQLClient

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 2
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    defs = tmp_path / "sleeper.py"
    defs.write_text(SLEEPER)
    step_started = tmp_path / "step_started"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "KANDA_HOME": str(tmp_path / "kanda_home"),
        "STEP_STARTED": str(step_started),
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "dagster-dev.log"
    monkeypatch.setenv("KANDA_HOME", env["KANDA_HOME"])  # this process reads the same instance
    worker = None
    first, port = dagster_dev(home, defs, env, log)
    try:
        run_id = DagsterGraphQLClient("127.0.0.1", port_number=port).submit_job_execution("sleeper")
        wait_for(step_started.exists, "the step did not start", log)
        with DagsterInstance.from_config(str(home)) as instance:
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
            worker = worker_pid(instance, run_id)
        assert worker is not None
    finally:
        # A crash: the webserver, daemon and code server, the run worker and its step, all at once.
        kill_group(first, signal.SIGKILL)
        step = step_started.read_text() if step_started.exists() else ""
        for pid in (worker, int(step) if step.isdigit() else None):
            if pid:  # never 0: that would signal this test's own process group
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # what the crash left

        second, _ = dagster_dev(home, defs, env, log)
        try:
            wait_for(
                lambda: instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE,
                "run monitoring did not fail the orphaned run",
                log,
            )
        finally:
            kill_group(second, signal.SIGTERM)
        messages = " ".join(entry.message for entry in instance.all_logs(run_id))
        assert f"worker process {worker} no longer exists" in messages
