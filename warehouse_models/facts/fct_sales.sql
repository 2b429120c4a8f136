-- One row per payment (transaction): its latest sale status and everything that later took money back.
-- The "current state" of a sale follows its events: pending -> success, success -> refunded / reversed.
-- Incremental by payment: the build's payments are those with an event on a changed day, and its days hold every
-- event of those payments, so the day filter only skips other days' events early; the payment filter decides.
-- A payment's creator, product, currency and channel are those of its latest sale event, as its status is: where
-- its events disagree (a pending attempt by card, the success by bank transfer), any_value would take whichever
-- the scan met first, and an incremental build could then differ from a full one.
WITH latest_sale AS (
    SELECT
        transaction_id,
        any_value(region) AS region,
        -- latest status wins; at equal times success beats failed beats pending (one event per status: no ties)
        arg_max(
            {'creator_id': creator_id, 'product_id': product_id, 'currency': currency, 'channel': channel,
             'status': status},
            epoch_us(occurred_at) * 4 + CASE status WHEN 'success' THEN 3 WHEN 'failed' THEN 2 ELSE 1 END
        ) AS latest,
        min(local_date) AS first_seen_date,
        min(local_date) FILTER (WHERE status = 'success') AS sale_date,
        max(amount_minor) FILTER (WHERE status = 'success') AS gross_minor
    FROM stg_sale_events
    WHERE event_type = 'sale' AND {{ in_build_days(local_date) }} AND {{ in_build_payments(transaction_id) }}
    GROUP BY transaction_id
),
sale_attempts AS (
    SELECT
        transaction_id,
        region,
        latest.creator_id AS creator_id,
        latest.product_id AS product_id,
        latest.currency AS currency,
        latest.channel AS channel,
        first_seen_date,
        sale_date,
        gross_minor,
        latest.status AS sale_status
    FROM latest_sale
),
money_back AS (
    SELECT
        transaction_id,
        -sum(amount_minor) FILTER (WHERE event_type = 'refund') AS refunded_minor,
        -sum(amount_minor) FILTER (WHERE event_type IN ('reversal', 'chargeback')) AS reversed_minor
    FROM stg_sale_events
    WHERE event_type <> 'sale' AND status = 'success' AND NOT voided
        AND {{ in_build_days(local_date) }} AND {{ in_build_payments(transaction_id) }}
    GROUP BY transaction_id
)
SELECT
    s.*,
    coalesce(m.refunded_minor, 0) AS refunded_minor,
    coalesce(m.reversed_minor, 0) AS reversed_minor,
    CASE
        WHEN coalesce(m.reversed_minor, 0) > 0 THEN 'reversed'
        WHEN coalesce(m.refunded_minor, 0) >= s.gross_minor THEN 'refunded'
        WHEN coalesce(m.refunded_minor, 0) > 0 THEN 'partially_refunded'
        ELSE s.sale_status
    END AS current_state
FROM sale_attempts AS s
LEFT JOIN money_back AS m USING (transaction_id);
