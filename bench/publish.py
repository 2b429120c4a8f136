"""A one-day change published on top of 1M / 4M / 8M rows of history: incremental build vs a full rebuild.

    .venv/bin/python -m bench.publish --rows 1_000_000 --rows 4_000_000 [--rows 8_000_000] [--repeat 2] [--shuffled]
                                      [--days 180]

Per scale, in a fresh KANDA_HOME with one region (KE):
- history (synthetic): `--rows` sale events over `--days` days (180) generated in DuckDB straight into
  `sale_events` with bench/query.py's generator (5 % failed payments, 2 % refunds, 0.5 % reversals up to 4 days
  later), with one ledger row for them as a load would write; ingestion is bypassed. The rows are stored in day
  order, as files that arrive day by day leave them; `--shuffled` stores them in random day order instead, where
  no day filter can skip a row group: the worst case. Then built and published once (every day), as the cached
  state a daily run starts from.
- a one-day change (real pipeline code from here on): a batch of `--change` new sales on the day after the history
  and one late refund, dated on an old day, of a sale from that old day, loaded through the ingestion writer
  (`StagedBatch`: contract, duplicate rule, ledger, dirty days). Then timed: the incremental build
  (`ensure_built`) and the publish of the changed and restated days (`publish_region`: reading the days' rollup
  rows, the Iceberg commits, the publications row). The publish time is split into reading the store (the days
  and their rollup rows, measured by running the same queries just before) and the rest (Iceberg commits).
- the reference, in the same run: the same kind of change again (the next day, another late refund), built with a
  full rebuild (`--full-refresh`, every model over all history, what every publish did before) and published.
  The two alternate `--repeat` times (incremental, full, incremental, full, ...), each on a new day, so that a
  busy spell on the shared machine hits both.

Wall seconds and CPU seconds (`time.process_time`: every thread of this process) are printed and written to
`bench/out/publish.json` with the machine's load (`os.getloadavg`) before and after each scale and each
measurement. Nothing is asserted.
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


#: The generator's rows in the order day-by-day files would leave them: by local day (its 18th column), then time.
ORDERED_EVENTS_SQL = EVENTS_SQL.rstrip() + "\nORDER BY 18, 17\n"


def first_day(days: int) -> dt.date:
    """The history's first day: bench/query.py's START, or earlier when a history of `days` days and the changes
    after it (one day each, at most 30) would reach today; the contract quarantines events dated in the future."""
    return min(START, dt.date.today() - dt.timedelta(days=days + 31))


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def history(settings, rows: int, *, days: int = DAYS, shuffled: bool = False) -> float:
    """`rows` synthetic events (sales plus their refunds and reversals) over `days` days in the region's store;
    seconds taken."""
    from kanda.regional import ledger
    from kanda.regional.store import open_store, transaction
    from regions import get_region

    sales = rows * 1000 // 1025  # the generator adds 2.5 % refunds and reversals
    started = time.perf_counter()
    with open_store(settings, REGION) as con, transaction(con):
        con.execute(
            EVENTS_SQL if shuffled else ORDERED_EVENTS_SQL,
            {
                "seed": 42,
                "creators": CREATORS,
                "products": PRODUCTS,
                "days": days,
                "n": sales,
                "region": REGION,
                "currency": get_region(REGION).currency,
                "channels": list(CHANNELS),
                "start": first_day(days),
            },
        )
        # the ledger row a load of these events would have written (the build restates what came after it)
        events = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
        now = dt.datetime.now(dt.UTC)
        counts = ledger.BatchCounts(rows_read=events, rows_in=events, loaded=events)
        ledger.append(con, ledger.LedgerEntry("bench", REGION, "file", "synthetic", None, counts, now, now))
        # the generated creators exist in the registry, so the change's rows are not held
        con.execute("INSERT INTO creators (creator_id, region) SELECT DISTINCT creator_id, region FROM sale_events")
        con.execute("INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events")
    return time.perf_counter() - started


def change(settings, day_offset: int, sales: int, tag: str, *, days: int = DAYS) -> dict:
    """A batch through the ingestion writer: `sales` new sales on one new day, and one late refund on an old day."""
    from kanda.regional.batch import StagedBatch
    from kanda.regional.store import open_store
    from quality.boundary import canonicalise
    from regions import get_region
    from regions.rails.base import ADAPTER_SCHEMA

    region = get_region(REGION)
    day = dt.datetime.combine(first_day(days) + dt.timedelta(days=days + day_offset), dt.time(9), tzinfo=dt.UTC)
    batch_id = f"{REGION}-bench-{tag}-{uuid.uuid4().hex[:6]}"
    with open_store(settings, REGION) as con:
        old_day = first_day(days) + dt.timedelta(days=40 + day_offset)
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
    """The store side of a publish (the changed days, their rollup rows), timed on their own just before it."""
    from kanda.regional.days import in_days
    from kanda.regional.store import open_store
    from warehouse_models import published

    started = time.perf_counter()
    with open_store(settings, REGION) as con:
        days = [r[0] for r in con.execute("SELECT DISTINCT local_date FROM dirty_days").fetchall()]
        for name in published():
            con.sql(f"SELECT * FROM {name} WHERE {in_days('local_date', days)} ORDER BY ALL").to_arrow_table()
    return time.perf_counter() - started


def build_and_publish(settings, *, full_refresh: bool) -> dict:
    from kanda.central.publish import publish_region
    from kanda.regional.models import ensure_built
    from kanda.regional.store import open_store

    load_before = load()
    started, cpu = time.perf_counter(), time.process_time()
    with open_store(settings, REGION) as con:
        built = ensure_built(con, full_refresh=full_refresh)
    build_s, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    reads_s = store_reads(settings)
    started, cpu = time.perf_counter(), time.process_time()
    result = publish_region(settings, REGION)
    publish_s, publish_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "build_s": round(build_s, 2),
        "build_cpu_s": round(build_cpu, 2),
        "full_build": built.full,
        "days_rebuilt": None if built.full else built.days,
        "publish_s": round(publish_s, 2),
        "publish_cpu_s": round(publish_cpu, 2),
        "of_which_store_reads_s": round(reads_s, 2),
        "days_published": len(result.days),
        "rows_published": sum(result.rows.values()),
        "build_plus_publish_s": round(build_s + publish_s, 2),
        "build_plus_publish_cpu_s": round(build_cpu + publish_cpu, 2),
        "load_before": load_before,
        "load_after": load(),
    }


def scale(rows: int, change_sales: int, root: Path, *, days: int, repeat: int, shuffled: bool) -> dict:
    from kanda.central.publish import publish_region
    from kanda.settings import load_settings

    shutil.rmtree(root, ignore_errors=True)
    os.environ["KANDA_HOME"] = str(root / "home")
    os.environ.setdefault("KANDA_DUCKDB_MEMORY", "6GB")
    os.environ.pop("KANDA_CATALOG_URL", None)
    os.environ.pop("KANDA_WAREHOUSE", None)
    settings = load_settings(root / "home")
    settings.ensure_dirs()
    result: dict = {
        "rows": rows,
        "days": days,
        "change_sales": change_sales,
        "shuffled": shuffled,
        "load_before": load(),
    }
    result["generate_s"] = round(history(settings, rows, days=days, shuffled=shuffled), 1)
    with duckdb.connect(str(settings.store_path(REGION)), read_only=True) as con:
        result["events"] = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
    started = time.perf_counter()
    first = publish_region(settings, REGION)  # full build + every day
    result["first_publish_s"] = round(time.perf_counter() - started, 1)
    result["first_publish_rows"] = sum(first.rows.values())
    print(f"  {result['events']:,} events; first publish {result['first_publish_s']} s", flush=True)
    result["incremental"], result["full_rebuild"] = [], []
    for i in range(repeat):  # alternated, each change on a day of its own
        for kind, full in (("incremental", False), ("full_rebuild", True)):
            day = 2 * i + full
            measured = {"change": change(settings, day, change_sales, f"{kind[:4]}{i}", days=days)}
            if measured["change"]["quarantined"]:
                print(f"  WARNING: the change was not all loaded, the figures are not of a one-day change: {measured}")
            measured.update(build_and_publish(settings, full_refresh=full))
            result[kind].append(measured)
            print(f"  {kind}: {measured}", flush=True)
    result["load_after"] = load()
    shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="Events of history (repeatable).")
    parser.add_argument("--change", type=int, default=1_000, help="New sales in the one-day change.")
    parser.add_argument("--repeat", type=int, default=2, help="Incremental / full-rebuild pairs per scale.")
    parser.add_argument("--days", type=int, default=DAYS, help="Local days the history spans.")
    parser.add_argument("--shuffled", action="store_true", help="History in random day order (the worst case).")
    parser.add_argument("--out", type=Path, default=OUT, help="Where the stores go (deleted after) and publish.json.")
    args = parser.parse_args(argv)
    results = []
    for rows in args.rows or [1_000_000]:
        print(f"{rows:,} rows of history (load {load()})", flush=True)
        root = args.out / "publish" / f"{rows}"
        results.append(scale(rows, args.change, root, days=args.days, repeat=args.repeat, shuffled=args.shuffled))
    summary = {
        "results": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"publish{'-shuffled' if args.shuffled else ''}{'' if args.days == DAYS else f'-{args.days}d'}.json"
    (args.out / name).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(
        f"{'events':>12}  {'incremental build + publish = wall (cpu)':<44}{'full rebuild build + publish = wall (cpu)'}"
    )
    for r in results:
        for inc, full in zip(r["incremental"], r["full_rebuild"], strict=True):
            print(f"{r['events']:>12,}  {_line(inc):<44}{_line(full)}")
    return summary


def _line(m: dict) -> str:
    return f"{m['build_s']} + {m['publish_s']} = {m['build_plus_publish_s']} ({m['build_plus_publish_cpu_s']} cpu)"


if __name__ == "__main__":
    main()
