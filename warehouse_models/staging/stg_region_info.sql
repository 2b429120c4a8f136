-- The store's own region: one row with its code, settlement currency, IANA zone and whether its rail's files state
-- fees (from the region config and its rail's reader).
SELECT region, currency, zone, fees_stated
FROM region_info;
