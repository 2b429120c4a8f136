"""Validated ingest throughput beside a raw DuckDB `read_csv` load and a dlt load of the same file.

The raw load is the physical reference for "land this file in a DuckDB store" on this machine: a ratio of
raw_seconds / kanda_seconds near 1 means validation, mapping and exactly-once bookkeeping cost little on top of
landing the bytes. dlt (`pip install -e '.[bench]'`) is the off-the-shelf loader: the file read by pyarrow as
text columns and loaded by a dlt pipeline into DuckDB, with no validation. Each load runs in a subprocess of its
own, into a fresh database, so that each peak resident memory is its own; the three alternate run by run (raw,
dlt, kanda, raw, ...) so that a busy spell on a shared machine hits all of them, and the best of N is reported
with the CPU seconds each used and the machine's load average (`os.getloadavg`) before and after.

    .venv/bin/python -m bench.ingest --rows 2000000 --region EG --runs 3

The generated file is cached under `bench/out/data/<key>/` (key: region, rows, start, days, seed) and reused. The
result is printed as a small table and written to `bench/out/ingest_<region>_<rows>.json`. Timings are reported,
never asserted.

With `--spec FILE` (a rail spec, e.g. `regions/rails/stripe/spec.yaml` for EG), the same file is also
ingested through the spec engine instead of the region's built-in adapter, and both readers are timed alone
(file -> adapter chunks), so a spec-driven rail's figures stand beside the built-in one's on identical input:

    .venv/bin/python -m bench.ingest --rows 2000000 --region EG --spec regions/rails/stripe/spec.yaml

With `--history N`, every kanda run ingests into a store that already holds the N-row file of the same arguments
(ingested once, before the runs, and copied for each), and the measured file's transactions are new ones (their
numbers start after the history's): a daily file onto a store with history, where checking each event against
what is stored costs most. The raw and dlt loads have no history to check and load into empty databases as before:

    .venv/bin/python -m bench.ingest --rows 2000000 --region EG --history 8000000 --only kanda

`--regions-dir DIR` adds the region files in DIR (as `KANDA_REGIONS_DIR` does), so a region defined only by YAML
can be benchmarked too (`--region RW --regions-dir ...`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ingest.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from kanda.regional.ingest import ingest_file, ingest_files, sync_registry
from kanda.regional.store import open_store
from kanda.settings import load_settings
from regions import get_region
from regions.rails import ReadContext, get_adapter, register
from regions.rails.base import DEFAULT_BATCH_ROWS
from regions.spec import load_spec
from regions.spec.engine import SpecAdapter
from regions.synthetic.generate import generate

OUT = Path(__file__).resolve().parent / "out"
CSV_REGIONS = ("EG", "TZ", "KE")


@dataclass
class Timing:
    best_seconds: float
    runs: list[float]
    rows_per_second: float


def prepare(region: str, rows: int, start: dt.date, days: int, seed: int, after: int = 0) -> tuple[Path, Path]:
    """The region's native file and registry folder, generated once per argument set and reused afterwards.

    `after` numbers the file's transactions from after that many (the new sales that follow a history file).
    """
    key = f"{region.lower()}_{rows}_{start:%Y%m%d}_{days}d_seed{seed}" + (f"_after{after}" if after else "")
    root = OUT / "data" / key
    done = root / "DONE"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        files = generate(
            landing_dir=root / "landing",
            registry_dir=root / "registry",
            regions=[region],
            start=start,
            days=days,
            rows_per_region=rows,
            seed=seed,
            txn_offset=after,
        )
        done.write_text(str(files[0].path))
    return Path(done.read_text()), root / "registry"


def history_home(path: Path, registry: Path, region: str, home: Path) -> dict:
    """A KANDA_HOME whose region store holds `path` (the history), to be copied for each measured run."""
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(registry, home / "registry")
    report = ingest_files(load_settings(home), region, [path])
    result = report.files[0]
    if result.status != "loaded":
        raise RuntimeError(f"kanda did not load the history {path}: {result.status} {result.reason}")
    return result.as_json()


def sniff_delimiter(path: Path) -> str:
    """The header's delimiter, so that the raw load parses the same fields kanda does (Stripe EG uses ';')."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return ";" if header.count(";") > header.count(",") else ","


def raw_load(path: Path, workdir: Path) -> float:
    """Seconds for DuckDB to land the whole file, as text, in a fresh file database (connect and close included)."""
    db = workdir / "raw.duckdb"
    db.unlink(missing_ok=True)
    delim = sniff_delimiter(path)
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE raw AS SELECT * FROM read_csv(?, delim = ?, all_varchar = true, null_padding = true,"
            " ignore_errors = true)",
            [str(path), delim],
        ).fetchall()
        rows = con.execute("SELECT count(*) FROM raw").fetchall()[0][0]
    elapsed = time.perf_counter() - started
    if rows == 0:
        raise RuntimeError(f"raw load read no rows from {path}")
    return elapsed


def kanda_load(
    path: Path, registry: Path, region: str, workdir: Path, history: Path | None = None
) -> tuple[float, dict]:
    """Seconds for `ingest_files` into a fresh KANDA_HOME holding only the registry (or a copy of `history`, a home
    whose store already holds events), and the file's counts."""
    home = workdir / "kanda_home"
    shutil.rmtree(home, ignore_errors=True)
    if history is not None:
        shutil.copytree(history, home)
    else:
        shutil.copytree(registry, home / "registry")
    settings = load_settings(home)
    started = time.perf_counter()
    report = ingest_files(settings, region, [path])
    elapsed = time.perf_counter() - started
    result = report.files[0]
    if result.status != "loaded":
        raise RuntimeError(f"kanda did not load {path}: {result.status} {result.reason}")
    return elapsed, result.as_json()


def spec_load(path: Path, registry: Path, region: str, workdir: Path, spec_path: Path) -> tuple[float, dict]:
    """`kanda_load`, but the region's file is read by the spec engine running `spec_path` (same store path after)."""
    home = workdir / "kanda_home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(registry, home / "registry")
    settings = load_settings(home)
    name = f"bench_spec_{region.lower()}"
    register(SpecAdapter(load_spec(spec_path), name))
    config = dataclasses.replace(get_region(region), source_format=name)
    started = time.perf_counter()
    with open_store(settings, config.code) as con:
        sync_registry(con, settings, config)
        result = ingest_file(con, settings, config, path)
    elapsed = time.perf_counter() - started
    if result.status != "loaded":
        raise RuntimeError(f"the spec engine did not load {path}: {result.status} {result.reason}")
    return elapsed, result.as_json()


def reader_seconds(path: Path, region: str, spec_path: Path | None) -> float:
    """Seconds to read the file into adapter chunks only (no contract, no store): the part a spec replaces."""
    config = get_region(region)
    adapter = SpecAdapter(load_spec(spec_path), "bench_spec") if spec_path else get_adapter(config.source_format)
    ctx = ReadContext(config, "bench-salt", int(os.environ.get("KANDA_BATCH_ROWS", DEFAULT_BATCH_ROWS)))
    started = time.perf_counter()
    rows = sum(chunk.frame.height for chunk in adapter.read(path, ctx))
    elapsed = time.perf_counter() - started
    if rows == 0:
        raise RuntimeError(f"no rows read from {path}")
    return elapsed


def dlt_load(path: Path, workdir: Path) -> float:
    """Seconds for a dlt pipeline to land the file in a fresh DuckDB file: pyarrow reads it as text, no validation.

    Lines with another field count than the widest of the first lines (title lines, disclaimers) are skipped, as
    the raw load's `ignore_errors` skips them.
    """
    import dlt  # the optional `bench` extra
    import pyarrow as pa
    import pyarrow.csv as pacsv

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    delim = sniff_delimiter(path)
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        head = [handle.readline() for _ in range(30)]
    lines = [next(csv.reader([line], delimiter=delim), []) for line in head]
    width = max(len(fields) for fields in lines)
    header = next(i for i, fields in enumerate(lines) if len(fields) == width)
    names = [n.strip() or f"column_{i}" for i, n in enumerate(lines[header])]

    @dlt.resource(name="raw", write_disposition="replace")
    def rows():  # type: ignore[no-untyped-def]
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=header + 1, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delim, invalid_row_handler=lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
        yield from reader

    db = workdir / "dlt.duckdb"
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="kanda_bench",
        pipelines_dir=str(workdir / "dlt_pipelines"),
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="bench",
    )
    pipeline.run(rows())
    elapsed = time.perf_counter() - started
    with duckdb.connect(str(db), read_only=True) as con:
        if con.execute("SELECT count(*) FROM bench.raw").fetchall()[0][0] == 0:
            raise RuntimeError(f"dlt loaded no rows from {path}")
    return elapsed


SIDES = ("raw", "dlt", "kanda")


def child(side: str, path: Path, registry: Path, region: str, workdir: Path, history: Path | None = None) -> dict:
    """One load in this (fresh) process: seconds, CPU seconds, peak resident memory and kanda's counts."""
    counts: dict = {}
    workdir.mkdir(parents=True, exist_ok=True)
    if side == "raw":
        seconds = raw_load(path, workdir)
    elif side == "dlt":
        seconds = dlt_load(path, workdir)
    else:
        seconds, counts = kanda_load(path, registry, region, workdir, history)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": peak_rss_mb(),
        "counts": counts,
    }


def in_subprocess(
    side: str, path: Path, registry: Path, region: str, workdir: Path, history: Path | None = None
) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "bench.ingest", "--child", side, "--child-args", str(path), str(registry), region]
    argv.append(str(workdir))
    if history is not None and side == "kanda":
        argv += ["--child-history", str(history)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} load failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(runs: list[float], rows: int) -> Timing:
    best = min(runs)
    return Timing(round(best, 3), [round(r, 3) for r in runs], round(rows / best))


def peak_rss_mb() -> float:
    """Peak resident set of this process image so far (VmHWM, KiB): `ru_maxrss` would start from the peak of the
    process that started it (the bench's parent, which generated the file)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="EG", type=str.upper, help=f"A CSV region ({', '.join(CSV_REGIONS)}).")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=2, help="Runs of each side; the best is reported.")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=SIDES, action="append", help="Measure only these sides (repeatable).")
    parser.add_argument("--spec", type=Path, help="A rail spec: also ingest (and read) the file with the spec engine.")
    parser.add_argument("--regions-dir", type=Path, help="Extra region files (as KANDA_REGIONS_DIR).")
    parser.add_argument(
        "--history", type=int, default=0, help="kanda ingests onto a store already holding this many rows."
    )
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--child-args", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-history", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.regions_dir:
        os.environ["KANDA_REGIONS_DIR"] = str(args.regions_dir.resolve())
    if args.child:
        path, registry, region, workdir = args.child_args
        result = child(args.child, Path(path), Path(registry), region, Path(workdir), args.child_history)
        print(json.dumps(result))
        return result

    path, registry = prepare(args.region, args.rows, args.start, args.days, args.seed, after=args.history)
    size_mb = path.stat().st_size / 1e6
    sides = [s for s in SIDES if not args.only or s in args.only]
    load_before = os.getloadavg()
    print(f"file: {path} ({size_mb:.0f} MB, {args.rows:,} rows, region {args.region})", flush=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} on {os.cpu_count()} CPUs", flush=True)
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    spec_counts: dict = {}
    spec_runs: list[float] = []
    reader_runs: dict[str, list[float]] = {"built-in": [], "spec": []}
    history_counts: dict = {}
    with tempfile.TemporaryDirectory(prefix="kanda-bench-") as tmp:
        workdir = Path(tmp)
        history = None
        if args.history and "kanda" in sides:
            old, old_registry = prepare(args.region, args.history, args.start, args.days, args.seed)
            history = workdir / "history_home"
            history_counts = history_home(old, old_registry, args.region, history)
            print(f"history: {old.name}, {history_counts['loaded']:,} events stored before each kanda run", flush=True)
        for i in range(args.runs):
            for side in sides:
                done = in_subprocess(side, path, registry, args.region, workdir / side, history)
                runs[side].append(done)
                print(
                    f"  run {i + 1}: {side:6}{done['seconds']:7.2f} s  cpu {done['cpu_seconds']:6.1f} s"
                    f"  peak {done['peak_mb']:5.0f} MB  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        if args.spec:
            for i in range(args.runs):
                seconds, spec_counts = spec_load(path, registry, args.region, workdir, args.spec)
                spec_runs.append(seconds)
                print(f"  run {i + 1}: spec  {seconds:.2f} s", flush=True)
            for i in range(args.runs):
                reader_runs["built-in"].append(reader_seconds(path, args.region, None))
                reader_runs["spec"].append(reader_seconds(path, args.region, args.spec))
                print(
                    f"  run {i + 1}: read only: built-in {reader_runs['built-in'][-1]:.2f} s,"
                    f" spec {reader_runs['spec'][-1]:.2f} s",
                    flush=True,
                )
    load_after = os.getloadavg()
    timings = {side: best_of([r["seconds"] for r in done], args.rows) for side, done in runs.items() if done}
    peaks = {side: round(max(r["peak_mb"] for r in done)) for side, done in runs.items() if done}
    cpu = {side: round(min(r["cpu_seconds"] for r in done), 1) for side, done in runs.items() if done}
    counts = runs["kanda"][-1]["counts"] if runs.get("kanda") else {}
    if spec_counts and spec_counts != counts:
        print(f"  note: counts differ: built-in {counts} vs spec {spec_counts}", flush=True)

    def ratio(side: str) -> float | None:
        if side in timings and "kanda" in timings:
            return round(timings[side].best_seconds / timings["kanda"].best_seconds, 3)
        return None

    result = {
        "region": args.region,
        "rows": args.rows,
        "file": str(path),
        "file_mb": round(size_mb, 1),
        "batch_rows": int(os.environ.get("KANDA_BATCH_ROWS", DEFAULT_BATCH_ROWS)),  # as kanda.settings reads it
        **{side: asdict(timing) for side, timing in timings.items()},
        "ratio_raw_over_kanda": ratio("raw"),
        "ratio_dlt_over_kanda": ratio("dlt"),
        "peak_rss_mb": peaks,
        "cpu_seconds_best": cpu,
        "kanda_counts": counts,
        "history_rows": args.history,
        "history_counts": history_counts or None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "spec": str(args.spec) if args.spec else None,
        "spec_ingest": asdict(best_of(spec_runs, args.rows)) if spec_runs else None,
        "spec_counts": spec_counts or None,
        "read_only": {k: asdict(best_of(v, args.rows)) for k, v in reader_runs.items() if v} or None,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(f"{'':8}{'best s':>9}{'rows/s':>12}{'cpu s':>8}{'peak MB':>9}  runs")
    for side, timing in timings.items():
        print(
            f"{side:8}{timing.best_seconds:>9.2f}{timing.rows_per_second:>12,}{cpu[side]:>8}{peaks[side]:>9}"
            f"  {timing.runs}"
        )
    if spec_runs:
        spec = best_of(spec_runs, args.rows)
        print(f"{'spec':8}{spec.best_seconds:>9.2f}{spec.rows_per_second:>12,}  {spec.runs}  (same file, spec engine)")
        for name, reads in reader_runs.items():
            timing = best_of(reads, args.rows)
            print(f"{'read ' + name:16}{timing.best_seconds:>9.2f} s {timing.rows_per_second:>12,} rows/s")
    print(
        f"raw/kanda: {ratio('raw')} (goal >= 0.7)   dlt/kanda: {ratio('dlt')} (goal > 1)"
        f"   load average after: {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"ingest_{args.region.lower()}_{args.rows}" + (f"_onto{args.history}" if args.history else "")
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
