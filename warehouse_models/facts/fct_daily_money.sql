-- Successful money movements on the local day they happened (cash basis): sales add, refunds, reversals and
-- chargebacks take away on the day they occur. A late refund therefore lands on its own day.
CREATE OR REPLACE TABLE fct_daily_money AS
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
    CAST(sum(net_minor) AS BIGINT) AS net_minor
FROM stg_sale_events
WHERE status = 'success'
GROUP BY ALL;
