"""A one-day change published on top of 1M / 4M / 8M rows of history: incremental build vs a full rebuild.

    .venv/bin/python -m bench.publish --rows 1_000_000 --rows 4_000_000 [--rows 8_000_000]

Per scale, in a fresh KANDA_HOME with one region (KE):
- history (synthetic): `--rows` sale events over 180 days generated in DuckDB straight into `sale_events` with
  bench/query.py's generator (5 % failed payments, 2 % refunds, 0.5 % reversals up to 4 days later); ingestion is
  bypassed. Then built and published once (every day), as the cached state a daily run starts from.
- a one-day change (real pipeline code from here on): a batch of `--change` new sales on the day after the history
  and one late refund, dated on an old day, of a sale from that old day, loaded through the ingestion writer
  (`StagedBatch`: contract, duplicate rule, ledger, dirty days). Then timed: the incremental build
  (`ensure_built`) and the publish of the restated days (`publish_region`: reading the days' rollup rows, the
  Iceberg commits, the publications row). The publish time is split into reading the store (restatement +
  rollup rows, measured by running the same queries just before) and the rest (Iceberg commits).
- the reference, in the same run: the same kind of change again (the next day, another late refund), built with a
  full rebuild (`--full-refresh`, every model over all history, what every publish did before) and published.

Timings are printed and written to `bench/out/publish.json` with the machine's load (`os.getloadavg`) before and
after each scale; the machine is shared, so they vary. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # `python bench/publish.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import polars as pl

from bench.query import CHANNELS, EVENTS_SQL, START

OUT = Path(__file__).resolve().parent / "out"
REGION = "KE"
DAYS = 180
CREATORS = 1_000
PRODUCTS = 3


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def history(settings, rows: int) -> float:
    """`rows` synthetic events (sales plus their refunds and reversals) in the region's store; seconds taken."""
    from kanda.regional.store import open_store
    from regions import get_region

    sales = rows * 1000 // 1025  # the generator adds 2.5 % refunds and reversals
    started = time.perf_counter()
    with open_store(settings, REGION) as con:
        con.execute(
            EVENTS_SQL,
            {
                "seed": 42,
                "creators": CREATORS,
                "products": PRODUCTS,
                "days": DAYS,
                "n": sales,
                "region": REGION,
                "currency": get_region(REGION).currency,
                "channels": list(CHANNELS),
                "start": START,
            },
        )
        # the generated creators exist in the registry, so the change's rows are not held
        con.execute("INSERT INTO creators (creator_id, region) SELECT DISTINCT creator_id, region FROM sale_events")
        con.execute("INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events")
    return time.perf_counter() - started


def change(settings, day_offset: int, sales: int, tag: str) -> dict:
    """A batch through the ingestion writer: `sales` new sales on one new day, and one late refund on an old day."""
    from kanda.regional.batch import StagedBatch
    from kanda.regional.store import open_store
    from quality.boundary import canonicalise
    from regions import get_region
    from regions.rails.base import ADAPTER_SCHEMA

    region = get_region(REGION)
    day = dt.datetime.combine(START + dt.timedelta(days=DAYS + day_offset), dt.time(9), tzinfo=dt.UTC)
    batch_id = f"{REGION}-bench-{tag}-{uuid.uuid4().hex[:6]}"
    with open_store(settings, REGION) as con:
        old_day = START + dt.timedelta(days=40 + day_offset)
        tid, creator, product, amount = con.execute(
            "SELECT transaction_id, creator_id, product_id, amount_minor FROM sale_events WHERE local_date = ?"
            " AND event_type = 'sale' AND status = 'success' AND transaction_id NOT IN"
            " (SELECT transaction_id FROM sale_events WHERE event_type <> 'sale') ORDER BY transaction_id LIMIT 1",
            [old_day],
        ).fetchall()[0]
        new = pl.DataFrame(
            {
                "source_row": range(1, sales + 1),
                "transaction_id": [f"{REGION}-{tag}-{i}" for i in range(sales)],
                "event_type": "sale",
                "status": "success",
                "creator_id": [f"{REGION}-C{1 + i % CREATORS:04d}" for i in range(sales)],
                "product_id": [f"{REGION}-P{1 + (i % CREATORS) * PRODUCTS:05d}" for i in range(sales)],
                "buyer_ref": None,
                "channel": "card",
                "amount_minor": 250_000,
                "fee_minor": 3_750,
                "currency": region.currency,
                "occurred_at": [day + dt.timedelta(seconds=7 * i) for i in range(sales)],
            },
            schema={"source_row": pl.Int64, **ADAPTER_SCHEMA},
        )
        refund = pl.DataFrame(
            {
                "source_row": [sales + 1],
                "transaction_id": [tid],
                "event_type": "refund",
                "status": "success",
                "creator_id": [creator],
                "product_id": [product],
                "buyer_ref": None,
                "channel": "card",
                "amount_minor": [-amount],
                "fee_minor": 0,
                "currency": region.currency,
                "occurred_at": [dt.datetime.combine(old_day, dt.time(12), tzinfo=dt.UTC)],
            },
            schema={"source_row": pl.Int64, **ADAPTER_SCHEMA},
        )
        frame = pl.concat([new, refund]).with_columns(raw_record=pl.struct(pl.col("transaction_id").alias("id")))
        frame = canonicalise(frame, region, source="bench", source_file=f"{batch_id}.csv", batch_id=batch_id)
        known = con.sql(f"SELECT creator_id FROM creators WHERE region = '{REGION}'").pl()["creator_id"]
        batch = StagedBatch(settings.home, region, batch_id, known)
        batch.add(frame)
        counts = batch.commit(con, kind="file", file_name=f"{batch_id}.csv", content_hash=uuid.uuid4().hex)
    return {"loaded": counts.loaded, "quarantined": counts.quarantined, "late_refund_day": old_day.isoformat()}


def store_reads(settings) -> float:
    """The store side of a publish (restated days, their rollup rows), timed on their own just before it."""
    from kanda.regional.models import days_sql, restated
    from kanda.regional.store import open_store
    from warehouse_models import published

    started = time.perf_counter()
    with open_store(settings, REGION) as con:
        dirty = [r[0] for r in con.execute("SELECT DISTINCT local_date FROM dirty_days").fetchall()]
        days = restated(con, dirty).days
        for name in published():
            con.sql(f"SELECT * FROM {name} WHERE local_date IN {days_sql(days)} ORDER BY ALL").to_arrow_table()
    return time.perf_counter() - started


def build_and_publish(settings, *, full_refresh: bool) -> dict:
    from kanda.central.publish import publish_region
    from kanda.regional.models import ensure_built
    from kanda.regional.store import open_store

    started = time.perf_counter()
    with open_store(settings, REGION) as con:
        built = ensure_built(con, full_refresh=full_refresh)
    build_s = time.perf_counter() - started
    reads_s = store_reads(settings)
    started = time.perf_counter()
    result = publish_region(settings, REGION)
    publish_s = time.perf_counter() - started
    return {
        "build_s": round(build_s, 2),
        "full_build": built.full,
        "days_rebuilt": None if built.full else built.days,
        "publish_s": round(publish_s, 2),
        "of_which_store_reads_s": round(reads_s, 2),
        "days_published": len(result.days),
        "rows_published": sum(result.rows.values()),
        "build_plus_publish_s": round(build_s + publish_s, 2),
    }


def scale(rows: int, change_sales: int, root: Path) -> dict:
    from kanda.central.publish import publish_region
    from kanda.settings import load_settings

    shutil.rmtree(root, ignore_errors=True)
    os.environ["KANDA_HOME"] = str(root / "home")
    os.environ.setdefault("KANDA_DUCKDB_MEMORY", "6GB")
    os.environ.pop("KANDA_CATALOG_URL", None)
    os.environ.pop("KANDA_WAREHOUSE", None)
    settings = load_settings(root / "home")
    settings.ensure_dirs()
    result: dict = {"rows": rows, "change_sales": change_sales, "load_before": load()}
    result["generate_s"] = round(history(settings, rows), 1)
    with duckdb.connect(str(settings.store_path(REGION)), read_only=True) as con:
        result["events"] = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
    started = time.perf_counter()
    first = publish_region(settings, REGION)  # full build + every day
    result["first_publish_s"] = round(time.perf_counter() - started, 1)
    result["first_publish_rows"] = sum(first.rows.values())
    print(f"  {result['events']:,} events; first publish {result['first_publish_s']} s", flush=True)
    result["incremental_change"] = change(settings, 0, change_sales, "inc")
    result["incremental"] = build_and_publish(settings, full_refresh=False)
    print(f"  incremental: {result['incremental']}", flush=True)
    result["full_change"] = change(settings, 1, change_sales, "full")
    result["full_rebuild"] = build_and_publish(settings, full_refresh=True)
    print(f"  full rebuild: {result['full_rebuild']}", flush=True)
    result["load_after"] = load()
    shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="Events of history (repeatable).")
    parser.add_argument("--change", type=int, default=1_000, help="New sales in the one-day change.")
    parser.add_argument("--out", type=Path, default=OUT, help="Where the stores go (deleted after) and publish.json.")
    args = parser.parse_args(argv)
    results = []
    for rows in args.rows or [1_000_000]:
        print(f"{rows:,} rows of history (load {load()})", flush=True)
        results.append(scale(rows, args.change, args.out / "publish" / f"{rows}"))
    summary = {
        "results": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "publish.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"{'rows':>12}{'incremental build+publish':>28}{'full rebuild build+publish':>30}")
    for r in results:
        inc, full = r["incremental"], r["full_rebuild"]
        print(
            f"{r['events']:>12,}{inc['build_s']:>12} + {inc['publish_s']:<6} = {inc['build_plus_publish_s']:<6}"
            f"{full['build_s']:>14} + {full['publish_s']:<6} = {full['build_plus_publish_s']:<6}"
        )
    return summary


if __name__ == "__main__":
    main()
