-- A region's day: money, payment failure and reversal rates, and how much of the input was quarantined.
-- net_usd_minor sums the events' own USD cents (int_usd_amounts), so it equals the sum over the region's
-- creator_daily and product_daily rows of the day exactly. A day with no money movement (only failed or pending
-- payments, or only quarantined rows) has net 0 in USD whatever the rate, and no fx_date.
-- The payment rates are int_payment_rates' all-channel rows (defined there once).
-- quarantine_rate: rows quarantined for that day over rows loaded plus quarantined for it.
-- fees_stated: true only if every event summed comes from a rail that states fees (fct_daily_money); a day
-- without money movement answers by the region's current rail (its fees are 0 either way).
-- Incremental by local day: every input is filtered to the build's days.
WITH money AS (
    SELECT
        region, local_date, currency,
        CAST(sum(orders) AS BIGINT) AS orders,
        CAST(sum(gross_minor) AS BIGINT) AS gross_minor,
        CAST(sum(refunds_minor) AS BIGINT) AS refunds_minor,
        CAST(sum(reversals_minor) AS BIGINT) AS reversals_minor,
        CAST(sum(fees_minor) AS BIGINT) AS fees_minor,
        bool_and(fees_stated) AS fees_stated,
        CAST(sum(net_minor) AS BIGINT) AS net_minor,
        any_value(fx_date) AS fx_date,
        CAST(sum(net_usd_minor) AS BIGINT) AS net_usd_minor
    FROM fct_daily_money
    WHERE {{ in_build_days(local_date) }}
    GROUP BY region, local_date, currency
),
rates AS (
    SELECT * FROM int_payment_rates WHERE all_channels AND {{ in_build_days(local_date) }}
),
loaded AS (
    SELECT region, local_date, count(*) AS rows_loaded FROM stg_sale_events WHERE {{ in_build_days(local_date) }}
    GROUP BY ALL
),
flagged AS (
    SELECT region, local_date, count(*) AS rows_quarantined FROM stg_quarantine
    WHERE status <> 'released' AND {{ in_build_days(local_date) }}
    GROUP BY ALL
),
days AS (
    SELECT region, local_date FROM loaded UNION SELECT region, local_date FROM flagged
)
SELECT
    days.region,
    days.local_date,
    info.currency,
    coalesce(m.orders, 0) AS orders,
    coalesce(m.gross_minor, 0) AS gross_minor,
    coalesce(m.refunds_minor, 0) AS refunds_minor,
    coalesce(m.reversals_minor, 0) AS reversals_minor,
    coalesce(m.fees_minor, 0) AS fees_minor,
    coalesce(m.fees_stated, info.fees_stated) AS fees_stated,
    coalesce(m.net_minor, 0) AS net_minor,
    m.fx_date,
    CASE WHEN m.region IS NULL THEN 0 ELSE m.net_usd_minor END AS net_usd_minor,
    coalesce(p.payments, 0) AS payments,
    coalesce(p.failed_payments, 0) AS failed_payments,
    coalesce(p.payment_failure_rate, 0.0) AS payment_failure_rate,
    coalesce(p.reversal_rate, 0.0) AS reversal_rate,
    coalesce(l.rows_loaded, 0) AS rows_loaded,
    coalesce(f.rows_quarantined, 0) AS rows_quarantined,
    coalesce(f.rows_quarantined / nullif(coalesce(l.rows_loaded, 0) + f.rows_quarantined, 0), 0.0)
        AS quarantine_rate
FROM days
CROSS JOIN (SELECT currency, fees_stated FROM stg_region_info) AS info
LEFT JOIN money AS m ON m.region = days.region AND m.local_date = days.local_date AND m.currency = info.currency
LEFT JOIN rates AS p ON p.region = days.region AND p.local_date = days.local_date
LEFT JOIN loaded AS l ON l.region = days.region AND l.local_date = days.local_date
LEFT JOIN flagged AS f ON f.region = days.region AND f.local_date = days.local_date
ORDER BY days.local_date;
