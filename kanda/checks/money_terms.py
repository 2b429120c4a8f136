"""What each money rollup row says its figures are in, checked for `rollups_match_events`: its `currency`, and
whether its fees are stated (`fees_stated`: net after the rail's charges, or before them).

Both tell a reader how to read a row's money, and nothing compared them: channel_daily's currency was checked, the
money rollups' was not, and `fees_stated` was taken as the models built it. A row in another currency, or one
saying its fees are stated where part of them were never sent (a report then shows a creator's net as after fees),
published a plausible wrong reading that verify passed. Both are recomputed here without the models
(`stg_region_info`, `stg_batch_rails`, `int_usd_amounts`, `fct_daily_money`): the currency and the region's current
rail are the region config's, as kanda reads it now, and each event's answer is its batch's record in
`batch_rails`. Only `voided` (a reversal a won dispute gave back) is read from the staging view, which marks it
once for every reader, as the other comparisons do.

The rule is `docs/models.md` "Fees": each event answers by the rail that read its batch, as recorded at the
batch's commit (no record: not stated); a row says true only if every successful, not voided event summed in it
does; a region_daily day without money movement answers by the region's current rail.
"""

from __future__ import annotations

import duckdb

from kanda.checks.differences import key_text, rows_differ
from regions import RegionConfig
from regions.rails import states_fees

#: Per successful, not voided event: whether its batch's record says its rail stated fees (no record: false). A
#: batch and rail recorded twice with two answers says false: one of its readings did not state them.
EVENT_FEES = """
WITH recorded AS (
    SELECT batch_id, source, count(*) FILTER (WHERE NOT fees_stated) = 0 AS stated
    FROM batch_rails GROUP BY batch_id, source
)
SELECT e.local_date, e.creator_id, e.product_id, r.stated IS NOT DISTINCT FROM true AS stated
FROM stg_sale_events AS e
LEFT JOIN recorded AS r ON r.batch_id = e.batch_id AND r.source = e.source
WHERE e.status = 'success' AND NOT e.voided
"""


def currency_differs(
    con: duckdb.DuckDBPyConnection, name: str, keys: tuple[str, ...], region: RegionConfig, shown: int
) -> str | None:
    """The rows of a money rollup whose currency is not the region's (`shown` of them named), or None."""
    listed = ", ".join(keys)
    rows = con.execute(
        f"SELECT {listed}, currency FROM {name} WHERE currency IS DISTINCT FROM $currency ORDER BY {listed}",
        {"currency": region.currency},
    ).fetchall()
    if not rows:
        return None
    named = [
        f"{key_text(row[:-1])}: currency {row[-1]} where the region's is {region.currency}" for row in rows[:shown]
    ]
    return rows_differ(f"{name}'s currency is not the region's on {len(rows)} row(s): ", named, len(rows))


def fees_stated_differs(
    con: duckdb.DuckDBPyConnection, name: str, keys: tuple[str, ...], region: RegionConfig, shown: int
) -> str | None:
    """The rows of a money rollup whose `fees_stated` is not their events' rails' answer (`shown` named), or None.

    A row without money in the events is compared only in region_daily (the region's current rail answers);
    elsewhere such a row is the money comparison's to name."""
    listed = ", ".join(keys)
    region_table = name == "region_daily"
    expected = "coalesce(e.stated, $current)" if region_table else "e.stated"
    compared = "" if region_table else "e.local_date IS NOT NULL AND "
    rows = con.execute(
        f"WITH e AS (SELECT {listed}, bool_and(stated) AS stated FROM ({EVENT_FEES}) GROUP BY {listed})"
        f" SELECT {', '.join(f'b.{k}' for k in keys)}, b.fees_stated, {expected}, e.local_date IS NULL"
        f" FROM {name} AS b LEFT JOIN e USING ({listed})"
        f" WHERE {compared}b.fees_stated IS DISTINCT FROM {expected} ORDER BY {listed}",
        {"current": states_fees(region)} if region_table else {},
    ).fetchall()
    if not rows:
        return None
    named = []
    for row in rows[:shown]:
        key, (built, events, no_money) = row[: len(keys)], row[len(keys) :]
        said = (
            f"the region's current rail ({region.source_format}) says {_flag(events)} on a day without money"
            if no_money
            else f"its events' rails say {_flag(events)}"
        )
        named.append(f"{key_text(key)}: fees_stated {_flag(built)} where {said}")
    headline = f"{name}'s fees_stated differs from the events' rails on {len(rows)} row(s): "
    return rows_differ(headline, named, len(rows))


def _flag(value: bool | None) -> str:
    return "null" if value is None else str(value).lower()
