"""The ingestion ledger: one row per batch, chained by hash, with the conservation identity enforced.

The chain makes silent edits to history visible (`kanda verify` recomputes it), and the identity
rows_in = loaded + quarantined + duplicates is checked before a batch commits: a batch that does not balance
fails and writes nothing.

Each batch's row also records the batch's money (`batch_money`: its events, the sums of their amounts, fees and
nets, and a digest of sums weighted by day, owner and line), hashed into the chain and so carried by every head a
publication anchors. Counts alone could not see an event changed in place: its amount, day, creator or product
edited, the models rebuilt, and the edited figure published with nothing left to disagree with it. `kanda verify`
sums each batch's events again and compares them with the money its ledger recorded. A store upgrade that corrects
stored events (`kanda.regional.upgrades`) restates, in a ledger row of its own (kind `upgrade`), the money of the
batches it changed; rows written before kanda recorded money have none, and hash as they always did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, astuple, dataclass

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


@dataclass(frozen=True)
class BatchMoney:
    """A batch's money as its events hold it: exact integer sums (HUGEINT in SQL, never a float).

    `digest` is the md5 of sums weighted by each event's local day, by its creator, product, event type and status
    (a stable 32-bit number from the md5 of their text), and by its line: money moved between two days, two owners
    or two events keeps `amount_minor`, `fee_minor` and `net_minor` but changes it. Sums, not a hash per event: the
    md5 is taken once per owner and once per batch. Summing a 2M-row batch took 0.07 s (the EG benchmark file, 240
    owners; 0.3 s with 100,000), where an md5 of every event took about 0.8 s, a tenth of the load.
    """

    batch_id: str
    events: int
    amount_minor: int
    fee_minor: int
    net_minor: int
    digest: str

    @classmethod
    def empty(cls, batch_id: str) -> BatchMoney:
        """The money of a batch without events (what `batch_money` gives one whose events are all 0)."""
        return cls(batch_id, 0, 0, 0, 0, hashlib.md5(",".join(["0"] * len(_WEIGHTED)).encode()).hexdigest())


#: The weighted sums `BatchMoney.digest` is the md5 of, comma-separated, in this order (never reorder: the digests
#: recorded in ledgers would no longer match).
_WEIGHTED = [f"sum({money}{weight})" for weight in ("d", "w", "r") for money in ("a", "f", "n")]

#: The text of an event's owner that its weight is the md5 of: creator, product, event type and status.
_OWNER = ("creator_id", "product_id", "event_type", "status")
_OWNER_TEXT = "concat_ws(chr(31), " + ", ".join(f"coalesce({c}, chr(30))" for c in _OWNER) + ")"
#: The per-event weights summed with each figure: the local day (days since 1970) and the line.
_PER_EVENT = {"d": "date_diff('day', DATE '1970-01-01', local_date)", "r": "source_row"}
_PER_EVENT_SUMS = ", ".join(
    f"sum({money}_minor::HUGEINT * {value}) AS {money[0]}{weight}"
    for weight, value in _PER_EVENT.items()
    for money in ("amount", "fee", "net")
)

#: A batch's money per batch, from `sale_events` rows matching `{where}`. Integers throughout, and functions whose
#: results DuckDB does not change between versions (md5, date_diff, sums), never `hash()`. Summed per owner first,
#: so that the owner's text and md5 are made once per owner, not per event.
_MONEY_SQL = f"""
WITH owners AS (
    SELECT batch_id, {", ".join(_OWNER)}, count(*) AS events,
        sum(amount_minor::HUGEINT) AS a, sum(fee_minor::HUGEINT) AS f, sum(net_minor::HUGEINT) AS n, {_PER_EVENT_SUMS}
    FROM sale_events WHERE {{where}} GROUP BY ALL),
weights AS (SELECT *, ('0x' || left(md5({_OWNER_TEXT}), 8))::BIGINT::HUGEINT AS w FROM owners),
weighed AS (SELECT *, a * w AS aw, f * w AS fw, n * w AS nw FROM weights)
SELECT batch_id, sum(events), sum(a), sum(f), sum(n), md5(concat_ws(',', {", ".join(_WEIGHTED)}))
FROM weighed GROUP BY batch_id
"""


def batch_money(con: duckdb.DuckDBPyConnection, batch_id: str | None = None) -> dict[str, BatchMoney]:
    """Each batch's money as `sale_events` holds it now (one batch's, or every batch's); a batch without events is
    absent (its money is `BatchMoney.empty`)."""
    where, args = ("batch_id = ?", [batch_id]) if batch_id is not None else ("true", [])
    return {row[0]: BatchMoney(*row) for row in con.execute(_MONEY_SQL.format(where=where), args).fetchall()}


def recorded_money(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, BatchMoney]]:
    """Each batch's money as the ledger last recorded it (the ledger row's seq that did), for the batches it
    recorded money for: its own row's, or the latest restatement of an upgrade."""
    rows = con.execute(
        "SELECT seq, batch_id, events, amount_minor, fee_minor, net_minor, digest FROM batch_money"
        " WHERE seq IN (SELECT seq FROM ledger)"  # a line of no ledger row vouches for nothing (`verify_chain`)
        " QUALIFY row_number() OVER (PARTITION BY batch_id ORDER BY seq DESC) = 1"
    ).fetchall()
    return {row[1]: (row[0], BatchMoney(*row[1:])) for row in rows}


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
    #: The money this row records (`batch_money`): its own batch's, or the batches an upgrade restated. None on rows
    #: written before kanda recorded money, whose hash leaves it out.
    money: list[BatchMoney] | None = None


def _row_hash(prev_hash: str, seq: int, entry: LedgerEntry) -> str:
    money = {"money": [list(astuple(m)) for m in sorted(entry.money, key=lambda m: m.batch_id)]} if entry.money else {}
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
        **money,
    }
    return hashlib.sha256((prev_hash + json.dumps(body, sort_keys=True)).encode()).hexdigest()


def append(con: duckdb.DuckDBPyConnection, entry: LedgerEntry) -> None:
    """Write the batch's ledger row inside the caller's transaction, after checking that it balances, with the
    money its events hold (`entry.money` where given: an upgrade's restatement of other batches)."""
    entry.counts.check_balance(f"batch {entry.batch_id} ({entry.file_name or entry.kind})")
    if entry.money is None:
        entry.money = [batch_money(con, entry.batch_id).get(entry.batch_id) or BatchMoney.empty(entry.batch_id)]
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
    con.execute(
        # sums as text: a Python int past 64 bits would not reach DuckDB as an exact HUGEINT otherwise
        "INSERT INTO batch_money SELECT ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[])::HUGEINT,"
        " unnest(?::VARCHAR[])::HUGEINT, unnest(?::VARCHAR[])::HUGEINT, unnest(?::VARCHAR[])",
        [
            seq,
            [m.batch_id for m in entry.money],
            [m.events for m in entry.money],
            *([str(getattr(m, name)) for m in entry.money] for name in ("amount_minor", "fee_minor", "net_minor")),
            [m.digest for m in entry.money],
        ],
    )


def restate_money(con: duckdb.DuckDBPyConnection, before: dict[str, BatchMoney], upgrade: str) -> int:
    """After the store upgrade `upgrade` changed stored events in place: record the money of each batch it changed
    (`record_upgrade`); return how many.

    Only a batch whose events held what the ledger recorded before the upgrade (`before`, taken by the caller) is
    restated: one changed by hand earlier stays flagged, instead of the upgrade vouching for the edit.
    """
    recorded = recorded_money(con)
    if not recorded:
        return 0
    after = batch_money(con)
    changed = [
        now
        for batch_id, (_, line) in sorted(recorded.items())
        if before.get(batch_id, BatchMoney.empty(batch_id)) == line
        and (now := after.get(batch_id, BatchMoney.empty(batch_id))) != line
    ]
    if changed:
        record_upgrade(con, upgrade, changed)
    return len(changed)


def record_upgrade(con: duckdb.DuckDBPyConnection, upgrade: str, money: list[BatchMoney]) -> None:
    """A ledger row of kind `upgrade`, named after the store upgrade (`file_name`), that moved no rows and records
    `money`: what the upgrade left those batches' events holding."""
    (region,) = con.execute("SELECT region FROM region_info").fetchall()[0]
    at = dt.datetime.now(dt.UTC)
    batch_id = f"{region}-{at:%Y%m%dT%H%M%S%f}-{upgrade}"
    append(con, LedgerEntry(batch_id, region, "upgrade", upgrade, None, BatchCounts(), at, at, money))


def verify_chain(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Problems found in the ledger: broken links, altered rows, unbalanced batches. Empty when all is well."""
    rows = con.execute(
        "SELECT seq, batch_id, region, kind, file_name, content_hash, rows_read, ignored, rows_in, loaded,"
        " quarantined, duplicates, started_at, finished_at, prev_hash, row_hash FROM ledger ORDER BY seq"
    ).fetchall()
    money: dict[int, list[BatchMoney]] = {}
    for seq, *line in con.execute(
        "SELECT seq, batch_id, events, amount_minor, fee_minor, net_minor, digest FROM batch_money"
    ).fetchall():
        money.setdefault(seq, []).append(BatchMoney(*line))
    problems: list[str] = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        seq, batch_id, region, kind, file_name, content_hash, *counts, started, finished, prev_hash, row_hash = row
        entry = LedgerEntry(
            batch_id, region, kind, file_name, content_hash, BatchCounts(*counts), started, finished, money.get(seq)
        )
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
    orphans = sorted(set(money) - {row[0] for row in rows})
    if orphans:
        problems.append(f"batch_money has lines of ledger rows that do not exist: {', '.join(map(str, orphans[:5]))}")
    return problems
