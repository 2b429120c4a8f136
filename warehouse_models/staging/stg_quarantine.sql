-- Quarantined rows by the local day they belong to; rows too broken to have a date count on the region's local
-- day on which they arrived.
SELECT
    q.region,
    coalesce(q.local_date, CAST(timezone(info.zone, q.quarantined_at) AS DATE)) AS local_date,
    q.status,
    q.hold
FROM quarantine AS q
CROSS JOIN (SELECT zone FROM stg_region_info) AS info;
