-- Loaded sale events as the models use them. buyer_ref stays here (regional); no rollup selects it.
-- voided: a successful reversal that the rail later reported failed (a dispute the seller won: the money taken came
-- back), whichever export was read first. A payment is reversed at most once, so a failed reversal of the same rail
-- and payment names it; on the same local day, as the one rail that reports it (Gumroad) books both at the
-- purchase's time, so that reading a day's events reads only that day's failed reversals (the day filter reaches
-- both sides of the join) and an incremental build stays independent of history. Money is what succeeded and is
-- not voided; the failed event itself moves none.
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
    SELECT DISTINCT source, transaction_id, event_type, local_date
    FROM sale_events
    WHERE status = 'failed' AND event_type IN ('reversal', 'chargeback') AND {{ in_build_days(local_date) }}
) AS won
    ON e.status = 'success' AND won.source = e.source AND won.transaction_id = e.transaction_id
    AND won.event_type = e.event_type AND won.local_date = e.local_date;
