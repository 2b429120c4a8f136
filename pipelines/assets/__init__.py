"""Assets by stage of the region flow: `regional` (store, models, review queue), `central` (published rollup
tables, BI snapshot) and `reports` (creators' daily reports)."""
