-- A creator's day in their region: orders and money in minor units, and net in USD cents.
-- USD rule: the latest rate on or before the local day (as-of join); fx_date says which one was used. Before the
-- first known rate there is no conversion: net_usd_minor is NULL and `kanda verify` reports it.
CREATE OR REPLACE TABLE creator_daily AS
WITH daily AS (
    SELECT
        region, local_date, creator_id, currency,
        CAST(sum(orders) AS BIGINT) AS orders,
        CAST(sum(gross_minor) AS BIGINT) AS gross_minor,
        CAST(sum(refunds_minor) AS BIGINT) AS refunds_minor,
        CAST(sum(reversals_minor) AS BIGINT) AS reversals_minor,
        CAST(sum(fees_minor) AS BIGINT) AS fees_minor,
        CAST(sum(net_minor) AS BIGINT) AS net_minor
    FROM fct_daily_money
    GROUP BY ALL
)
SELECT
    d.*,
    fx.rate_date AS fx_date,
    CAST(round(d.net_minor * fx.usd_per_unit * CAST(10 ** (2 - c.exponent) AS BIGINT)) AS BIGINT) AS net_usd_minor
FROM daily AS d
JOIN currencies AS c USING (currency)
ASOF LEFT JOIN stg_fx_rates AS fx ON fx.currency = d.currency AND d.local_date >= fx.rate_date
ORDER BY d.local_date, d.creator_id;
