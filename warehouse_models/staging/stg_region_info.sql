-- The store's own region: one row with its code, settlement currency and IANA zone (from the region config).
CREATE OR REPLACE VIEW stg_region_info AS
SELECT region, currency, zone
FROM region_info;
