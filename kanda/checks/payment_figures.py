"""The payment figures of the rollups recomputed from the events, for `rollups_match_events`.

Every figure of `channel_daily` (at its grain: day and channel) and the payment figures of `region_daily` (per
day) are counted again here from `sale_events`, without the models (`fct_sales`, `int_payment_rates`): comparing
the rollups with themselves, or with the models that built them, could not see a model that miscounts. Only
`voided` (a reversal a won dispute gave back) is read from the staging view, which marks it once for every reader,
as the money comparison does.

The definitions are those of `warehouse_models/rules.md` and `rollups/models.yml`: a payment is a transaction with
a sale event; its channel and status are those of its latest sale event (at equal times success beats failed beats
pending; 'unknown' when the rail named no channel); it is counted on the local day it was first seen (`payments`,
and `failed_payments` when its latest status is failed) and on the day it first succeeded (`successful_payments`,
and `reversed_payments` when reversals and chargebacks that succeeded and were not voided took money back from
it). A day is the event's stored `local_date`, the region's local day computed once at ingestion.
"""

from __future__ import annotations

import duckdb

from kanda.checks.differences import RATE_TOLERANCE, figure_pair, figures_differ, key_text, rows_differ

#: The counts per day and channel; the rates are computed from them as the models define them.
COUNTS = ("payments", "failed_payments", "successful_payments", "reversed_payments")
RATES = {
    "payment_failure_rate": ("failed_payments", "payments"),
    "reversal_rate": ("reversed_payments", "successful_payments"),
}
#: Each rollup that carries payment figures: its grain, and the figures of it compared with the events'.
COMPARED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "channel_daily": (("local_date", "channel"), (*COUNTS, *RATES)),
    "region_daily": (("local_date",), ("payments", "failed_payments", *RATES)),
}

#: Per local day and channel, the four counts as the events say them.
EVENTS_BY_CHANNEL = """
WITH sale_rows AS (
    SELECT transaction_id, local_date, status, coalesce(channel, 'unknown') AS channel,
        row_number() OVER (
            PARTITION BY transaction_id
            ORDER BY occurred_at DESC, CASE status WHEN 'success' THEN 3 WHEN 'failed' THEN 2 ELSE 1 END DESC
        ) AS recency
    FROM sale_events WHERE event_type = 'sale'
),
payments AS (
    SELECT transaction_id,
        min(local_date) AS first_seen,
        min(local_date) FILTER (WHERE status = 'success') AS succeeded_on,
        any_value(channel) FILTER (WHERE recency = 1) AS channel,
        any_value(status) FILTER (WHERE recency = 1) = 'failed' AS failed
    FROM sale_rows GROUP BY transaction_id
),
taken_back AS (
    SELECT transaction_id FROM stg_sale_events
    WHERE event_type IN ('reversal', 'chargeback') AND status = 'success' AND NOT voided
    GROUP BY transaction_id HAVING -sum(amount_minor) > 0
),
seen AS (
    SELECT first_seen AS local_date, channel, count(*) AS payments, count(*) FILTER (WHERE failed) AS failed_payments
    FROM payments GROUP BY ALL
),
succeeded AS (
    SELECT succeeded_on AS local_date, channel, count(*) AS successful_payments,
        count(t.transaction_id) AS reversed_payments
    FROM payments LEFT JOIN taken_back AS t USING (transaction_id)
    WHERE succeeded_on IS NOT NULL GROUP BY ALL
)
SELECT local_date, channel, coalesce(payments, 0) AS payments, coalesce(failed_payments, 0) AS failed_payments,
    coalesce(successful_payments, 0) AS successful_payments, coalesce(reversed_payments, 0) AS reversed_payments
FROM seen FULL JOIN succeeded USING (local_date, channel)
"""


def events_sql(keys: tuple[str, ...]) -> str:
    """The events' counts summed at `keys` (a rollup's grain), with the rates computed from them."""
    listed = ", ".join(keys)
    counts = ", ".join(f"sum({c}) AS {c}" for c in COUNTS)
    rates = ", ".join(f"coalesce({n} / nullif({d}, 0), 0.0) AS {rate}" for rate, (n, d) in RATES.items())
    return f"SELECT *, {rates} FROM (SELECT {listed}, {counts} FROM ({EVENTS_BY_CHANNEL}) GROUP BY {listed})"


def payments_differ(con: duckdb.DuckDBPyConnection, name: str, currency: str, shown: int) -> str | None:
    """The rows of a rollup whose payment figures are not the events' (`shown` of them named), or None.

    A figure missing on either side counts as 0. In channel_daily a row is also wrong where the events have no
    payment of that day and channel (a day moved leaves one), and where its currency is not the region's."""
    keys, figures = COMPARED[name]
    listed = ", ".join(keys)
    differs = [
        f"abs(coalesce(b.{f}, 0) - coalesce(e.{f}, 0)) > {RATE_TOLERANCE}"
        if f in RATES
        else f"coalesce(b.{f}, 0) <> coalesce(e.{f}, 0)"
        for f in figures
    ]
    extra = name == "channel_daily"
    if extra:
        differs += ["e.local_date IS NULL", "b.currency IS DISTINCT FROM $currency AND b.local_date IS NOT NULL"]
    values = ", ".join(f"coalesce(b.{f}, 0), coalesce(e.{f}, 0)" for f in figures)
    currency_column = "b.currency" if extra else "NULL"
    rows = con.execute(
        f"WITH e AS ({events_sql(keys)}), b AS (SELECT * FROM {name})"
        f" SELECT {', '.join(f'coalesce(b.{k}, e.{k})' for k in keys)}, e.local_date IS NULL, {currency_column},"
        f" {values} FROM e FULL JOIN b USING ({listed}) WHERE {' OR '.join(differs)} ORDER BY ALL",
        {"currency": currency} if extra else {},
    ).fetchall()
    if not rows:
        return None
    named = []
    for row in rows[:shown]:
        key, (only_built, built_currency), values = (
            row[: len(keys)],
            row[len(keys) : len(keys) + 2],
            row[-2 * len(figures) :],
        )
        changed = []
        for i, figure in enumerate(figures):
            built, events = values[2 * i], values[2 * i + 1]
            if figures_differ(figure in RATES, built, events):
                shown_built, shown_events = figure_pair(built, events)
                changed.append(f"{figure} {shown_built} where the events say {shown_events}")
        if extra and built_currency is not None and built_currency != currency:
            changed.append(f"currency {built_currency} where the region's is {currency}")
        if only_built and not changed:
            changed.append("a row where the events have no payment")
        named.append(f"{key_text(key)}: {', '.join(changed)}")
    return rows_differ(f"{name}'s payment figures differ from the events on {len(rows)} row(s): ", named, len(rows))
