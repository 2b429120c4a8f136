-- A region's day: money, payment failure and reversal rates, and how much of the input was quarantined.
-- payment_failure_rate: payments first seen that day whose latest status is failed, over all payments first seen.
-- reversal_rate: payments that succeeded that day and are now reversed, over payments that succeeded that day.
-- quarantine_rate: rows quarantined for that day over rows loaded plus quarantined for it.
CREATE OR REPLACE TABLE region_daily AS
WITH money AS (
    SELECT
        region, local_date, currency,
        CAST(sum(orders) AS BIGINT) AS orders,
        CAST(sum(gross_minor) AS BIGINT) AS gross_minor,
        CAST(sum(refunds_minor) AS BIGINT) AS refunds_minor,
        CAST(sum(reversals_minor) AS BIGINT) AS reversals_minor,
        CAST(sum(fees_minor) AS BIGINT) AS fees_minor,
        CAST(sum(net_minor) AS BIGINT) AS net_minor
    FROM fct_daily_money
    GROUP BY ALL
),
attempts AS (
    SELECT region, first_seen_date AS local_date,
        count(*) AS payments,
        count(*) FILTER (WHERE sale_status = 'failed') AS failed_payments
    FROM fct_sales GROUP BY ALL
),
reversals AS (
    SELECT region, sale_date AS local_date,
        count(*) AS successful_payments,
        count(*) FILTER (WHERE current_state = 'reversed') AS reversed_payments
    FROM fct_sales WHERE sale_date IS NOT NULL GROUP BY ALL
),
loaded AS (
    SELECT region, local_date, count(*) AS rows_loaded FROM stg_sale_events GROUP BY ALL
),
flagged AS (
    SELECT region, local_date, count(*) AS rows_quarantined FROM stg_quarantine WHERE status <> 'released'
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
    coalesce(m.net_minor, 0) AS net_minor,
    fx.rate_date AS fx_date,
    CAST(round(coalesce(m.net_minor, 0) * fx.usd_per_unit * CAST(10 ** (2 - c.exponent) AS BIGINT)) AS BIGINT)
        AS net_usd_minor,
    coalesce(a.payments, 0) AS payments,
    coalesce(a.failed_payments, 0) AS failed_payments,
    coalesce(a.failed_payments / nullif(a.payments, 0), 0.0) AS payment_failure_rate,
    coalesce(r.reversed_payments / nullif(r.successful_payments, 0), 0.0) AS reversal_rate,
    coalesce(l.rows_loaded, 0) AS rows_loaded,
    coalesce(f.rows_quarantined, 0) AS rows_quarantined,
    coalesce(f.rows_quarantined / nullif(coalesce(l.rows_loaded, 0) + f.rows_quarantined, 0), 0.0)
        AS quarantine_rate
FROM days
CROSS JOIN (SELECT currency FROM region_info) AS info
LEFT JOIN money AS m USING (region, local_date)
LEFT JOIN attempts AS a USING (region, local_date)
LEFT JOIN reversals AS r USING (region, local_date)
LEFT JOIN loaded AS l USING (region, local_date)
LEFT JOIN flagged AS f USING (region, local_date)
JOIN currencies AS c ON c.currency = info.currency
ASOF LEFT JOIN stg_fx_rates AS fx ON fx.currency = info.currency AND days.local_date >= fx.rate_date
ORDER BY days.local_date;
