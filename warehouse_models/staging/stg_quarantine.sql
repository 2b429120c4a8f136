-- Quarantined rows by the local day they belong to; rows too broken to have a date count on the day they arrived.
CREATE OR REPLACE VIEW stg_quarantine AS
SELECT
    region,
    coalesce(local_date, CAST(quarantined_at AS DATE)) AS local_date,
    status,
    hold
FROM quarantine;
