"""region_daily's input counts recounted from the store's own tables, for `rollups_match_events`.

`rows_loaded`, `rows_quarantined` and `quarantine_rate` say how much of a day's input failed the contract. Nothing
else compared them: a model that miscounts them, or an edited rollup, published a plausible wrong quarantine rate
while verify passed. They are counted again here from `sale_events` and `quarantine`, without the models
(`stg_sale_events`, `stg_quarantine`, `region_daily`), and the region's zone is the region config's, not the store's
`region_info` the models read.

The definitions are those of `warehouse_models/rules.md` and `rollups/models.yml`:
- `rows_loaded`: the events stored on the day (every type and status), by their stored `local_date`;
- `rows_quarantined`: the quarantine rows of the day not released. A rejected row stays counted; a row a steward
  fixed is released and counts as an event on its own day. A row's day is its stored `local_date`, or, where it has
  none (too broken to have a date, or quarantined for its time, which ingestion leaves undated), the region's local
  day on which it was quarantined;
- `quarantine_rate`: rows_quarantined / (rows_loaded + rows_quarantined), 0 on a day with neither.
region_daily has a row for each day with either; a row on a day with neither is named too.
"""

from __future__ import annotations

import duckdb

from kanda.checks.differences import RATE_TOLERANCE, figure_pair, figures_differ, rows_differ
from regions import RegionConfig

COUNTS = ("rows_loaded", "rows_quarantined")
RATE = "quarantine_rate"
FIGURES = (*COUNTS, RATE)

#: Per local day, the two counts and the rate as the store's tables say them ($zone: the region's IANA zone).
STORE_COUNTS = """
WITH loaded AS (
    SELECT local_date, count(*) AS rows_loaded FROM sale_events GROUP BY local_date
),
flagged AS (
    SELECT coalesce(local_date, CAST(timezone($zone, quarantined_at) AS DATE)) AS local_date,
        count(*) AS rows_quarantined
    FROM quarantine WHERE status <> 'released' GROUP BY 1
)
SELECT local_date, coalesce(rows_loaded, 0) AS rows_loaded, coalesce(rows_quarantined, 0) AS rows_quarantined,
    coalesce(rows_quarantined / nullif(coalesce(rows_loaded, 0) + coalesce(rows_quarantined, 0), 0), 0.0)
        AS quarantine_rate
FROM loaded FULL JOIN flagged USING (local_date)
"""


def counts_differ(con: duckdb.DuckDBPyConnection, region: RegionConfig, shown: int) -> str | None:
    """The days of region_daily whose input counts are not the store's (`shown` of them named), or None.

    A day missing on either side counts as 0. region_daily's rows of one day are summed, so a day's row twice
    shows twice its counts."""
    differs = [f"coalesce(b.{c}, 0) <> coalesce(s.{c}, 0)" for c in COUNTS]
    differs += [f"abs(coalesce(b.{RATE}, 0) - coalesce(s.{RATE}, 0)) > {RATE_TOLERANCE}", "s.local_date IS NULL"]
    values = ", ".join(f"coalesce(b.{f}, 0), coalesce(s.{f}, 0)" for f in FIGURES)
    rows = con.execute(
        f"WITH s AS ({STORE_COUNTS}),"
        " b AS (SELECT local_date, sum(rows_loaded) AS rows_loaded, sum(rows_quarantined) AS rows_quarantined,"
        f"  any_value({RATE}) AS {RATE} FROM region_daily GROUP BY local_date)"
        f" SELECT local_date, s.local_date IS NULL, {values} FROM s FULL JOIN b USING (local_date)"
        f" WHERE {' OR '.join(differs)} ORDER BY local_date",
        {"zone": region.zone},
    ).fetchall()
    if not rows:
        return None
    named = []
    for day, only_built, *values in rows[:shown]:
        changed = [
            "{} {} where the store says {}".format(figure, *figure_pair(built, store))
            for figure, built, store in zip(FIGURES, values[::2], values[1::2], strict=True)
            if figures_differ(figure == RATE, built, store)
        ]
        if only_built and not changed:
            changed.append("a row where the store has no event and no quarantined row")
        named.append(f"{day}: {', '.join(changed)}")
    return rows_differ(f"region_daily's row counts differ from the store on {len(rows)} day(s): ", named, len(rows))
