-- Loaded sale events as the models use them. buyer_ref stays here (regional); no rollup selects it.
SELECT
    event_id,
    region,
    source,
    batch_id,
    transaction_id,
    event_type,
    status,
    creator_id,
    product_id,
    coalesce(channel, 'unknown') AS channel,
    amount_minor,
    fee_minor,
    net_minor,
    currency,
    occurred_at,
    local_date
FROM sale_events;
