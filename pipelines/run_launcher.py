"""Dagster's default run launcher, able to tell run monitoring that a run's worker is gone.

A region's runs queue one at a time (`kanda/region` in `dagster.yaml`), and the landing and review sensors ask for
nothing while a run of the region is unfinished. Dagster's default launcher cannot say whether a run's worker still
lives, so a run whose `dagster dev` (or code server) was killed stayed STARTED for good and the region's ingestion
stopped with it. This launcher answers run monitoring's health check from what can be known for sure:

- the code server that started the run answers which runs it runs (`dagster api grpc`): the run is alive exactly
  when that server still runs it (a worker that died under a live server is failed by the server itself);
- the server cannot say (gone, or the proxy that `dagster dev` and `dagster code-server start` run, which does not
  implement that call) and it is on this host: the run is alive exactly when its worker process (the pid Dagster
  recorded when the run started) still exists;
- anything else (a code server on another host, no recorded pid): the run is taken as running, and only the
  instance's `max_runtime_seconds` ends it. So on a multi-host deployment, where region hosts run
  `dagster code-server start`, an orphaned run of a region host ends at that backstop.
"""

from __future__ import annotations

import json
import os
import socket

from dagster import DagsterEventType, DagsterInstance
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import GetCurrentRunsResult
from dagster._serdes import deserialize_value

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class KandaRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` plus a worker health check, so that `run_monitoring` fails orphaned runs."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        info = json.loads(run.tags.get(GRPC_INFO_TAG) or "{}")
        if not info:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched through a code server: cannot tell")
        client = DagsterGrpcClient(
            port=info.get("port"),
            socket=info.get("socket"),
            host=info.get("host") or "localhost",
            use_ssl=bool(info.get("use_ssl", False)),
        )
        try:
            current = deserialize_value(client.get_current_runs(), GetCurrentRunsResult).current_runs
        except DagsterUserCodeUnreachableError:
            current = None
        if current is not None:
            if run.run_id in current:
                return CheckRunHealthResult(WorkerStatus.RUNNING)
            return CheckRunHealthResult(
                WorkerStatus.NOT_FOUND, "the code server that started this run no longer runs it"
            )
        if not _on_this_host(info):
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                "its code server cannot say which runs it runs, and is on another host: cannot tell",
            )
        pid = worker_pid(self._instance, run.run_id)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid recorded: cannot tell")
        if _process_exists(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker process {pid} still runs")
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND,
            f"its code server cannot say, and its worker process {pid} no longer exists on this host",
        )


def worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event Dagster writes when the run's process starts."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value)
    return None


def _on_this_host(info: dict) -> bool:
    if info.get("socket"):
        return True
    host = (info.get("host") or "localhost").lower()
    return host in _LOOPBACK or host in {socket.gethostname().lower(), socket.getfqdn().lower()}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
