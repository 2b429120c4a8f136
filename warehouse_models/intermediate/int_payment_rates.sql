-- Payment counts and rates per region, local day and channel, and per region and local day over all channels
-- (channel NULL): the one definition of both rates, which region_daily and channel_daily select from.
-- payment_failure_rate: payments first seen that day whose latest status is failed, over all payments first seen.
-- reversal_rate: payments that succeeded that day and are now reversed, over payments that succeeded that day.
-- A payment's channel is the one fct_sales keeps for it ('unknown' when the rail did not say), so summed over
-- channels, the counts equal the all-channel row's.
-- Incremental by local day: a day counts the payments first seen or succeeded on it; a payment whose state a
-- late event changed is on the build's days (they include every day of every changed payment).
WITH sales AS (
    SELECT region, coalesce(channel, 'unknown') AS channel, first_seen_date, sale_date, sale_status, current_state
    FROM fct_sales
),
attempts AS (
    SELECT region, first_seen_date AS local_date, channel, GROUPING(channel) = 1 AS all_channels,
        count(*) AS payments,
        count(*) FILTER (WHERE sale_status = 'failed') AS failed_payments
    FROM sales
    WHERE {{ in_build_days(first_seen_date) }}
    GROUP BY GROUPING SETS ((region, first_seen_date, channel), (region, first_seen_date))
),
reversals AS (
    SELECT region, sale_date AS local_date, channel, GROUPING(channel) = 1 AS all_channels,
        count(*) AS successful_payments,
        count(*) FILTER (WHERE current_state = 'reversed') AS reversed_payments
    FROM sales
    WHERE sale_date IS NOT NULL AND {{ in_build_days(sale_date) }}
    GROUP BY GROUPING SETS ((region, sale_date, channel), (region, sale_date))
)
SELECT
    coalesce(a.region, r.region) AS region,
    coalesce(a.local_date, r.local_date) AS local_date,
    coalesce(a.channel, r.channel) AS channel,
    coalesce(a.all_channels, r.all_channels) AS all_channels,
    CAST(coalesce(a.payments, 0) AS BIGINT) AS payments,
    CAST(coalesce(a.failed_payments, 0) AS BIGINT) AS failed_payments,
    CAST(coalesce(r.successful_payments, 0) AS BIGINT) AS successful_payments,
    CAST(coalesce(r.reversed_payments, 0) AS BIGINT) AS reversed_payments,
    coalesce(a.failed_payments / nullif(a.payments, 0), 0.0) AS payment_failure_rate,
    coalesce(r.reversed_payments / nullif(r.successful_payments, 0), 0.0) AS reversal_rate
FROM attempts AS a
FULL JOIN reversals AS r
    ON r.region = a.region AND r.local_date = a.local_date AND r.all_channels = a.all_channels
    AND r.channel IS NOT DISTINCT FROM a.channel;
