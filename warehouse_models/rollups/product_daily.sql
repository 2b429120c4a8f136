-- A product's day: orders and money in minor units, net in USD cents (the sum of its events' USD cents, see
-- int_usd_amounts). fct_daily_money already has this grain. fees_stated: as in creator_daily.
SELECT
    region, local_date, creator_id, product_id, currency,
    orders, gross_minor, refunds_minor, reversals_minor, fees_minor, fees_stated, net_minor,
    fx_date,
    net_usd_minor
FROM fct_daily_money
WHERE {{ in_build_days(local_date) }}
ORDER BY local_date, product_id;
