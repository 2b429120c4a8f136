-- THE USD rule, the only place a local amount becomes US cents. Every rollup sums this model's integers, so the
-- USD totals of region_daily, creator_daily and product_daily agree to the cent for any region and period.
--  * rate: the latest rate on or before the event's local day (as-of join); fx_date says which one. Before the
--    first known rate there is none, and a rate more than 14 days older than the day (a rates file no one updated:
--    the table is weekly) is none either: net_usd_minor is NULL (`kanda verify` reports it), never a stale figure.
--  * rounding: once per event row, to the nearest cent, halves away from zero, in exact integer arithmetic
--    (minor units x pico-USD rate; no floating point). A refund converts to exactly minus its sale on the same day.
-- `events` is read twice; NOT MATERIALIZED inlines it into both readers. During an incremental build this view
-- holds the build's days only (its macro; kanda.regional.models.run_models), so that both readers skip other days:
-- a day filter on the view's result would not reach the days read for `rates`.
-- fees_stated: whether the rail that read the event stated fees then (stg_batch_rails; an event of no recorded batch
-- and rail does not count as stated).
WITH events AS NOT MATERIALIZED (
    SELECT e.*, c.exponent, coalesce(rail.fees_stated, false) AS fees_stated
    FROM stg_sale_events AS e
    JOIN stg_currencies AS c USING (currency)
    LEFT JOIN stg_batch_rails AS rail USING (batch_id, source)
    WHERE {{ in_build_days(e.local_date) }}
),
-- one rate lookup per currency and day, not per event
days AS (
    SELECT DISTINCT currency, local_date FROM events
),
rates AS (
    SELECT d.currency, d.local_date, fx.rate_date AS fx_date, fx.usd_per_unit_pico
    FROM days AS d
    ASOF LEFT JOIN stg_fx_rates AS fx ON fx.currency = d.currency AND d.local_date >= fx.rate_date
),
current_rates AS (
    SELECT currency, local_date, fx_date, usd_per_unit_pico
    FROM rates
    WHERE date_diff('day', fx_date, local_date) <= 14
),
scaled AS (
    SELECT
        e.event_id, e.region, e.transaction_id, e.event_type, e.status, e.voided, e.creator_id, e.product_id,
        e.channel, e.currency, e.local_date, e.amount_minor, e.fee_minor, e.fees_stated, e.net_minor, r.fx_date,
        -- US cents x 10^(exponent + 12): numerator and denominator of the exact conversion
        CAST(e.net_minor AS HUGEINT) * r.usd_per_unit_pico * 100 AS usd_scaled,
        CAST(10 ** (e.exponent + 12) AS HUGEINT) AS scale
    FROM events AS e
    LEFT JOIN current_rates AS r USING (currency, local_date)
)
SELECT
    event_id, region, transaction_id, event_type, status, voided, creator_id, product_id, channel, currency,
    local_date, amount_minor, fee_minor, fees_stated, net_minor, fx_date,
    CAST(sign(usd_scaled) * ((abs(usd_scaled) + scale // 2) // scale) AS BIGINT) AS net_usd_minor
FROM scaled;
