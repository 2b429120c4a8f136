-- Where each payment's events are: one row per event, with its payment's key and its local day. A late event
-- restates every day its payment has events on (kanda.regional.models.restated), and finding those days in the
-- events themselves means comparing every event's transaction_id; here it is one 8-byte column.
-- payment_key is DuckDB's hash() of transaction_id. Two payments may share a key: a build then redoes a day it did
-- not need to, never misses one. The hash may change with the DuckDB version, so the build's fingerprint names
-- the version and a new DuckDB rebuilds everything once.
-- Incremental by local day: a day's rows are that day's events.
SELECT
    hash(transaction_id) AS payment_key,
    local_date
FROM stg_sale_events
WHERE {{ in_build_days(local_date) }};
