"""The ledger heads publications anchor centrally, and whether a regional chain still passes through them.

`kanda verify` checks every anchored head (`kanda.checks.verify.ledger_anchors`); `kanda publish` checks the newest
before it publishes (`kanda.central.publish`), so a store that does not hold the published history is not
published over it.
"""

from __future__ import annotations

import duckdb
from pyiceberg.catalog.sql import SqlCatalog

from kanda.central.catalog import LEDGER_ANCHOR, publication_rows


def anchored_heads(catalog: SqlCatalog) -> dict[str, list[dict]]:
    """Per region, the ledger heads its publications anchored (publications from before anchoring have none)."""
    heads: dict[str, list[dict]] = {}
    for row in publication_rows(catalog):
        if row.get("ledger_seq") is not None:
            heads.setdefault(row["region"], []).append(row)
    return heads


def anchor_problems(con: duckdb.DuckDBPyConnection, anchors: list[dict]) -> list[str]:
    """What differs between each anchored head and the store's chain at that row (none: it passes through all)."""
    chain = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT seq, batch_id, row_hash, sum(rows_read) OVER w, sum(loaded) OVER w, sum(quarantined) OVER w,"
            " sum(duplicates) OVER w FROM ledger WINDOW w AS (ORDER BY seq)"
        ).fetchall()
    }
    names = [field.name for field in LEDGER_ANCHOR[1:]]
    problems = []
    for anchor in anchors:
        seq, batch = anchor["ledger_seq"], anchor["ledger_batch_id"]
        found = chain.get(seq)
        where = f"publication {anchor['publish_id']} anchored batch {batch} at ledger row {seq}"
        if found is None:
            problems.append(f"{where}, which the regional ledger no longer has")
            continue
        differ = [name.removeprefix("ledger_") for name, got in zip(names, found, strict=True) if anchor[name] != got]
        if differ:
            problems.append(f"{where}; the regional chain differs there in {', '.join(differ)} (history rewritten?)")
    return problems
