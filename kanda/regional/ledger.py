"""The ingestion ledger: one row per batch, chained by hash, with the conservation identity enforced.

The chain makes silent edits to history visible (`kanda verify` recomputes it), and the identity
rows_in = loaded + quarantined + duplicates is checked before a batch commits: a batch that does not balance
fails and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

import duckdb

GENESIS = "0" * 64


class UnbalancedBatch(RuntimeError):
    """A batch whose counts do not add up: something was lost or doubled, so it must not commit."""


@dataclass
class BatchCounts:
    rows_read: int = 0
    ignored: int = 0
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0

    def add(self, other: BatchCounts) -> None:
        for field in self.__dataclass_fields__:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def check_balance(self, what: str) -> None:
        if self.rows_in != self.loaded + self.quarantined + self.duplicates:
            raise UnbalancedBatch(
                f"{what}: rows in {self.rows_in} != loaded {self.loaded} + quarantined {self.quarantined}"
                f" + duplicates {self.duplicates}; nothing was written"
            )
        if self.rows_read != self.rows_in + self.ignored:
            raise UnbalancedBatch(
                f"{what}: rows read {self.rows_read} != rows in {self.rows_in} + ignored {self.ignored};"
                " nothing was written"
            )


@dataclass
class LedgerEntry:
    batch_id: str
    region: str
    kind: str
    file_name: str | None
    content_hash: str | None
    counts: BatchCounts
    started_at: dt.datetime
    finished_at: dt.datetime


def _row_hash(prev_hash: str, seq: int, entry: LedgerEntry) -> str:
    body = {
        "seq": seq,
        "batch_id": entry.batch_id,
        "region": entry.region,
        "kind": entry.kind,
        "file_name": entry.file_name,
        "content_hash": entry.content_hash,
        **asdict(entry.counts),
        "started_at": entry.started_at.astimezone(dt.UTC).isoformat(),
        "finished_at": entry.finished_at.astimezone(dt.UTC).isoformat(),
    }
    return hashlib.sha256((prev_hash + json.dumps(body, sort_keys=True)).encode()).hexdigest()


def append(con: duckdb.DuckDBPyConnection, entry: LedgerEntry) -> None:
    """Write the batch's ledger row inside the caller's transaction, after checking that it balances."""
    entry.counts.check_balance(f"batch {entry.batch_id} ({entry.file_name or entry.kind})")
    newest = con.execute("SELECT seq, row_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchall()
    last = newest[0] if newest else None
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    c = entry.counts
    con.execute(
        "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            seq,
            entry.batch_id,
            entry.region,
            entry.kind,
            entry.file_name,
            entry.content_hash,
            c.rows_read,
            c.ignored,
            c.rows_in,
            c.loaded,
            c.quarantined,
            c.duplicates,
            entry.started_at,
            entry.finished_at,
            prev_hash,
            _row_hash(prev_hash, seq, entry),
        ],
    )


def verify_chain(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Problems found in the ledger: broken links, altered rows, unbalanced batches. Empty when all is well."""
    rows = con.execute(
        "SELECT seq, batch_id, region, kind, file_name, content_hash, rows_read, ignored, rows_in, loaded,"
        " quarantined, duplicates, started_at, finished_at, prev_hash, row_hash FROM ledger ORDER BY seq"
    ).fetchall()
    problems: list[str] = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        seq, batch_id, region, kind, file_name, content_hash, *counts, started, finished, prev_hash, row_hash = row
        entry = LedgerEntry(batch_id, region, kind, file_name, content_hash, BatchCounts(*counts), started, finished)
        if seq != expected_seq:
            problems.append(f"ledger row {seq}: expected sequence number {expected_seq} (a row is missing)")
        if prev_hash != prev:
            problems.append(f"ledger row {seq}: does not link to the row before it")
        if _row_hash(prev_hash, seq, entry) != row_hash:
            problems.append(f"ledger row {seq} ({file_name or kind}): contents do not match its hash (edited?)")
        try:
            entry.counts.check_balance(f"ledger row {seq} ({file_name or kind})")
        except UnbalancedBatch as exc:
            problems.append(str(exc))
        prev = row_hash
    return problems
