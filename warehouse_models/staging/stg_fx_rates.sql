-- USD per one major unit of each currency, effective from rate_date until the next rate. usd_per_unit_pico is the
-- same rate as an exact integer (10^-12 USD per major unit) so that the USD rule can stay in integer arithmetic.
SELECT
    currency,
    rate_date,
    usd_per_unit,
    CAST(usd_per_unit * CAST(1000000000000 AS DECIMAL(13, 0)) AS HUGEINT) AS usd_per_unit_pico
FROM fx_rates;
