-- Loaded sale events as the models use them. buyer_ref stays here (regional); no rollup selects it.
-- voided: a successful reversal that the rail restated as failed, at the same instant (a dispute the seller won:
-- Gumroad books a reversal and its won dispute at the purchase's time, so both carry it), whichever export was read
-- first. A payment is reversed at most once, so the failed reversal of the same rail, payment and instant is that
-- reversal said again. A failed attempt at another time is not (JazzCash, MoMo and MTN report a reversal that
-- failed and its retry that succeeded: the retry stands). The join also matches the local day, so that reading a
-- day's events reads only that day's failed reversals (the day filter reaches both sides) and an incremental build
-- stays independent of history. Money is what succeeded and is not voided; the failed event itself moves none.
SELECT
    e.event_id,
    e.region,
    e.source,
    e.batch_id,
    e.transaction_id,
    e.event_type,
    e.status,
    won.transaction_id IS NOT NULL AS voided,
    e.creator_id,
    e.product_id,
    coalesce(e.channel, 'unknown') AS channel,
    e.amount_minor,
    e.fee_minor,
    e.net_minor,
    e.currency,
    e.occurred_at,
    e.local_date
FROM sale_events AS e
LEFT JOIN (
    SELECT DISTINCT source, transaction_id, event_type, occurred_at, local_date
    FROM sale_events
    WHERE status = 'failed' AND event_type IN ('reversal', 'chargeback') AND {{ in_build_days(local_date) }}
) AS won
    ON e.status = 'success' AND won.source = e.source AND won.transaction_id = e.transaction_id
    AND won.event_type = e.event_type AND won.occurred_at = e.occurred_at AND won.local_date = e.local_date;
