-- USD per one major unit of each currency, effective from rate_date until the next rate.
CREATE OR REPLACE VIEW stg_fx_rates AS
SELECT currency, rate_date, usd_per_unit
FROM fx_rates;
