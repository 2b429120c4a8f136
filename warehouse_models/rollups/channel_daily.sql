-- A region's day per payment channel (card, mpesa, bank, ...; 'unknown' when the rail did not say): payment
-- failure and reversal rates, with the counts behind them so that they stay exact when summed.
-- Same definitions as region_daily (a payment's channel is the one fct_sales keeps for it), so that summed over
-- channels, payments and failed_payments equal region_daily's and the reversal rate is region_daily's.
-- payment_failure_rate: payments first seen that day whose latest status is failed, over all payments first seen.
-- reversal_rate: payments that succeeded that day and are now reversed, over payments that succeeded that day.
CREATE OR REPLACE TABLE channel_daily AS
WITH sales AS (
    SELECT region, coalesce(channel, 'unknown') AS channel, first_seen_date, sale_date, sale_status, current_state
    FROM fct_sales
),
attempts AS (
    SELECT region, first_seen_date AS local_date, channel,
        count(*) AS payments,
        count(*) FILTER (WHERE sale_status = 'failed') AS failed_payments
    FROM sales GROUP BY ALL
),
reversals AS (
    SELECT region, sale_date AS local_date, channel,
        count(*) AS successful_payments,
        count(*) FILTER (WHERE current_state = 'reversed') AS reversed_payments
    FROM sales WHERE sale_date IS NOT NULL GROUP BY ALL
)
SELECT
    region,
    local_date,
    channel,
    info.currency,
    CAST(coalesce(a.payments, 0) AS BIGINT) AS payments,
    CAST(coalesce(a.failed_payments, 0) AS BIGINT) AS failed_payments,
    CAST(coalesce(r.successful_payments, 0) AS BIGINT) AS successful_payments,
    CAST(coalesce(r.reversed_payments, 0) AS BIGINT) AS reversed_payments,
    coalesce(a.failed_payments / nullif(a.payments, 0), 0.0) AS payment_failure_rate,
    coalesce(r.reversed_payments / nullif(r.successful_payments, 0), 0.0) AS reversal_rate
FROM attempts AS a
FULL JOIN reversals AS r USING (region, local_date, channel)
CROSS JOIN (SELECT currency FROM region_info) AS info
ORDER BY local_date, channel;
