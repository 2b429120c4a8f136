-- A creator's day in their region: orders and money in minor units, and net in USD cents: the sum of the events'
-- own USD cents (int_usd_amounts), so it adds up exactly to region_daily's and to the creator's product_daily rows.
-- fees_stated: true only if every event summed comes from a rail that states fees (fct_daily_money); when not,
-- fees_minor leaves those events' charges out and net is before them.
SELECT
    region, local_date, creator_id, currency,
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
GROUP BY region, local_date, creator_id, currency
ORDER BY local_date, creator_id;
