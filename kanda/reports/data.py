"""Gather every creator's daily report of one region and local day from that region's store, in a few queries.

Line-level data never leaves the region: this runs beside the regional store, opened read-only under its lock, and
the reports it returns are delivered from there. Ten thousand reports must take seconds, so nothing here asks the
store once per creator: the day's figures, the previous 30 days, the top products, the sale lines and the held
records of *all* creators are read once each (set-based SQL) and split per creator in memory.

Figures are the published rollups' own definitions (cash basis by local day: a refund or reversal counts on the
local day it happened, so a late refund lands on its own day and restates that day, never the sale's). They are
read from the store's `creator_daily`/`product_daily`, which are exactly what was published as long as the day is
not dirty, and a day is reported only once it has closed in the region's zone and has been published.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from kanda.regional.models import published_fingerprint
from kanda.regional.store import open_store, store_exists
from kanda.reports.model import CreatorReport, DayFigures, HeldRecords, ProductLine, SaleLine, TrendPoint
from kanda.settings import Settings
from regions import RegionConfig, get_region
from regions.rails import states_fees

TREND_DAYS = 30
AVERAGE_DAYS = 7
TOP_PRODUCTS = 5
#: Quarantine statuses that mean "still held for review" (released rows are loaded; decided rows are not pending).
PENDING_REVIEW = ("open", "held")
_MONEY = ("orders", "gross_minor", "refunds_minor", "reversals_minor", "fees_minor", "net_minor")


@dataclass(frozen=True)
class Readiness:
    """Whether a region's local day may be reported, and if not, why in words an operator can act on."""

    ready: bool
    reason: str  # ready | not_closed | not_published | no_store
    message: str


@dataclass
class RegionDay:
    """The reports of one region and day, or why there are none."""

    region: str
    local_date: dt.date
    readiness: Readiness
    reports: list[CreatorReport]


def day_closes_at(region: RegionConfig, local_date: dt.date) -> dt.datetime:
    """The UTC instant the local day ends (the next local midnight; DST-aware, so 23 or 25 hours are possible)."""
    next_midnight = dt.datetime.combine(local_date + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(region.zone))
    return next_midnight.astimezone(dt.UTC)


def last_closed_day(region: RegionConfig, now: dt.datetime | None = None) -> dt.date:
    """The most recent local day of the region that has ended: "yesterday" where the region is."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(region.zone)).date() - dt.timedelta(days=1)


def readiness(
    con: duckdb.DuckDBPyConnection, region: RegionConfig, local_date: dt.date, now: dt.datetime | None = None
) -> Readiness:
    """A day is reportable when it has closed in the region's zone and nothing of it awaits publishing.

    A dirty day has data that the central layer does not show yet; a report must never say more (or less) than
    what analysts see, so it waits for the next publish. That holds for every day the report reads, not only its
    own: the day before, the 7-day average, the 30-day chart and the corrections of earlier days would otherwise
    show (and the delivery record keep as told) a figure no publication has.
    """
    now = now or dt.datetime.now(dt.UTC)
    closes = day_closes_at(region, local_date)
    if now < closes:
        local_close = closes.astimezone(ZoneInfo(region.zone))
        return Readiness(
            False, "not_closed", f"{region.code} {local_date} has not ended yet in {region.zone} (ends {local_close})"
        )
    published = con.execute("SELECT count(*) FROM publish_log").fetchall()[0][0]
    (dirty,) = con.execute("SELECT max(local_date) FROM dirty_days WHERE local_date <= ?", [local_date]).fetchall()[0]
    if dirty is not None or not published:
        what = local_date if dirty in (None, local_date) else f"{dirty}, a day the report of {local_date} reads,"
        return Readiness(
            False,
            "not_published",
            f"{region.code} {what} has data that is not published yet: run `kanda publish -r {region.code}`",
        )
    # Rollups built by other models (an upgraded kanda) may lack a column or say otherwise than the next publish
    # will; the publish rebuilds them and sends every day.
    built_by = con.execute("SELECT fingerprint FROM published_models").fetchall()
    if not built_by or built_by[0][0] != published_fingerprint(con):
        return Readiness(
            False,
            "not_published",
            f"{region.code}'s rollups were published by other models or region settings (kanda or the region file"
            " changed since):"
            f" run `kanda publish -r {region.code}`",
        )
    return Readiness(True, "ready", f"{region.code} {local_date} is closed and published")


def region_reports(
    settings: Settings,
    region_code: str,
    local_date: dt.date,
    *,
    creators: list[str] | None = None,
    now: dt.datetime | None = None,
) -> RegionDay:
    """Every report of the region's day (or of the named creators), read under the store's lock, read-only."""
    region = get_region(region_code)
    if not store_exists(settings, region.code):
        return RegionDay(region.code, local_date, Readiness(False, "no_store", f"{region.code}: no store yet"), [])
    with open_store(settings, region.code, read_only=True) as con:
        state = readiness(con, region, local_date, now)
        if not state.ready:
            return RegionDay(region.code, local_date, state, [])
        return RegionDay(region.code, local_date, state, build_reports(con, region, local_date, creators=creators))


def _refuse_repeated_ids(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> None:
    """A creator or product recorded twice would send two reports, or list each sale twice so that the attached
    lines no longer add up to the net the message states. Ingest refuses such a registry; a store synced by an
    older kanda may still hold one, and then the region's reports fail naming the ids instead."""
    repeated = con.execute(
        "SELECT 'creator ' || creator_id FROM creators WHERE region = $region GROUP BY creator_id HAVING count(*) > 1"
        " UNION ALL SELECT 'product ' || product_id FROM products WHERE region = $region"
        " GROUP BY product_id HAVING count(*) > 1 ORDER BY 1",
        {"region": region.code},
    ).fetchall()
    if repeated:
        names = ", ".join(name for (name,) in repeated[:5]) + (" ..." if len(repeated) > 5 else "")
        raise ValueError(
            f"{region.code}: the store's creator registry has {names} more than once: keep one record of each in"
            f" the registry files, then `kanda ingest -r {region.code}` copies it in again"
        )


def build_reports(
    con: duckdb.DuckDBPyConnection, region: RegionConfig, local_date: dt.date, *, creators: list[str] | None = None
) -> list[CreatorReport]:
    """The reports of every registered creator with activity on the day: money moved, a sale event, or a held row.

    Seven queries in all, whatever the number of creators; the per-creator work is only splitting their results.
    """
    day = local_date
    first = day - dt.timedelta(days=TREND_DAYS - 1)
    params = {"day": day, "first": first, "region": region.code, "zone": region.zone}
    only = "" if creators is None else "AND creator_id IN (SELECT unnest($creators))"
    if creators is not None:
        params["creators"] = list(creators)

    def frame(sql: str) -> pl.DataFrame:
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        return con.sql(sql, params=used).pl()

    _refuse_repeated_ids(con, region)
    registry = frame("SELECT creator_id, name, email, language, locale FROM creators WHERE region = $region " + only)
    daily = frame(
        f"SELECT creator_id, local_date, {', '.join(_MONEY)}, net_usd_minor, fx_date, fees_stated FROM creator_daily"
        f" WHERE local_date BETWEEN $first AND $day {only}"
    )
    # The day's own answer (its events' rails); a creator without money that day answers by the region's rail.
    stated_today = dict(daily.filter(pl.col("local_date") == day).select("creator_id", "fees_stated").iter_rows())
    daily = daily.drop("fees_stated")
    events = frame(
        "SELECT e.creator_id, e.occurred_at, e.transaction_id, e.product_id, coalesce(p.title, e.product_id) AS title,"
        " e.event_type, e.status, s.voided, e.channel, e.amount_minor, e.fee_minor,"
        # a creator-scoped pseudonym: repeat buyers stay recognisable to the creator, the store's buyer hash does
        # not leave (it would link one buyer across creators)
        " CASE WHEN e.buyer_ref IS NULL THEN NULL"
        "      ELSE 'B-' || upper(substr(md5(e.creator_id || ':' || e.buyer_ref), 1, 8)) END AS buyer"
        # stg_sale_events says which reversals a won dispute voided; buyer_ref is only in the store's table
        " FROM sale_events AS e"
        " JOIN (SELECT event_id, voided FROM stg_sale_events WHERE local_date = $day) AS s USING (event_id)"
        " LEFT JOIN products AS p USING (product_id)"
        f" WHERE e.local_date = $day {only.replace('creator_id', 'e.creator_id')}"
        " ORDER BY e.creator_id, e.occurred_at, e.transaction_id, e.event_type, e.status"
    )
    products = frame(
        "SELECT d.creator_id, d.product_id, coalesce(p.title, d.product_id) AS title, d.orders, d.net_minor"
        " FROM product_daily AS d LEFT JOIN products AS p USING (product_id)"
        # a product that only had money going back that day sold nothing: not one of the day's top products
        f" WHERE d.local_date = $day AND d.orders > 0 {only.replace('creator_id', 'd.creator_id')}"
        " QUALIFY row_number() OVER (PARTITION BY d.creator_id ORDER BY d.net_minor DESC, d.orders DESC,"
        f" d.product_id) <= {TOP_PRODUCTS}"
        " ORDER BY d.creator_id, d.net_minor DESC, d.orders DESC, d.product_id"
    )
    held = frame(
        "WITH held_rows AS ("
        "  SELECT creator_id, quarantine_id, list_distinct(json_extract_string(reasons, '$[*].rule')) AS rules"
        # a row held for its time has no day of its own: it counts on the day it arrived, as in the rollups
        "  FROM quarantine WHERE coalesce(local_date, CAST(timezone($zone, quarantined_at) AS DATE)) = $day"
        f"  AND status IN {PENDING_REVIEW} AND creator_id IS NOT NULL {only}"
        ") SELECT creator_id, rule, count(*) AS rows FROM held_rows, unnest(rules) AS r(rule) GROUP BY ALL"
        " UNION ALL SELECT creator_id, NULL, count(*) FROM held_rows GROUP BY ALL"
    )
    # The region's history starts on its first day with a loaded event: a quarantined row keeps the day its broken
    # time names (a statement line dated 2014), which would otherwise start the history years early.
    history_starts = con.execute("SELECT min(local_date) FROM region_daily WHERE rows_loaded > 0").fetchall()[0][0]
    exponents = dict(con.execute("SELECT currency, exponent FROM currencies").fetchall())

    active = (
        set(daily.filter(pl.col("local_date") == day)["creator_id"].to_list())
        | set(events["creator_id"].to_list())
        | set(held["creator_id"].to_list())
    )
    registry = registry.filter(pl.col("creator_id").is_in(list(active))).sort("creator_id")
    if registry.is_empty():
        return []

    figures = _figures_by_creator(daily)
    # The attachment lists what the figures are made of (`fct_daily_money`: successful events of the local day);
    # a pending or failed attempt moved no money and is only counted. A reversal a won dispute voided is not money
    # either. Only sales are payment attempts: a failed reversal (a won dispute, or a reversal attempt that failed)
    # is not one.
    counted = (pl.col("status") == "success") & ~pl.col("voided")
    sales = _sales_by_creator(events.filter(counted).drop("voided"), region.zone)
    attempts = _attempts_by_creator(events)
    top = _top_products(products)
    held_by = _held_by_creator(held)
    trend_days = [first + dt.timedelta(days=i) for i in range(TREND_DAYS)]
    zero_points = {d: TrendPoint(d, 0) for d in trend_days}  # frozen, so one shared object per quiet day
    # The 7 days before: only once the region's history covers all of them, else the "7-day average" of a region
    # three days old would be a three-day one under the wrong name (the report then says "no figures").
    average_days = [day - dt.timedelta(days=i) for i in range(AVERAGE_DAYS, 0, -1)]
    if history_starts is None or average_days[0] < history_starts:
        average_days = []
    previous = day - dt.timedelta(days=1)
    has_previous = history_starts is not None and previous >= history_starts

    region_states_fees = states_fees(region)
    reports = []
    # The money is in the region's settlement currency (the contract holds every event to it), whatever the
    # registry's `currency` says: a report labels and scales minor units by it (`sync_registry` warns on a mismatch).
    currency = region.currency
    for creator_id, name, email, language, locale in registry.iter_rows():
        days = figures.get(creator_id, {})
        today = days.get(day)
        reports.append(
            CreatorReport(
                region=region.code,
                creator_id=creator_id,
                creator_name=name or creator_id,
                email=email or "",
                language=language or region.language,
                locale=locale or region.locale,
                currency=currency,
                exponent=exponents.get(currency, region.exponent),
                zone=region.zone,
                local_date=day,
                day=today[0] if today else _ZERO,
                previous_day=(days[previous][0] if previous in days else _ZERO) if has_previous else None,
                seven_day_average_net_minor=(
                    round(Fraction(sum(days[d][0].net_minor for d in average_days if d in days), len(average_days)))
                    if average_days
                    else None
                ),
                net_usd_minor=today[1] if today else 0,  # no money moved: 0 whatever the rate
                fx_date=today[2] if today else None,
                top_products=top.get(creator_id, []),
                trend=[TrendPoint(d, days[d][0].net_minor) if d in days else zero_points[d] for d in trend_days],
                sales=sales.get(creator_id, []),
                held=held_by.get(creator_id, HeldRecords()),
                other_attempts=attempts.get(creator_id, 0),
                fees_stated=stated_today.get(creator_id, region_states_fees),
            )
        )
    return reports


_ZERO = DayFigures(0, 0, 0, 0, 0, 0)


def _figures_by_creator(daily: pl.DataFrame) -> dict[str, dict[dt.date, tuple[DayFigures, int | None, dt.date | None]]]:
    out: dict[str, dict] = defaultdict(dict)
    for creator_id, local_date, *money, usd, fx_date in daily.iter_rows():
        out[creator_id][local_date] = (DayFigures(*money), usd, fx_date)
    return out


def _sales_by_creator(events: pl.DataFrame, zone: str) -> dict[str, list[SaleLine]]:
    local = events.with_columns(pl.col("occurred_at").dt.convert_time_zone(zone))
    out: dict[str, list[SaleLine]] = defaultdict(list)
    for creator_id, *fields in local.iter_rows():
        out[creator_id].append(SaleLine(*fields))
    return out


def _attempts_by_creator(events: pl.DataFrame) -> dict[str, int]:
    """Payments of the day that did not succeed on it (pending or failed), each counted once.

    The message tells them as payment attempts that moved no money. Counting events instead told the pending event
    of a payment that then succeeded (and is listed) as another attempt, and a payment pending then failed as two:
    on a rail that reports every payment pending first, a creator was told of as many attempts that moved no money
    as they had orders. A payment is its transaction id (`event_id` is transaction:type:status), as in `fct_sales`.
    """
    payments = events.filter(pl.col("event_type") == "sale")
    succeeded = payments.filter(pl.col("status") == "success").select("transaction_id")
    return dict(
        payments.filter(pl.col("status") != "success")
        .join(succeeded, on="transaction_id", how="anti")
        .group_by("creator_id")
        .agg(pl.col("transaction_id").n_unique())
        .iter_rows()
    )


def _top_products(products: pl.DataFrame) -> dict[str, list[ProductLine]]:
    out: dict[str, list[ProductLine]] = defaultdict(list)
    for creator_id, *fields in products.iter_rows():
        out[creator_id].append(ProductLine(*fields))
    return out


def _held_by_creator(held: pl.DataFrame) -> dict[str, HeldRecords]:
    counts: dict[str, int] = {}
    reasons: dict[str, dict[str, int]] = defaultdict(dict)
    for creator_id, rule, rows in held.iter_rows():
        if rule is None:
            counts[creator_id] = rows
        else:
            reasons[creator_id][rule] = rows
    return {c: HeldRecords(n, dict(sorted(reasons[c].items()))) for c, n in counts.items()}
