"""What names a publication, importable without the Iceberg library.

`kanda query` and the API only need these names and the publication's read-only DuckDB file on their fast path;
`kanda.central.catalog` (which imports pyiceberg, a third of a one-shot query's start-up) re-exports them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from warehouse_models import published

NAMESPACE = "rollups"
PUBLICATIONS = "publications"


@dataclass(frozen=True)
class Publication:
    publish_id: str
    region: str
    published_at: dt.datetime
    snapshots: dict[str, int | None]  # None: the table did not exist yet at this publication


PUBLICATIONS_DESCRIPTION = (
    "One row per publish: the Iceberg snapshot of every rollup table that became visible together, and the "
    "region's ledger head it anchored. Readers read exactly the snapshots of one row."
)
#: What each `rollups.publications` column holds: its Iceberg field doc (the rollups' docs come from models.yml).
PUBLICATION_DOCS = {
    "publish_id": "The publication id (region, UTC time, a random suffix: KE-20261123T171422-57d14a23); as_of takes it",
    "region": "Region code of the region whose publish this was",
    "published_at": "When the publication became visible to readers (unit: UTC timestamp)",
    "days": "Local days the publish replaced in that region (unit: count)",
    "rows": "Rollup rows the publish wrote, over all tables (unit: count)",
    **{
        f"{table}_snapshot": f"Iceberg snapshot id of rollups.{table} that this publication reads; NULL when the "
        "table did not exist yet"
        for table in published()
    },
    "ledger_seq": "Sequence number of the region's newest ledger batch when it published; NULL before anchoring",
    "ledger_batch_id": "That ledger batch's id; NULL before anchoring",
    "ledger_hash": "That ledger row's hash in the region's hash chain; NULL before anchoring",
    "ledger_rows_read": "Input rows read by the region up to that batch (unit: count); NULL before anchoring",
    "ledger_loaded": "Rows loaded by the region up to that batch (unit: count); NULL before anchoring",
    "ledger_quarantined": "Rows quarantined by the region up to that batch (unit: count); NULL before anchoring",
    "ledger_duplicates": "Duplicate rows seen by the region up to that batch (unit: count); NULL before anchoring",
}
