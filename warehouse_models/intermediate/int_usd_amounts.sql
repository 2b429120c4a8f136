-- THE USD rule, the only place a local amount becomes US cents. Every rollup sums this model's integers, so the
-- USD totals of region_daily, creator_daily and product_daily agree to the cent for any region and period.
--  * rate: the latest rate on or before the event's local day; fx_date says which one. Before the first known rate
--    there is none: net_usd_minor is NULL (`kanda verify` reports it).
--  * rounding: once per event row, to the nearest cent, halves away from zero, in exact integer arithmetic
--    (minor units x pico-USD rate; no floating point). A refund converts to exactly minus its sale on the same day.
-- The rate is written as a lookup per event; DuckDB runs it once per distinct currency and day and joins it back.
-- Written so, an incremental build's day filter on this view reaches the sale_events scan: a join of the events
-- with a list of their own days made DuckDB read every event for that list.
WITH scaled AS (
    SELECT
        e.event_id, e.region, e.transaction_id, e.event_type, e.status, e.creator_id, e.product_id, e.channel,
        e.currency, e.local_date, e.amount_minor, e.fee_minor, e.net_minor, r.fx_date,
        -- US cents x 10^(exponent + 12): numerator and denominator of the exact conversion
        CAST(e.net_minor AS HUGEINT) * r.usd_per_unit_pico * 100 AS usd_scaled,
        CAST(10 ** (c.exponent + 12) AS HUGEINT) AS scale
    FROM stg_sale_events AS e
    JOIN stg_currencies AS c USING (currency)
    LEFT JOIN LATERAL (
        SELECT fx.rate_date AS fx_date, fx.usd_per_unit_pico
        FROM stg_fx_rates AS fx
        WHERE fx.currency = e.currency AND fx.rate_date <= e.local_date
        ORDER BY fx.rate_date DESC
        LIMIT 1
    ) AS r ON TRUE
)
SELECT
    event_id, region, transaction_id, event_type, status, creator_id, product_id, channel, currency, local_date,
    amount_minor, fee_minor, net_minor, fx_date,
    CAST(sign(usd_scaled) * ((abs(usd_scaled) + scale // 2) // scale) AS BIGINT) AS net_usd_minor
FROM scaled;
