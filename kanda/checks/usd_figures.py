"""The money rollups' USD figures recomputed from the events and the rates seed, for `rollups_match_events`.

`usd_agrees_across_rollups` compares region_daily, creator_daily and product_daily with one another, so a rate
taken wrongly by every rollup alike (the model's as-of join, an edited `fx_rates` table in the store, a rounding
done twice) published a plausible wrong USD figure that verify passed, and nothing compared `fx_date` at all.
Here each row's `net_usd_minor` and `fx_date` are computed again without the models (`stg_fx_rates`,
`int_usd_amounts`, `fct_daily_money`): the rates are read from the seed file itself
(`warehouse_models/seeds/fx_rates.csv`, parsed with `Decimal`), the exponents from `regions.money`, and the
conversion is integer arithmetic written here. Only `voided` (a reversal a won dispute gave back) is read from the
staging view, which marks it once for every reader, as the other comparisons do.

The rule is `docs/models.md` "The USD rule": each successful, not voided event is converted once, at the latest
rate on or before its stored local day (`fx_date`), none when that rate is over 14 days older than the day or
there is none; `net_minor x rate x 100 / 10^exponent` rounded to the cent, halves away from zero; the cents
summed upwards (NULL where the events had no rate). A region_daily day without money movement says 0 and no
`fx_date`.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

import warehouse_models
from kanda.checks.differences import key_text, rows_differ
from kanda.regional.store import registered
from regions.money import MINOR_UNIT_EXPONENT

#: A rate older than this many days before the event's day converts nothing (the seed is weekly).
STALE_AFTER_DAYS = 14
#: A rate as an integer: 10^-PICO USD per major unit.
PICO = 12

#: Per successful, not voided event: its USD cents and the date of its rate, NULL where it has none.
#: `seed_rates` (currency, rate_date, pico) and `exponents` (currency, scale = 10^(exponent + PICO)) are registered.
EVENT_USD = f"""
WITH moved AS (
    SELECT local_date, creator_id, product_id, currency, net_minor
    FROM stg_sale_events WHERE status = 'success' AND NOT voided
),
usable AS (
    SELECT d.currency, d.local_date, max(r.rate_date) AS fx_date, arg_max(r.pico, r.rate_date) AS pico
    FROM (SELECT DISTINCT currency, local_date FROM moved) AS d
    JOIN seed_rates AS r
        ON r.currency = d.currency AND r.rate_date BETWEEN d.local_date - {STALE_AFTER_DAYS} AND d.local_date
    GROUP BY d.currency, d.local_date
),
scaled AS (
    SELECT m.local_date, m.creator_id, m.product_id, u.fx_date,
        CAST(m.net_minor AS HUGEINT) * u.pico * 100 AS numerator, CAST(x.scale AS HUGEINT) AS scale
    FROM moved AS m
    LEFT JOIN usable AS u USING (currency, local_date)
    LEFT JOIN exponents AS x USING (currency)
)
SELECT local_date, creator_id, product_id, fx_date,
    CASE WHEN numerator < 0 THEN -((2 * -numerator + scale) // (2 * scale))
        ELSE (2 * numerator + scale) // (2 * scale) END AS usd
FROM scaled
"""


def seed_rates(path: Path | None = None) -> pa.Table:
    """The rates seed as (currency, rate_date, pico): each rate an exact integer of 10^-12 USD per major unit.

    A few thousand rows of reference data, read once per check; `Decimal` keeps each digit of the file."""
    with (path or warehouse_models.seed("fx_rates")).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    unit = Decimal(10) ** PICO
    return pa.table(
        {
            "currency": pa.array([r["currency"] for r in rows], pa.string()),
            "rate_date": pa.array([dt.date.fromisoformat(r["rate_date"]) for r in rows], pa.date32()),
            "pico": pa.array(
                [int((Decimal(r["usd_per_unit"]) * unit).to_integral_value(ROUND_HALF_UP)) for r in rows], pa.int64()
            ),
        }
    )


def exponents() -> pa.Table:
    """Every ISO 4217 currency's divisor from minor units times a pico rate to cents' numerator: 10^(exponent+12)."""
    return pa.table(
        {
            "currency": pa.array(list(MINOR_UNIT_EXPONENT), pa.string()),
            "scale": pa.array([10 ** (e + PICO) for e in MINOR_UNIT_EXPONENT.values()], pa.int64()),
        }
    )


def usd_differs(con: duckdb.DuckDBPyConnection, name: str, keys: tuple[str, ...], shown: int) -> str | None:
    """The rows of a money rollup whose `net_usd_minor` or `fx_date` are not the events' at the seed's rates.

    Rows of the rollup the events have no money for are compared only in region_daily (a day without money
    movement: 0 and no fx_date); elsewhere such a row is the money comparison's to name."""
    listed = ", ".join(keys)
    region = name == "region_daily"
    expected_usd = "CASE WHEN e.local_date IS NULL THEN 0 ELSE e.usd END" if region else "e.usd"
    compared = "" if region else "e.local_date IS NOT NULL AND "
    with registered(con, "seed_rates", seed_rates()), registered(con, "exponents", exponents()):
        rows = con.execute(
            f"WITH e AS (SELECT {listed}, sum(usd) AS usd, max(fx_date) AS fx_date"
            f"  FROM ({EVENT_USD}) GROUP BY {listed}),"
            f" b AS (SELECT {listed}, net_usd_minor, fx_date FROM {name})"
            f" SELECT {', '.join(f'b.{k}' for k in keys)}, b.net_usd_minor, {expected_usd}, b.fx_date, e.fx_date"
            f" FROM b LEFT JOIN e USING ({listed})"
            f" WHERE {compared}(b.net_usd_minor IS DISTINCT FROM {expected_usd}"
            "  OR b.fx_date IS DISTINCT FROM e.fx_date)"
            f" ORDER BY {listed}"
        ).fetchall()
    if not rows:
        return None
    named = []
    for row in rows[:shown]:
        key, (built_usd, usd, built_fx, fx) = row[: len(keys)], row[len(keys) :]
        changed = []
        if built_usd != usd:
            changed.append(f"net_usd_minor {_cents(built_usd)} where the events at the seed's rates say {_cents(usd)}")
        if built_fx != fx:
            seed = f"the seed's rate for the day is of {fx}" if fx else "the seed has no rate for the day"
            changed.append(f"fx_date {built_fx or 'none'} where {seed}")
        named.append(f"{key_text(key)}: {', '.join(changed)}")
    return rows_differ(
        f"{name}'s USD figures differ from the events at the rates of warehouse_models/seeds/fx_rates.csv on"
        f" {len(rows)} row(s): ",
        named,
        len(rows),
    )


def _cents(value: int | None) -> str:
    return "NULL (no rate)" if value is None else f"{value:,}"
