"""Building one publication's reader file: rollups streamed as from object storage, beside Parquet read in place.

    .venv/bin/python -m bench.reader_build [--creators 5000] [--memory 512MB] [--runs 2] [--before CHECKOUT]

The installation is `bench/query.py`'s synthetic one (10 M sales over 180 days in every region, `--creators` per
region: 1,000 gives about 3.8 M rollup rows, 5,000 about 11.1 M), built once and cached. Each build runs in a
process of its own (so its peak resident memory is its own) against a fresh readers folder:
- "object storage": every rollup read through pyiceberg batch by batch, as on a host whose warehouse is a bucket
  (`published_files` answers None there, as it does for `s3://` files);
- "local Parquet" (the reference, in the same run): the files read in place, the embedded default;
- with `--before CHECKOUT`, that checkout's object-storage build too (e.g. the code before a change).
The sides alternate run by run; the best wall time, its CPU seconds and the highest peak are reported with the
load average. Timings and memory are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python bench/reader_build.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, shutil, sys, time
import kanda, kanda.central.catalog as catalog
from kanda.central import query
from kanda.central.reader_files import readers_dir
from kanda.settings import load_settings
if sys.argv[1] == "object storage":
    catalog.published_files = lambda *args, **kwargs: None
settings = load_settings()
resolved = query.resolve(settings)
shutil.rmtree(readers_dir(settings), ignore_errors=True)
started = time.perf_counter()
con = query.reader_connection(settings, resolved)
rows = sum(con.execute(f"SELECT count(*) FROM rollups.{t}").fetchone()[0] for t in ("creator_daily", "product_daily"))
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                  "rows": rows, "code": kanda.__file__}))
"""


def child(side: str, checkout: Path, env: dict[str, str]) -> dict:
    env = {**env, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "object storage" if side != "local Parquet" else side],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["code"]).resolve().is_relative_to(checkout.resolve()):
        raise SystemExit(f"the child ran {result['code']}, not {checkout}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=5_000, help="Creators per region (rollup size).")
    parser.add_argument("--memory", default="512MB", help="KANDA_DUCKDB_MEMORY for the builds.")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--before", type=Path, help="Another checkout whose object-storage build is measured too.")
    args = parser.parse_args(argv)

    from bench.query import OUT, Shape, build

    shape = Shape(sales=10_000_000, creators=args.creators)
    settings = build(shape, OUT / "query" / shape.key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_")}
    env |= {"KANDA_HOME": str(settings.home), "KANDA_DUCKDB_MEMORY": args.memory}
    sides = {"object storage": ROOT, "local Parquet": ROOT}
    if args.before is not None:
        sides[f"object storage, {args.before}"] = args.before.resolve()
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for _ in range(args.runs):
        for side, checkout in sides.items():
            runs[side].append(child(side, checkout, env))
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = runs["local Parquet"][0]["rows"]
    print(f"{shape.key}: {rows:,} rows in creator_daily + product_daily; memory limit {args.memory}")
    print(f"load average before: {load_before}; after: {load_after}")
    result: dict = {"shape": shape.key, "memory_limit": args.memory, "rollup_rows": rows, "sides": {}}
    for side, results in runs.items():
        best = min(results, key=lambda r: r["wall"])
        peak = max(r["peak_mb"] for r in results)
        row = {"wall_s": round(best["wall"], 2), "cpu_s": round(best["cpu"], 1), "peak_mb": round(peak)}
        result["sides"][side] = row
        print(f"  {side:<40} best {best['wall']:5.1f} s  cpu {best['cpu']:5.1f} s  peak {peak:6.0f} MB")
    ours, reference = result["sides"]["object storage"], result["sides"]["local Parquet"]
    print(f"object storage / local Parquet: peak {ours['peak_mb'] / reference['peak_mb']:.2f}x")
    (OUT / f"reader_build_{shape.key}.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
