"""Freshness under `dagster dev`: a file lands in a region's folder -> its rows are visible through `kanda query`.

    .venv/bin/python -m bench.freshness [--trials 5] [--rows 2000] [--region KE]

Starts a real `dagster dev` (webserver, daemon, code server) on a private KANDA_HOME and a free loopback port,
with the repo's `dagster.yaml`. Each trial generates one native file for the region (a new seed, so new content),
renames it into the landing folder (the producer contract: write elsewhere, rename in) and polls the central
layer through `kanda.central.query.run_query`, the function `kanda query` runs, until the region's order count
includes the file. A warm-up trial runs first and is not counted (the first run also creates the stores).

Then it reads Dagster's own records of each counted run from the instance: when the sensor asked for the run
(run created), when the run started (launch: a new process that loads the code location), and each step's
duration, so what remains of the time is attributed step by step. The Great Expectations suites run in their own
job after the publish and are reported separately: they are not on this path.

Prints a table and writes `bench/out/freshness.json`. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REGISTRY_SEED = 42


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def orders(settings, region: str) -> int:
    from kanda.central.query import NothingPublished, run_query

    try:
        table = run_query(
            settings, f"SELECT coalesce(sum(orders), 0) AS n FROM rollups.region_daily WHERE region = '{region}'"
        )
    except NothingPublished:
        return 0
    return int(table.to_pylist()[0]["n"])


def land(settings, region: str, rows: int, trial: int, staging: Path) -> Path:
    """One file of new sales for the region (new transaction numbers), written aside and renamed into landing."""
    from regions import get_region
    from regions.synthetic.core import DirtMix, make_registry
    from regions.synthetic.generate import write_region_file

    registry = make_registry(REGISTRY_SEED)
    registry.write(settings.registry_dir)
    file = write_region_file(
        get_region(region),
        registry,
        staging,
        start=dt.date.today() - dt.timedelta(days=1),
        days=1,
        rows=rows,
        seed=1000 + trial,
        dirt=DirtMix(),
        txn_offset=trial * 10 * rows,
    )
    target = settings.landing(region) / f"trial-{trial}{file.path.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(file.path, target)
    return target


def run_timings(home: Path) -> list[dict]:
    """Per region_pipeline run: created, started, ended, and step durations, from Dagster's event log."""
    from dagster import DagsterEventType, EventRecordsFilter, RunsFilter

    from pipelines.instance import kanda_instance

    instance = kanda_instance(home)
    runs = []
    for record in instance.get_run_records(filters=RunsFilter(job_name="region_pipeline")):
        steps: dict[str, float] = {}
        starts: dict[str, float] = {}
        for event in instance.all_logs(record.dagster_run.run_id):
            kind = event.dagster_event.event_type if event.dagster_event else None
            if kind == DagsterEventType.STEP_START:
                starts[event.step_key] = event.timestamp
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and event.step_key in starts:
                steps[event.step_key] = round(event.timestamp - starts[event.step_key], 2)
        runs.append(
            {
                "run_id": record.dagster_run.run_id,
                "created": record.create_timestamp.timestamp(),
                "started": record.start_time,
                "ended": record.end_time,
                "steps": steps,
            }
        )
    del EventRecordsFilter
    return sorted(runs, key=lambda r: r["created"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--region", default="KE")
    parser.add_argument("--timeout", type=float, default=300.0, help="per trial, seconds")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="kanda-freshness-"))
    env = {**os.environ, "KANDA_HOME": str(home), "DAGSTER_HOME": str(ROOT), "PYTHONPATH": str(ROOT)}
    os.environ["KANDA_HOME"] = str(home)
    from kanda.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    staging = home / "staging-bench"
    port = free_port()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    log = open(home / "dagster-dev.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [dagster, "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results = []
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", timeout=180)
        for trial in range(args.trials + 1):
            before = orders(settings, args.region)
            landed_at = time.time()
            land(settings, args.region, args.rows, trial, staging)
            deadline = time.monotonic() + args.timeout
            while orders(settings, args.region) == before:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"trial {trial}: rows not visible after {args.timeout:.0f} s; see {log.name}")
                time.sleep(0.25)
            visible_at = time.time()
            results.append({"trial": trial, "warmup": trial == 0, "landed": landed_at, "visible": visible_at})
            print(f"trial {trial}{' (warm-up)' if trial == 0 else ''}: visible after {visible_at - landed_at:.1f} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()

    runs = run_timings(home)
    for result in results:
        run = next((r for r in runs if r["created"] >= result["landed"] - 1), None)
        if run:
            runs.remove(run)
            result["sensor_wait"] = round(run["created"] - result["landed"], 2)
            result["launch"] = round((run["started"] or run["created"]) - run["created"], 2)
            result["steps"] = run["steps"]
            result["run_total"] = round((run["ended"] or 0) - (run["started"] or 0), 2)
        result["freshness"] = round(result["visible"] - result["landed"], 2)
    counted = [r["freshness"] for r in results if not r["warmup"]]
    summary = {
        "trials": args.trials,
        "rows": args.rows,
        "region": args.region,
        "p50_s": round(statistics.median(counted), 2),
        "max_s": round(max(counted), 2),
        "load_average": os.getloadavg(),
        "results": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "freshness.json").write_text(json.dumps(summary, indent=2))
    print(f"\nfreshness over {args.trials} trials: p50 {summary['p50_s']} s, max {summary['max_s']} s")
    print("trial  fresh  sensor  launch  steps")
    for r in results:
        steps = ", ".join(f"{k} {v}" for k, v in r.get("steps", {}).items())
        print(
            f"{r['trial']:>5}  {r['freshness']:>5}  {r.get('sensor_wait', '-'):>6}  {r.get('launch', '-'):>6}  {steps}"
        )
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
