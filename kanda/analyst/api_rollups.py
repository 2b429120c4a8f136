"""The SQL behind `GET /api/rollups/{table}`: filters, grouping and currency, always parametrised.

Column and expression names come only from the fixed tables below (a requested name that is not there is refused),
and every value a client sends is a bound parameter, so no request can change the shape of the SQL.

Currency rule: in local currency a sum is only meaningful within one currency, so `currency` is always one of the
grouping columns (a request that groups by `creator_id` alone gets one row per creator and currency). In USD the
rollups' `net_usd_minor` (US cents) is summed and `currency` is not added; a USD sum over rows of which any has no
FX rate is null rather than silently short (`kanda verify` names the missing rates). `channel_daily` holds no money,
only payment counts: there `usd` just drops the currency from the grouping.

Fees rule: a money answer carries `fees_stated`, true only if every row it sums says so, that is, every event summed
came from a rail that stated fees when it was read; where it is false, part of `fees_minor` was never sent (counted
0) and net is before those charges. A row whose flag is NULL (a data file written before the column existed, until
its region publishes again) is not known to state fees: a group with one is false if another row is, else NULL,
never true (`bool_and` alone skips NULLs and said true over them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from kanda.central.catalog import NAMESPACE
from warehouse_models import published

Currency = Literal["local", "usd"]

#: Dimensions a request may filter or group by, per table; `month` is derived from the local day.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "creator_daily": ("region", "local_date", "month", "creator_id", "currency"),
    "product_daily": ("region", "local_date", "month", "creator_id", "product_id", "currency"),
    "region_daily": ("region", "local_date", "month", "currency"),
    "channel_daily": ("region", "local_date", "month", "channel", "currency"),
}
DIMENSION_SQL = {"month": "strftime(local_date, '%Y-%m')"}
LOCAL_MONEY = ("gross_minor", "refunds_minor", "reversals_minor", "fees_minor", "net_minor")
#: Rollups with money (orders and *_minor columns, net_usd_minor and fx_date); the others only count payments.
MONEY_TABLES = frozenset({"creator_daily", "product_daily", "region_daily"})
COUNTS: dict[str, tuple[str, ...]] = {
    "region_daily": ("payments", "failed_payments", "rows_loaded", "rows_quarantined"),
    "channel_daily": ("payments", "failed_payments", "successful_payments", "reversed_payments"),
}
#: Rates that stay exact when rows are summed, recomputed from their parts.
RATES: dict[str, dict[str, str]] = {
    "region_daily": {
        "payment_failure_rate": "coalesce(sum(failed_payments) / nullif(sum(payments), 0), 0.0)",
        "quarantine_rate": "coalesce(sum(rows_quarantined) / nullif(sum(rows_loaded) + sum(rows_quarantined), 0), 0.0)",
    },
    "channel_daily": {
        "payment_failure_rate": "coalesce(sum(failed_payments) / nullif(sum(payments), 0), 0.0)",
        "reversal_rate": "coalesce(sum(reversed_payments) / nullif(sum(successful_payments), 0), 0.0)",
    },
}
#: Whether the rows' rails stated fees: per row as published, for a group true only if it is for every row.
FEES_STATED = "fees_stated"
#: A group's `fees_stated`: false if any row's is, NULL (unknown) if any row's is NULL, true only if every row's is.
FEES_STATED_SQL = (
    f"CASE WHEN bool_or(NOT {FEES_STATED}) THEN false WHEN count({FEES_STATED}) < count(*) THEN NULL ELSE true END"
)
#: Published per row but not additive (its denominator is not published): only in ungrouped answers.
ROW_ONLY = {"region_daily": ("reversal_rate",)}


class BadRollupRequest(ValueError):
    """A filter or grouping that does not apply to the table; the message says what does."""


@dataclass(frozen=True)
class RollupRequest:
    table: str
    regions: list[str] = field(default_factory=list)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    creators: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    group_by: list[str] | None = None  # None: the rollup's own rows; []: one total (per currency when local)
    currency: Currency = "local"


def measures(table: str, currency: Currency) -> tuple[str, ...]:
    if table not in MONEY_TABLES:
        return COUNTS.get(table, ())
    money = LOCAL_MONEY if currency == "local" else ("net_usd_minor",)
    return ("orders", *money, *COUNTS.get(table, ()))


def rollup_sql(request: RollupRequest) -> tuple[str, list[object]]:
    """One SELECT (ordered, so that pages are stable) and its parameters."""
    table = request.table
    if table not in published():
        raise BadRollupRequest(f"no rollup table {table!r}: choose one of {', '.join(published())}")
    where, params = _filters(request)
    source = f"FROM {NAMESPACE}.{table}{where}"
    if request.group_by is None:
        grain = [c for c in published()[table] if not (c == "currency" and request.currency == "usd")]
        extra = ("fx_date",) if request.currency == "usd" and table in MONEY_TABLES else ()
        rates = (*RATES.get(table, {}), *ROW_ONLY.get(table, ()))
        flags = (FEES_STATED,) if table in MONEY_TABLES else ()
        columns = [*grain, *measures(table, request.currency), *flags, *rates, *extra]
        return f"SELECT {', '.join(columns)} {source} ORDER BY {', '.join(grain)}", params
    dims = _group_columns(request)
    selected = [f"{DIMENSION_SQL.get(d, d)} AS {d}" for d in dims]
    for measure in measures(table, request.currency):
        total = f"CAST(sum({measure}) AS BIGINT)"
        if measure == "net_usd_minor":
            total = f"CASE WHEN count(*) FILTER (WHERE net_usd_minor IS NULL) > 0 THEN NULL ELSE {total} END"
        selected.append(f"{total} AS {measure}")
    if table in MONEY_TABLES:
        selected.append(f"{FEES_STATED_SQL} AS {FEES_STATED}")
    selected += [f"{expression} AS {name}" for name, expression in RATES.get(table, {}).items()]
    grouping = f" GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
    order = f" ORDER BY {', '.join(dims)}" if dims else ""
    return f"SELECT {', '.join(selected)} {source}{grouping}{order}", params


def _group_columns(request: RollupRequest) -> list[str]:
    allowed = DIMENSIONS[request.table]
    dims: list[str] = []
    for name in request.group_by or []:
        if name not in allowed:
            raise BadRollupRequest(f"cannot group {request.table} by {name!r}: choose from {', '.join(allowed)}")
        if name not in dims:
            dims.append(name)
    if request.currency == "local" and "currency" not in dims:
        dims.append("currency")  # local sums never mix currencies
    return dims


def canonical_ids(values: list[str] | None) -> list[str]:
    """Filter values as the rollups store them, sorted and once each: region codes and creator and product ids are
    upper case by the sale contract (`KE`, `KE-C0001`, `KE-P00001`, `regions.creator_pattern`), so `ke-c0001` or
    ` KE-C0001 ` means that creator; compared as typed, it matched nothing and the answer read as "no sales"."""
    return sorted({v.strip().upper() for v in values or []})


def _filters(request: RollupRequest) -> tuple[str, list[object]]:
    allowed = DIMENSIONS[request.table]
    clauses: list[str] = []
    params: list[object] = []
    for column, values in (
        ("region", canonical_ids(request.regions)),
        ("creator_id", canonical_ids(request.creators)),
        ("product_id", canonical_ids(request.products)),
    ):
        if not values:
            continue
        if column not in allowed:
            raise BadRollupRequest(f"{request.table} has no {column}: filter it by {', '.join(allowed)}")
        clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    if request.date_from and request.date_to and request.date_from > request.date_to:
        raise BadRollupRequest(f"date_from {request.date_from} is after date_to {request.date_to}")
    if request.date_from:
        clauses.append("local_date >= ?")
        params.append(request.date_from)
    if request.date_to:
        clauses.append("local_date <= ?")
        params.append(request.date_to)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
