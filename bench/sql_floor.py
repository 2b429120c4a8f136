"""What landing the EG Stripe file as checked, typed events costs in DuckDB alone: a floor, not a second mapping.

`bench.ingest` compares kanda with a raw load of the file as text. This bench asks whether another design could
close that gap: it does the EG Stripe export in one DuckDB statement (`read_csv`, the mapping in SQL, the refund
fan-out as `UNNEST`, the contract's row checks as a `WHERE`, the anti-join against the store's events, the typed
insert into a `sale_events` table of the store's own schema), with no pandera, no polars, no staging, no quarantine
rows and no ledger. What it leaves out only makes it cheaper, so its time is a lower bound for any design that does
the same work in DuckDB. It is not kept in step with the Stripe spec and is never used to load anything.

    .venv/bin/python -m bench.sql_floor --rows 2000000 --runs 2

The raw load (`bench.ingest.raw_load`), the statement and the statement without row numbers alternate in this
process; each run prints wall and CPU seconds, and the result is written to `bench/out/sql_floor.json`. Timings
are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/sql_floor.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from bench.ingest import OUT, prepare, raw_load
from kanda.regional.store import sale_events_ddl


def _amount(column: str) -> str:
    """A comma-decimal amount in minor units when it is plainly written, else NULL (kanda's fast path only)."""
    text = f'trim("{column}")'
    plain = r"-?([0-9]{1,15}|[0-9]{1,3}(\.[0-9]{3}){1,4})(,[0-9]{2})?"
    digits = f"TRY_CAST(replace(replace({text}, '.', ''), ',', '') AS BIGINT)"
    return (
        f"CASE WHEN regexp_full_match({text}, '{plain}')"
        f" THEN CASE WHEN contains({text}, ',') THEN {digits} ELSE {digits} * 100 END END"
    )


def statement(path: Path, salt: str = "bench-salt", *, numbered: bool = True) -> str:
    """`numbered=False` gives every row source_row 1: DuckDB numbers rows single-threaded, and without the numbers
    (which the contract needs, to trace a value back to its line) the bound is looser still."""
    number = "row_number() OVER ()" if numbered else "1::BIGINT"
    created = 'trim("Created (UTC)")'
    email = 'lower(trim("Customer Email"))'
    status = (
        "CASE WHEN word IN ('paid', 'succeeded', 'refunded', 'partially refunded', 'disputed') THEN 'success'"
        " WHEN word = 'pending' THEN 'pending' WHEN word IN ('failed', 'canceled', 'blocked') THEN 'failed' END"
    )
    return f"""
INSERT INTO sale_events BY NAME
WITH src AS (
  SELECT {number} AS source_row, *
  FROM read_csv('{path}', delim = ';', header = true, all_varchar = true, quote = '"')
), mapped AS (
  SELECT source_row, nullif(trim(id), '') AS transaction_id, lower(trim(Status)) AS word,
    {_amount("Amount")} AS amount, {_amount("Fee")} AS fee, {_amount("Amount Refunded")} AS refunded,
    upper(trim(Currency)) AS currency,
    CAST(coalesce(try_strptime({created}, '%Y-%m-%d %H:%M:%S'), try_strptime({created}, '%Y-%m-%d %H:%M'))
      AS TIMESTAMP) AT TIME ZONE 'UTC' AS occurred_at,
    regexp_extract(trim("kanda_ref (metadata)"), '^(EG-C[0-9]{{4}})\\.(EG-P[0-9]{{5}})$', ['c', 'p']) AS ref,
    CASE WHEN regexp_full_match({email}, '[^@\\s*]+@[^@\\s*]+\\.[a-z]{{2,}}') THEN sha256('{salt}' || {email}) END
      AS buyer_ref,
    lower(trim("Payment Method Type")) AS channel
  FROM src
), events AS (
  -- each row's events as a list, unnested: the mapping is computed once, not once per branch of a UNION ALL
  SELECT m.* EXCLUDE (e), e.* FROM (
    SELECT *, unnest(CASE
      WHEN word IN ('refunded', 'partially refunded') OR refunded IS DISTINCT FROM 0 THEN [sale, refund]
      ELSE [sale] END) AS e
    FROM (
      SELECT *,
        {{'event_type': 'sale', 'status': {status}, 'amount_minor': amount, 'fee_minor': fee}} AS sale,
        {{'event_type': 'refund', 'status': 'success', 'amount_minor': -abs(refunded), 'fee_minor': 0}} AS refund
      FROM mapped
    )
  ) AS m
), shaped AS (
  SELECT 'EG' AS region, 'stripe_payments' AS source, 'bench.csv' AS source_file, source_row, 'bench' AS batch_id,
    transaction_id, event_type, status, ref.c AS creator_id, ref.p AS product_id, buyer_ref, channel,
    CASE WHEN event_type = 'sale' THEN 0 ELSE abs(amount_minor) END AS event_ref,
    amount_minor, fee_minor, amount_minor - fee_minor AS net_minor, currency, occurred_at,
    CAST(timezone('Africa/Cairo', occurred_at) AS DATE) AS local_date
  FROM events
)
SELECT * FROM shaped AS s
WHERE transaction_id IS NOT NULL AND status IS NOT NULL AND creator_id <> '' AND amount_minor IS NOT NULL
  AND fee_minor BETWEEN 0 AND 1000000000000 AND abs(amount_minor) <= 1000000000000 AND currency = 'EGP'
  AND occurred_at >= TIMESTAMPTZ '2015-01-01 00:00:00+00'
  AND CASE WHEN event_type = 'sale' THEN amount_minor > 0 ELSE amount_minor < 0 END
  AND NOT EXISTS (SELECT 1 FROM sale_events AS e WHERE e.transaction_id = s.transaction_id
                  AND e.event_type = s.event_type AND e.status = s.status AND e.event_ref = s.event_ref)
"""


def sql_load(path: Path, workdir: Path, *, numbered: bool = True) -> tuple[float, int]:
    """Seconds for the one statement into a fresh store file (connect and commit included), and rows inserted."""
    db = workdir / "floor.duckdb"
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute(sale_events_ddl())
        con.execute("BEGIN")
        inserted = con.execute(statement(path, numbered=numbered)).fetchall()[0][0]
        con.execute("COMMIT")
    return time.perf_counter() - started, inserted


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    path, _ = prepare("EG", args.rows, dt.date(2026, 10, 1), 30, args.seed)
    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "sql_floor": [], "unnumbered": []}
    inserted = 0
    with tempfile.TemporaryDirectory(prefix="kanda-sql-floor-") as tmp:
        workdir = Path(tmp)
        for run in range(1, args.runs + 1):
            cpu = _cpu()
            seconds = raw_load(path, workdir)
            runs["raw"].append((seconds, _cpu() - cpu))
            cpu = _cpu()
            seconds, inserted = sql_load(path, workdir)
            runs["sql_floor"].append((seconds, _cpu() - cpu))
            cpu = _cpu()
            seconds, _ = sql_load(path, workdir, numbered=False)
            runs["unnumbered"].append((seconds, _cpu() - cpu))
            for side in runs:
                wall, used = runs[side][-1]
                print(f"  run {run}: {side:10s} {wall:6.2f} s  cpu {used:5.1f} s", flush=True)
    best = {side: min(values) for side, values in runs.items()}
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "inserted": inserted,
        "best": {side: {"seconds": round(w, 3), "cpu_seconds": round(c, 2)} for side, (w, c) in best.items()},
        "raw_over_sql_floor": round(best["raw"][0] / best["sql_floor"][0], 3),
        "raw_over_unnumbered": round(best["raw"][0] / best["unnumbered"][0], 3),
    }
    print(
        f"raw {best['raw'][0]:.2f} s, the one-statement floor {best['sql_floor'][0]:.2f} s "
        f"({inserted:,} events): raw / floor {result['raw_over_sql_floor']}; without row numbers "
        f"{best['unnumbered'][0]:.2f} s: raw / floor {result['raw_over_unnumbered']}"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sql_floor.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
