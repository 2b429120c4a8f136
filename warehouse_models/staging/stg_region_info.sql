-- The store's own region: one row with its code, settlement currency and IANA zone (from the region config).
SELECT region, currency, zone
FROM region_info;
