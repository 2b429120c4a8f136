-- Successful money movements on the local day they happened (cash basis): sales add, refunds, reversals and
-- chargebacks take away on the day they occur. A late refund therefore lands on its own day. A voided reversal (a
-- dispute the seller won, stg_sale_events) takes nothing.
-- net_usd_minor is the sum of the events' own USD cents (int_usd_amounts); nothing here rounds.
-- fees_stated: true only if every event summed comes from a rail that states fees.
-- Incremental by local day: a day's rows depend only on that day's events.
SELECT
    region,
    local_date,
    creator_id,
    product_id,
    currency,
    count(*) FILTER (WHERE event_type = 'sale') AS orders,
    CAST(coalesce(sum(amount_minor) FILTER (WHERE event_type = 'sale'), 0) AS BIGINT) AS gross_minor,
    CAST(coalesce(-sum(amount_minor) FILTER (WHERE event_type = 'refund'), 0) AS BIGINT) AS refunds_minor,
    CAST(coalesce(-sum(amount_minor) FILTER (WHERE event_type IN ('reversal', 'chargeback')), 0) AS BIGINT) AS reversals_minor,
    CAST(sum(fee_minor) AS BIGINT) AS fees_minor,
    bool_and(fees_stated) AS fees_stated,
    CAST(sum(net_minor) AS BIGINT) AS net_minor,
    -- one rate per currency and day, so within a group the events share it (or all lack one: NULL)
    any_value(fx_date) AS fx_date,
    CAST(sum(net_usd_minor) AS BIGINT) AS net_usd_minor
FROM int_usd_amounts
WHERE status = 'success' AND NOT voided AND {{ in_build_days(local_date) }}
GROUP BY region, local_date, creator_id, product_id, currency;
