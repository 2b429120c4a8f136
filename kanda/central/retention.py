"""How long a publication stays readable, and letting go of the older ones so that publishing stays as fast.

Every publish adds a snapshot to each rollup table (two: pyiceberg's overwrite deletes, then appends) and a data
file to `rollups.publications`. Kept for ever, they made every later publish slower: pyiceberg copies a table's
whole metadata, every snapshot in it, several times per commit, and finding the newest publication read every
file of the publications table. Measured on the 2-core machine, one small region published again and again took
0.3 s at its first publish and 4.9 s at its 275th, and `kanda query` 0.12 s then 1 s.

So a publish lets go of what no reader can still ask for. A publication stays readable (`kanda query --as-of`, the
API's `as_of`) for `KANDA_KEEP_PUBLICATIONS_HOURS` (a week by default) after it was made, while it is among the newest
`KANDA_KEEP_PUBLICATIONS` (200 by default: the count bounds what a publish costs, about 15-25 ms per publication
kept, on an installation that publishes often), and each region's newest publication stays readable whatever its
age (its row anchors the region's ledger head, `kanda verify`). Once `LET_GO_AT` publications are past that, the
publish that notices it, under the publish lock and after its own publication committed:

1. rewrites `rollups.publications` with the kept rows only, as one data file (a reader of the history sees the kept
   publications or, before this commit, all of them; never a mix), then
2. expires, in each table, every snapshot that no kept publication names (never a table's current snapshot).

The data files that only expired snapshots named are then orphans, which `kanda orphans --delete` removes once
they are older than its margin. A reader that was building a let-go publication's file at that moment fails with
`DataUnavailable`; asked again, the publication is unknown, with a message naming the setting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from kanda.central.catalog import NAMESPACE, PUBLICATIONS_SCHEMA

log = logging.getLogger(__name__)

#: Let go only once this many publications are past their time: each round rewrites the publications table and
#: commits once per table, so a busy installation pays for it once every this many publishes, not every time.
LET_GO_AT = 16


def kept(history: list[dict], cutoff: dt.datetime, at_most: int) -> list[dict]:
    """The publications that stay readable: the newest `at_most` of those made at or after `cutoff`, and each
    region's newest."""
    ordered = sorted(history, key=_order)
    newest = {row["region"]: row["publish_id"] for row in ordered}
    recent = {row["publish_id"] for row in ordered[-at_most:] if row["published_at"] >= cutoff}
    return [row for row in ordered if row["publish_id"] in recent or newest[row["region"]] == row["publish_id"]]


def let_go_of_old_publications(
    catalog: SqlCatalog,
    publications: Table,
    tables: list[str],
    *,
    keep_for: dt.timedelta,
    at_most: int,
    now: dt.datetime,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> int:
    """Call under the publish lock, after this publish's own row committed to `publications` (the table object it
    appended through). Returns how many publications were let go (0 below `LET_GO_AT`).

    Each step is one commit, so a process killed between two (`checkpoint` names each gap, for the crash tests)
    leaves only snapshots that no kept publication names: readers never see them, and the next round that lets go
    expires them with the rest."""
    history = publications.scan().to_arrow().to_pylist()
    keep = kept(history, now - keep_for, at_most)
    gone = len(history) - len(keep)
    if gone < LET_GO_AT:
        return 0
    publications.overwrite(pa.Table.from_pylist(keep, schema=PUBLICATIONS_SCHEMA))
    checkpoint("let_go:after_history")
    named = {name: {row[f"{name}_snapshot"] for row in keep} - {None} for name in tables}
    _expire(publications, set())
    for name in tables:
        _expire(catalog.load_table(f"{NAMESPACE}.{name}"), named[name])
        checkpoint(f"let_go:after_expire:{name}")
    log.info(
        "let go of %d publication(s); %d kept (made since %s, at most %d, each region's newest)",
        gone,
        len(keep),
        (now - keep_for).isoformat(),
        at_most,
    )
    return gone


def _expire(table: Table, named: set[int]) -> None:
    current = table.current_snapshot()
    keep = named | ({current.snapshot_id} if current is not None else set())
    old = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id not in keep]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()


def _order(row: dict) -> tuple:
    return row["published_at"], row["publish_id"]
