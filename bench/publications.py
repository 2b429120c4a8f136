"""Many publishes one after another: does a publish (and a one-shot query) slow down as publications pile up?

    .venv/bin/python -m bench.publications [--publishes 200] [--every 25]

In a fresh KANDA_HOME, one small region (KE, 100 rows x 2 days, ingested once) is published `--publishes` times
(every day each time, `publish_region(all_days=True)`), twice over, alternating run by run:

- **kept**: every publication kept (`KANDA_KEEP_PUBLICATIONS_HOURS` far above the run's length), as every publish
  was before `kanda.central.retention`: the reference;
- **let go**: publications kept for 1 second, so that once 16 are past it the publish that notices lets go of them.

Every `--every` publishes it prints each side's median publish time over the last `--every`, a one-shot
`run_query` against the newest publication, the size of the largest table metadata file, and the ratio of the
median to the side's own first `--every` publishes (1.0: no slower than at the start). Written to
`bench/out/publications.json` with the load average. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

if __package__ in (None, ""):  # `python bench/publications.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(__file__).resolve().parent / "out"
SIDES = {"kept": str(24 * 365), "let go": str(1 / 3600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=200)
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()

    from kanda.central.publish import publish_region
    from kanda.central.query import run_query
    from kanda.regional.ingest import ingest_landing
    from kanda.settings import load_settings
    from tests.support.files import make_files

    homes = {}
    for side, hours in SIDES.items():
        home = Path(tempfile.mkdtemp(prefix="kanda-bench-publications-"))
        with _env(KANDA_HOME=str(home), KANDA_KEEP_PUBLICATIONS_HOURS=hours):
            settings = load_settings()
            make_files(settings, regions=["KE"], rows=100, days=2)
            ingest_landing(settings, "KE")
        homes[side] = home

    times: dict[str, list[float]] = {side: [] for side in SIDES}
    report = {"publishes": args.publishes, "load_before": os.getloadavg(), "checkpoints": []}
    for n in range(1, args.publishes + 1):
        for side, hours in SIDES.items():
            with _env(KANDA_HOME=str(homes[side]), KANDA_KEEP_PUBLICATIONS_HOURS=hours):
                settings = load_settings()
                started = time.perf_counter()
                publish_region(settings, "KE", all_days=True)
                times[side].append(time.perf_counter() - started)
        if n % args.every == 0:
            point = {"publishes": n}
            for side, hours in SIDES.items():
                with _env(KANDA_HOME=str(homes[side]), KANDA_KEEP_PUBLICATIONS_HOURS=hours):
                    started = time.perf_counter()
                    run_query(load_settings(), "select count(*) from rollups.region_daily")
                    query = time.perf_counter() - started
                recent = statistics.median(times[side][-args.every :])
                first = statistics.median(times[side][: args.every])
                metadata = max(p.stat().st_size for p in (homes[side] / "warehouse").rglob("*.metadata.json"))
                point[side] = {"publish_s": recent, "vs_first": recent / first, "query_s": query, "metadata": metadata}
            report["checkpoints"].append(point)
            _write(report)  # at every checkpoint: a run stopped early keeps what it measured
            print(
                f"{n:5d} publishes: "
                + "; ".join(
                    f"{side}: publish {point[side]['publish_s']:.2f} s ({point[side]['vs_first']:.1f}x its first),"
                    f" query {point[side]['query_s']:.2f} s, metadata {point[side]['metadata'] / 1e3:.0f} kB"
                    for side in SIDES
                ),
                flush=True,
            )
    report["load_after"] = os.getloadavg()
    _write(report)


def _write(report: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / "publications.json").write_text(json.dumps(report, indent=2))


def _env(**values: str):
    """These environment variables while the block runs (settings are read from the environment)."""
    return patch.dict(os.environ, values)


if __name__ == "__main__":
    main()
