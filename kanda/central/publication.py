"""What names a publication, importable without the Iceberg library.

`kanda query` and the API only need these names and the publication's read-only DuckDB file on their fast path;
`kanda.central.catalog` (which imports pyiceberg, a third of a one-shot query's start-up) re-exports them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

NAMESPACE = "rollups"
PUBLICATIONS = "publications"


@dataclass(frozen=True)
class Publication:
    publish_id: str
    region: str
    published_at: dt.datetime
    snapshots: dict[str, int | None]  # None: the table did not exist yet at this publication
