-- A product's day: orders and money in minor units, net in USD cents (same FX rule as creator_daily).
CREATE OR REPLACE TABLE product_daily AS
SELECT
    d.region, d.local_date, d.creator_id, d.product_id, d.currency,
    d.orders, d.gross_minor, d.refunds_minor, d.reversals_minor, d.fees_minor, d.net_minor,
    fx.rate_date AS fx_date,
    CAST(round(d.net_minor * fx.usd_per_unit * CAST(10 ** (2 - c.exponent) AS BIGINT)) AS BIGINT) AS net_usd_minor
FROM fct_daily_money AS d
JOIN currencies AS c USING (currency)
ASOF LEFT JOIN stg_fx_rates AS fx ON fx.currency = d.currency AND d.local_date >= fx.rate_date
ORDER BY d.local_date, d.product_id;
