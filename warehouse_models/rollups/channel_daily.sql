-- A region's day per payment channel (card, mpesa, bank, ...; 'unknown' when the rail did not say): payment
-- failure and reversal rates, with the counts behind them so that they stay exact when summed. The rates are
-- defined once, in int_payment_rates; summed over channels, payments and failed_payments equal region_daily's.
SELECT
    p.region,
    p.local_date,
    p.channel,
    info.currency,
    p.payments,
    p.failed_payments,
    p.successful_payments,
    p.reversed_payments,
    p.payment_failure_rate,
    p.reversal_rate
FROM int_payment_rates AS p
CROSS JOIN (SELECT currency FROM stg_region_info) AS info
WHERE NOT p.all_channels AND {{ in_build_days(p.local_date) }}
ORDER BY p.local_date, p.channel;
