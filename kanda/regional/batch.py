"""A batch: chunks validated and staged on disk, then loaded into the regional store in one transaction.

Two promises pull against each other: a batch (a whole file) must be one DuckDB transaction, so that a crash leaves
the store as it was, and a file larger than memory must ingest in bounded memory. The duplicate rule (first delivery
of each event wins, against the store and the rest of the batch) needs the whole batch, and a row inserted early
cannot cheaply be taken back: DuckDB re-appends every row of a transaction at commit if any of them was deleted in
it (docs/benchmarks.md, with the streamed designs measured against this one). So each validated chunk is written as
Parquet to a staging folder, and at the end one `INSERT ... SELECT FROM read_parquet(...)` per table loads the
whole batch, duplicates left out, in a single transaction that DuckDB streams to disk. A crash before commit leaves
only staging files, which the next run deletes. Money going back on a rail whose exports restate a running total
is staged apart and settled against the store first (`_settle_running_totals`): only what a total adds is loaded.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Collection
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from kanda.regional import ledger
from kanda.regional.ledger import BatchCounts, LedgerEntry
from kanda.regional.owners import StoredOwners, with_payment_owners
from kanda.regional.store import registered, sql_text, transaction
from quality.boundary import (
    REPEAT_OTHER_TIME,
    REPEATED_COLUMNS,
    Split,
    differing_repeats,
    hold_unknown_creators,
    other_time_repeats,
    recorded_column,
    split_by_contract,
)
from quality.contract import (
    CONTRACT_COLUMNS,
    EVENT_ID_PARTS,
    REFUND_MINUTE_SQL,
    VIRTUAL_COLUMNS,
    contract_dtypes,
    event_id_expr,
)
from quality.screen import passes_contract
from regions import RegionConfig
from regions.rails import fees_by_rail, running_total_rails, source_states_fees

#: The contract's columns that a store keeps (the virtual `event_id` is derived by the store itself).
STORED_COLUMNS = [c for c in CONTRACT_COLUMNS if c not in VIRTUAL_COLUMNS]

#: How many flagged rows wait before pandera judges them: pandera's cost is mostly per call, and waiting rows carry
#: their raw records, so this bounds both the calls (a few per batch of typical dirt) and the memory they hold.
JUDGE_ROWS = 20_000

QUARANTINE_COLUMNS = (
    "quarantine_id, batch_id, region, source, source_file, source_row, transaction_id, creator_id, local_date,"
    " raw_record, parsed, reasons, hold, status, quarantined_at"
)


def staging_root(home: Path, region: str) -> Path:
    return home / "staging" / region.lower()


def clear_staging(home: Path, region: str) -> None:
    """Remove what a crashed run left behind; called under the region's writer lock, so nothing else uses it."""
    shutil.rmtree(staging_root(home, region), ignore_errors=True)


class StagedBatch:
    """Collects one batch's validated chunks on disk and loads them, balanced, in one transaction."""

    def __init__(
        self,
        home: Path,
        region: RegionConfig,
        batch_id: str,
        known_creators: pl.Series,
        *,
        hold_unknown: bool = True,
        split: Callable[[pl.DataFrame], Split] = split_by_contract,
        raw_lines: Callable[[pl.Series], pl.DataFrame] | None = None,
        owners: StoredOwners | None = None,
        decided: Collection[str] = (),
    ) -> None:
        """`split` is the contract check; a steward's waiver passes one that accepts the waived warnings.

        It must accept every row the contract accepts: rows that pass the contract's screen are staged without it.

        `raw_lines` gives the raw records (`source_row`, `raw_record` as JSON text) of the named lines of the
        batch's one file, read again: a delivery that repeats an event with other money is quarantined with its
        line, known only at commit, and a file's every raw record staged beside its events would cost the ingest
        about as much as writing the file again. Without it (a steward's fixes, released holds: small batches whose
        raw record names the quarantine row they came from), the staged events carry their raw record.

        `owners` finds the creator and product of payments' sales in the store and the staged events: a refund or
        reversal that names neither takes its sale's (`kanda.regional.owners`). It is asked when flagged rows are
        judged, a few times per file, where such rows wait (they fail the contract's screen), and by then the
        chunks after theirs are staged too: a statement listed newest first has its reversals before their sales.

        `decided` names quarantine rows a steward has decided whose decision has not reached the store yet (a held
        row fixed or rejected, not reprocessed): a file's copy of one is not loaded as it came
        (`_hold_decided_repeats`).
        """
        self.region = region
        self.batch_id = batch_id
        self.known_creators = known_creators
        self.hold_unknown = hold_unknown
        self.split = split
        self.raw_lines = raw_lines
        self.owners = owners
        self.decided = sorted(decided)
        self.folder = staging_root(home, region.code) / batch_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.counts = BatchCounts()
        self.started = dt.datetime.now(dt.UTC)
        #: Rows the screen flagged, waiting for `split`; judged once this many wait, and before the commit.
        self.judge_rows = JUDGE_ROWS
        self._waiting: list[Path] = []
        self._waiting_rows = 0
        self._staged = 0
        #: The rails (`source`) of the staged events, whose fees answer the commit records (`batch_rails`).
        self._sources: set[str] = set()
        #: Rails whose money going back is a running total: those events are staged apart and settled at commit.
        self._running_totals = running_total_rails()
        #: Whether `_hold_other_times` kept staged refunds out of the load (a temporary table of their positions).
        self._other_times = False
        #: Whether `_hold_decided_repeats` kept staged events out of the load (the same).
        self._decided_repeats = False

    def add(self, frame: pl.DataFrame, *, ignored: int = 0) -> None:
        """Validate a contract-shaped chunk and stage its events and quarantine rows.

        The chunk is screened first (`quality.screen`): lines whose every event passes the contract's rules are
        staged at once; the rest wait and go through `split` (pandera, with every reason) a few thousand at a time,
        so that pandera's cost per call is paid per batch rather than per chunk. A line's events stay together, so
        that the quarantine numbers a line's events as it always did.
        """
        self.counts.add(BatchCounts(rows_read=frame.height + ignored, ignored=ignored, rows_in=frame.height))
        passes = passes_contract(frame)
        if passes is None:
            self._wait(frame)
        else:
            lines = frame["source_row"]
            line_passes = (passes & ~lines.is_in(lines.filter(~passes).implode())).fill_null(False)
            self._stage(frame, line_passes)
            if not line_passes.all():
                self._wait(frame.filter(~line_passes))
        if self._waiting_rows >= self.judge_rows:
            self._judge_waiting()

    def _wait(self, flagged: pl.DataFrame) -> None:
        """Set flagged rows aside, on disk: a few rows filtered from a chunk would keep the whole chunk's text in
        memory (polars' string views share the chunk's buffers), which grew with the file."""
        if flagged.height:
            path = self._file("flagged", len(self._waiting))
            flagged.write_parquet(path, **_STAGING_PARQUET)
            self._waiting.append(path)
            self._waiting_rows += flagged.height

    def _judge_waiting(self) -> None:
        """Run the rows the screen flagged through `split` and stage its verdict."""
        if not self._waiting:
            return
        frame = pl.read_parquet(self._waiting)
        for path in self._waiting:
            path.unlink()
        self._waiting, self._waiting_rows = [], 0
        if self.owners is not None:
            owners = self.owners
            frame = with_payment_owners(frame, lambda payments: owners(payments, self.staged_events()))
        split = self.split(frame)
        self._stage(split.valid, pl.repeat(True, split.valid.height, eager=True), [split.quarantine])

    def _stage(self, frame: pl.DataFrame, passing: pl.Series, flagged: list[pl.DataFrame] | None = None) -> None:
        """Stage the contract-valid rows of `frame` (where `passing`): events, or held rows when the creator is
        unknown; `flagged` are quarantine rows already made (pandera's verdict), written beside them.

        Masks, not filtered frames: filtering a chunk copies every column it keeps, the nested raw record included,
        and the events need none of it (only held rows become quarantine rows, which show it). A contract-valid
        row has a creator id, so `known` is never null and the passing rows split exactly in two.
        """
        flagged = list(flagged or [])
        events = passing
        if self.hold_unknown:
            known = frame["creator_id"].is_in(self.known_creators.implode())
            events, held = passing & known, passing & ~known
            if held.any():
                flagged.append(hold_unknown_creators(frame.filter(held), self.known_creators).quarantine)
        # Money going back on a running-total rail is staged apart, to be settled at commit (a mask again).
        totals = None
        if self._running_totals:
            rail_totals = frame["source"].is_in(sorted(self._running_totals)) & (frame["event_type"] != "sale")
            if rail_totals.any():
                totals, events = events & rail_totals, events & ~rail_totals
        stored = frame.select(STORED_COLUMNS)
        if self.raw_lines is None:
            stored = stored.with_columns(frame["raw_record"].struct.json_encode().alias(_RAW))
        flagged = [f for f in flagged if f.height]
        self._staged += 1
        for kind, mask in (("events", events), ("totals", totals)):
            if mask is not None and mask.any():
                rows = stored.filter(mask)
                rows.write_parquet(self._file(kind), **_STAGING_PARQUET)
                self._sources.update(rows["source"].unique().to_list())
        if flagged:
            quarantine = pl.concat(flagged) if len(flagged) > 1 else flagged[0]
            self._quarantine_rows(quarantine).write_parquet(self._file("quarantine"), **_STAGING_PARQUET)
            self.counts.quarantined += quarantine.height

    def commit(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        kind: str,
        file_name: str | None,
        content_hash: str | None,
        also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> BatchCounts:
        """Load everything staged, write the ledger row (which refuses an unbalanced batch), and commit.

        `also` runs inside the same transaction (a release marks its quarantine rows released there).
        """
        try:
            self._judge_waiting()
            with transaction(con):
                # Each count is measured on its own, never derived from the others, so that a lost or doubled
                # row shows up as an unbalanced batch instead of being absorbed by a subtraction.
                superseded = self._settle_running_totals(con)
                self.counts.duplicates = superseded + self._sort_repeats(con)
                self._hold_other_times(con, fix=kind == "fix")
                if kind == "file":
                    self.counts.duplicates += self._hold_decided_repeats(con)
                self._load_events(con)
                self._record_rails(con)
                self.counts.duplicates += self._load_quarantine(con, once_per_record=kind == "file")
                self.counts.loaded, self.counts.quarantined = con.execute(
                    "SELECT (SELECT count(*) FROM sale_events WHERE batch_id = $1),"
                    " (SELECT count(*) FROM quarantine WHERE batch_id = $1)",
                    [self.batch_id],
                ).fetchall()[0]
                if also:
                    also(con)
                ledger.append(
                    con,
                    LedgerEntry(
                        self.batch_id,
                        self.region.code,
                        kind,
                        file_name,
                        content_hash,
                        self.counts,
                        self.started,
                        dt.datetime.now(dt.UTC),
                    ),
                )
        finally:
            self.discard()
        return self.counts

    def staged_events(self) -> str | None:
        """The events staged so far as a relation (None before the first): for lookups that must see this batch's
        earlier rows before its commit (`kanda.regional.owners`)."""
        files = self._files("events")
        return _staged(files, placed=False) if files else None

    def discard(self) -> None:
        self._waiting, self._waiting_rows = [], 0
        shutil.rmtree(self.folder, ignore_errors=True)

    def _settle_running_totals(self, con: duckdb.DuckDBPyConnection) -> int:
        """Turn the staged running totals of money going back into the events they add; return how many staged
        rows add nothing (an earlier or equal total, already stored), which count as duplicates.

        A charge exported with `Amount Refunded` 40,00 and again with 100,00 went back 100,00 in all, not 40,00
        (the first delivery) nor 140,00 (both). Per payment, rail, event type and status, the batch's largest total
        is compared with what the store holds: a larger one is loaded as the difference (-60,00), its `event_ref`
        the total, so that the same total delivered again is a duplicate; an equal or smaller one (a stale export)
        adds nothing. The events are written beside the batch's other staged events, and the duplicate rule then
        treats them like any other.
        """
        files = self._files("totals")
        if not files:
            return 0
        keys = "source, transaction_id, event_type, status"
        placed = _staged(files, placed=True)
        settled = self.folder / "events-settled.parquet"
        (staged,) = con.execute(f"SELECT count(*) FROM {_staged(files, placed=False)}").fetchall()[0]
        con.execute(
            f"COPY (WITH latest AS (SELECT * EXCLUDE (filename, file_row_number) FROM {placed}"
            f"   QUALIFY row_number() OVER (PARTITION BY {keys}"
            "     ORDER BY abs(amount_minor) DESC, source_row, filename, file_row_number) = 1),"
            f" stored AS (SELECT {keys}, sum(amount_minor) AS total FROM sale_events"
            f"   WHERE transaction_id IN (SELECT transaction_id FROM latest) GROUP BY ALL)"
            f" SELECT {', '.join(_SETTLED.get(c, 'l.' + c) for c in self._staged_columns)}"
            f" FROM latest AS l LEFT JOIN stored AS s USING ({keys})"
            " WHERE abs(l.amount_minor) > abs(coalesce(s.total, 0)))"
            f" TO {sql_text(str(settled))} (FORMAT parquet, COMPRESSION uncompressed)"
        )
        (added,) = con.execute(f"SELECT count(*) FROM read_parquet({sql_text(str(settled))})").fetchall()[0]
        if not added:
            settled.unlink()
        return staged - added

    @property
    def _staged_columns(self) -> list[str]:
        return [*STORED_COLUMNS, _RAW] if self.raw_lines is None else STORED_COLUMNS

    def _sort_repeats(self, con: duckdb.DuckDBPyConnection) -> int:
        """Sort the staged rows that repeat an event (of the store, or an earlier row of this batch) into
        duplicates, which say what the event was first recorded with, and rows that state other money or name
        another creator or product (`REPEATED_COLUMNS`), which are quarantined (`quality.boundary.differing_repeats`);
        return how many are duplicates.

        Only repeats need looking at, and they are few, so both comparisons start from a 64-bit hash of the
        event's parts and compare the parts themselves only where hashes agree (equal events have equal hashes, so
        nothing is missed, and a collision only adds a candidate that the exact comparison then drops):
        - the events of this batch the store already has: the store's rows whose hash is one of the batch's, kept
          in a temporary table. Joining the batch against the store's keys directly built a hash table of the
          whole history's text keys, which spilled under the ingest's memory limit: a 2M-row file onto 8M stored
          events took 5.0 s to insert instead of 1.5 s (docs/benchmarks.md);
        - the events delivered more than once within the batch: grouped by hash first, then by their parts.
        The staged files are read again by each statement rather than through a shared CTE, which DuckDB would
        materialise whole: the batch's every row in memory, spilled under the ingest's memory limit.
        """
        files = self._files("events")
        if not files:
            return 0
        source, placed = _staged(files, placed=False), _staged(files, placed=True)
        con.execute(
            f"CREATE TEMP TABLE {_STORED_EVENTS} AS SELECT {_EVENT_PARTS}, {_SAID} FROM sale_events"
            f" WHERE {_EVENT_HASH} IN (SELECT {_EVENT_HASH} FROM {source})"
        )
        con.execute(
            f"CREATE TEMP TABLE {_REPEATS} AS"
            f" WITH candidates AS (SELECT {_EVENT_HASH} AS h FROM {source} GROUP BY h HAVING count(*) > 1"
            f"   UNION SELECT {_EVENT_HASH} FROM {_STORED_EVENTS})"
            f" SELECT {_EVENT_PARTS}, {_SAID}, (source_row, filename, file_row_number) AS pos"
            f" FROM {placed} WHERE {_EVENT_HASH} IN (SELECT h FROM candidates)"
        )
        # Each repeat against the event as first recorded: the store's, else this batch's first delivery, which
        # loads (`_load_events` keeps the same one). Everything else that says the same is a duplicate.
        con.execute(
            f"CREATE TEMP TABLE {_SORTED} AS"
            f" WITH firsts AS (SELECT {_EVENT_PARTS}, min(pos) AS first,"
            f"   arg_min({_said()}, pos) AS said FROM {_REPEATS} GROUP BY ALL)"
            f" SELECT r.pos, {', '.join('r.' + c for c in REPEATED_COLUMNS)},"
            f"   CASE WHEN e.transaction_id IS NULL THEN f.said ELSE {_said('e.')} END AS recorded,"
            "   e.transaction_id IS NULL AND r.pos = f.first AS loads"
            f" FROM {_REPEATS} AS r JOIN firsts AS f USING ({_EVENT_PARTS})"
            f" LEFT JOIN {_STORED_EVENTS} AS e USING ({_EVENT_PARTS})"
        )
        (duplicates,) = con.execute(
            f"SELECT count(*) FROM {_SORTED} WHERE NOT loads AND {_said()} = recorded"
        ).fetchall()[0]
        differing = con.sql(
            "SELECT s.* EXCLUDE (filename, file_row_number),"
            f" {', '.join(f'd.recorded.{c} AS {recorded_column(c)}' for c in REPEATED_COLUMNS)} FROM {placed} AS s"
            f" JOIN (SELECT * FROM {_SORTED} WHERE NOT loads AND {_said()} IS DISTINCT FROM recorded)"
            "   AS d ON (s.source_row, s.filename, s.file_row_number) = d.pos"
        ).pl()
        if differing.height:
            self._quarantine_differing(differing)
        return duplicates

    def _quarantine_differing(self, rows: pl.DataFrame) -> None:
        """Stage quarantine rows for repeats that state other money or another owner, with their raw records."""
        quarantine = differing_repeats(self._typed_with_raw(rows))
        # ids of their own: the line may have a quarantine row already (its other event, failing the contract)
        quarantine = self._quarantine_rows(quarantine, mark=".repeat")
        quarantine.write_parquet(self.folder / "quarantine-repeats.parquet", **_STAGING_PARQUET)

    def _typed_with_raw(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Staged rows read back from SQL in the contract's dtypes, with their raw records (read again for a file)."""
        if self.raw_lines is not None:
            # a line's events (a charge and its refund) share its raw record
            raw = self.raw_lines(rows["source_row"].unique()).unique("source_row").rename({"raw_record": _RAW})
            rows = rows.join(raw, on="source_row", how="left")
        return rows.with_columns(
            [pl.col(c).cast(dtype) for c, dtype in contract_dtypes().items() if c in rows.columns]
        ).with_columns(event_id=event_id_expr(), raw_record=pl.col(_RAW).fill_null("{}"))

    def _hold_other_times(self, con: duckdb.DuckDBPyConnection, *, fix: bool) -> None:
        """Quarantine the staged refunds that would load beside a refund of the same payment, status, amount and
        currency stored at another minute, where one of the two times is a steward's (`REPEAT_OTHER_TIME`), and
        keep them out of `_load_events`.

        Only refunds told apart by their minute are compared (`event_ref` is the minute of `occurred_at`): a rail's
        own refund id names the refund whatever time a steward typed, and a running total is settled by its amount.
        Nothing records a steward's time as such, so it is recognised in the store (`_time_supplied`): the event was
        loaded by a `fix` batch, and no quarantine row of its line made by a file or a release (what the rail said)
        states that time. Such refunds are few (a fix batch's rows), so both lookups join a handful of stored rows:
        the store's steward-timed refunds, found through the fix batches' ids (their rows are contiguous, which
        DuckDB's zone maps skip to), and, in a fix batch, the stored refunds of the payments whose staged refund has
        a steward's time. A store without fix batches reads nothing more. A fix batch's row that a steward approved
        as a second refund (from this very rule, or over the review's notice that asked the same) loads.
        """
        self._other_times = False
        files = self._files("events")
        fixes = [batch for (batch,) in con.execute("SELECT batch_id FROM ledger WHERE kind = 'fix'").fetchall()]
        if not files or not (fixes or fix):
            return
        pairs = []
        if fixes:
            con.execute(
                f"CREATE TEMP TABLE {_STEWARD_TIMED} AS SELECT {_REFUND_KEY}, event_ref, occurred_at, source_file,"
                f" source_row FROM sale_events AS e WHERE e.batch_id IN ({', '.join(sql_text(b) for b in fixes)})"
                f" AND e.event_type = 'refund' AND e.event_ref = {_refund_minute('e.')}"
            )
            con.execute(f"DELETE FROM {_STEWARD_TIMED} AS e WHERE NOT {_time_supplied('e', _STEWARD_TIMED)}")
            if con.execute(f"SELECT count(*) FROM {_STEWARD_TIMED}").fetchall()[0][0]:
                pairs.append(
                    "SELECT r.pos, st.occurred_at AS recorded_at, false AS supplied_here FROM loading AS r"
                    f" JOIN {_STEWARD_TIMED} AS st USING ({_REFUND_KEY}) WHERE st.event_ref <> r.event_ref"
                )
        ctes = [
            f"loading AS (SELECT s.*, (s.source_row, s.filename, s.file_row_number) AS pos"
            f" FROM {_staged(files, placed=True)} AS s"
            f" WHERE s.event_type = 'refund' AND s.event_ref = {_refund_minute('s.')}"
            f" AND (s.source_row, s.filename, s.file_row_number) NOT IN (SELECT pos FROM {_SORTED} WHERE NOT loads)"
            + (f" AND NOT {_APPROVED_SECOND.format(t='s')}" if fix else "")
            + ")"
        ]
        if fix:
            ctes += [
                f"timed AS (SELECT * FROM loading AS r WHERE {_time_supplied('r', 'loading')})",
                f"stored AS (SELECT {_REFUND_KEY}, event_ref, occurred_at FROM sale_events WHERE event_type = 'refund'"
                f" AND transaction_id IN (SELECT transaction_id FROM timed) AND event_ref = {_refund_minute()})",
            ]
            pairs.append(
                "SELECT r.pos, e.occurred_at AS recorded_at, true AS supplied_here FROM timed AS r"
                f" JOIN stored AS e USING ({_REFUND_KEY}) WHERE e.event_ref <> r.event_ref"
            )
        if pairs:
            moment = "strftime(recorded_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')"
            con.execute(
                f"CREATE TEMP TABLE {_OTHER_TIMES} AS WITH {', '.join(ctes)}"
                f" SELECT pos, string_agg(DISTINCT {moment}, ', ' ORDER BY {moment}) AS recorded_at,"
                f" bool_or(supplied_here) AS supplied_here FROM ({' UNION ALL '.join(pairs)}) GROUP BY pos"
            )
            self._other_times = True
            self._quarantine_other_times(con, files)
        if fixes:
            con.execute(f"DROP TABLE {_STEWARD_TIMED}")

    def _quarantine_other_times(self, con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
        """Stage quarantine rows for the refunds `_hold_other_times` found, with their raw records."""
        rows = con.sql(
            "SELECT s.* EXCLUDE (filename, file_row_number), o.recorded_at, o.supplied_here"
            f" FROM {_staged(files, placed=True)} AS s JOIN {_OTHER_TIMES} AS o"
            " ON (s.source_row, s.filename, s.file_row_number) = o.pos"
        ).pl()
        if rows.height:
            quarantine = self._quarantine_rows(other_time_repeats(self._typed_with_raw(rows)), mark=".time")
            quarantine.write_parquet(self.folder / "quarantine-other-times.parquet", **_STAGING_PARQUET)

    def _hold_decided_repeats(self, con: duckdb.DuckDBPyConnection) -> int:
        """Keep out of the load the staged events that repeat, text for text, a record a steward rejected (or decided,
        the decision not in the store yet: `decided`); return how many (duplicates of that record, as a quarantined
        record's copies are).

        A record quarantined for what a later delivery no longer shows (a creator onboarded since, a time no longer
        in the future) passes the contract when the rail sends it again; loaded then, a record the steward rejected
        became a sale in the rollups with nothing to say so, and one they fixed loaded as it came, before the fix.
        The same record is the rule of `_load_quarantine`: the same rail, the same raw record and the same event of
        its line. Decided records are few, so the staged events are first narrowed to those naming a decided
        record's payment, and only their raw records read.
        """
        files = self._files("events")
        with registered(con, "kanda_decided_ids", pa.table({"quarantine_id": pa.array(self.decided, pa.string())})):
            decided = con.sql(
                "SELECT source, json_extract_string(parsed, '$.transaction_id') AS transaction_id,"
                " json_extract_string(parsed, '$.event_type') AS event_type, CAST(raw_record AS VARCHAR) AS raw_record"
                " FROM quarantine WHERE (status = 'rejected' OR quarantine_id IN (SELECT quarantine_id"
                " FROM kanda_decided_ids)) AND json_extract_string(parsed, '$.transaction_id') IS NOT NULL"
            ).pl()
        if not files or decided.is_empty():
            return 0
        raw = f", s.{_RAW} AS raw_record" if self.raw_lines is None else ""
        with registered(con, "kanda_decided", decided.to_arrow()):
            named = con.sql(
                f"SELECT s.source_row, s.filename, s.file_row_number, s.source, s.event_type{raw}"
                f" FROM {_staged(files, placed=True)} AS s WHERE EXISTS (SELECT 1 FROM kanda_decided AS r"
                " WHERE r.source = s.source AND r.transaction_id = s.transaction_id AND r.event_type = s.event_type)"
            ).pl()
        if named.is_empty():
            return 0
        if self.raw_lines is not None:
            lines = self.raw_lines(named["source_row"].unique()).unique("source_row")
            named = named.join(lines.select("source_row", "raw_record"), on="source_row", how="left")
        hits = named.join(
            decided.select("source", "event_type", "raw_record"), on=["source", "event_type", "raw_record"]
        )
        positions = hits.select("source_row", "filename", "file_row_number").unique()
        held = f" AND pos NOT IN (SELECT pos FROM {_OTHER_TIMES})" if self._other_times else ""
        with registered(con, "kanda_decided_hits", positions.to_arrow()):
            con.execute(
                f"CREATE TEMP TABLE {_DECIDED_REPEATS} AS SELECT pos FROM (SELECT (source_row, filename,"
                f" file_row_number) AS pos FROM kanda_decided_hits) WHERE pos NOT IN"
                f" (SELECT pos FROM {_SORTED} WHERE NOT loads){held}"
            )
        self._decided_repeats = True
        return con.execute(f"SELECT count(*) FROM {_DECIDED_REPEATS}").fetchall()[0][0]

    def _load_events(self, con: duckdb.DuckDBPyConnection) -> int:
        """Insert the first delivery of every event not yet stored; return how many rows were inserted.

        "First" is by position in the file, so the row kept is the one that arrived first (in a steward's fix
        batch, whose rows come from several files, the first staged of those sharing a line number); every other
        repeat was sorted by `_sort_repeats`, whose temporary tables this reads and drops.
        """
        files = self._files("events")
        if not files:
            return 0
        source, placed = _staged(files, placed=False), _staged(files, placed=True)
        kept = f"filename, file_row_number{', ' + _RAW if self.raw_lines is None else ''}"
        held = f" UNION ALL SELECT pos FROM {_OTHER_TIMES}" if self._other_times else ""
        held += f" UNION ALL SELECT pos FROM {_DECIDED_REPEATS}" if self._decided_repeats else ""
        inserted = con.execute(
            "INSERT INTO sale_events BY NAME"
            f" SELECT s.* EXCLUDE ({kept}) FROM {placed} AS s WHERE (s.source_row, s.filename, s.file_row_number)"
            f" NOT IN (SELECT pos FROM {_SORTED} WHERE NOT loads{held})"
        ).fetchall()[0][0]
        # Dropped here, not in a `finally`: a failure aborts the transaction, whose rollback removes them anyway.
        for table in (
            _STORED_EVENTS,
            _REPEATS,
            _SORTED,
            *([_OTHER_TIMES] if self._other_times else []),
            *([_DECIDED_REPEATS] if self._decided_repeats else []),
        ):
            con.execute(f"DROP TABLE {table}")
        # Only days that gained an event change: a file of duplicates alone publishes nothing. Where every staged
        # row loaded (the common case) the staged days are those days, read without scanning the store.
        if inserted and not self.counts.duplicates:
            con.execute(f"INSERT INTO dirty_days SELECT DISTINCT local_date FROM {source}")
        elif inserted:
            con.execute(
                "INSERT INTO dirty_days SELECT DISTINCT local_date FROM sale_events WHERE batch_id = ?", [self.batch_id]
            )
        return inserted

    def _record_rails(self, con: duckdb.DuckDBPyConnection) -> None:
        """Whether each rail of the batch states fees, as its reader does now: the rollups' `fees_stated` reads it
        per event, so events keep the answer of the reader that read them when a rail later learns (or stops)
        stating fees, or the region moves to another rail."""
        if not self._sources:
            return
        rails = fees_by_rail()
        sources = sorted(self._sources)
        con.execute(
            "INSERT INTO batch_rails SELECT ?, unnest(?::VARCHAR[]), unnest(?::BOOLEAN[])",
            [self.batch_id, sources, [source_states_fees(source, rails) for source in sources]],
        )

    def _load_quarantine(self, con: duckdb.DuckDBPyConnection, *, once_per_record: bool) -> int:
        """Insert the staged quarantine rows; return how many repeat a record already quarantined (duplicates).

        With `once_per_record` (a file's batch), a record quarantined before, by this batch or an earlier one, is
        a duplicate, as a repeated event is: rails export overlapping periods and redeliver webhooks, and each
        copy of a bad record would otherwise be another review item and another quarantined row in the day's
        rate. The same record is the same rail's raw record, text for text, and the same event of its line (a
        line can yield a sale and a refund). A steward's fix or a release is never one: its rows name the
        quarantine row they come from, which is what they are to be judged against.
        """
        files = self._files("quarantine")
        if not files:
            return 0
        staged = _staged(files, placed=once_per_record)
        rows = f"SELECT {QUARANTINE_COLUMNS} FROM {staged}"
        if once_per_record:
            record = "source, raw_record, json_extract_string(parsed, '$.event_type')"
            rows += (
                f" QUALIFY row_number() OVER (PARTITION BY {record} ORDER BY source_row, filename, file_row_number) = 1"
            )
            rows = (
                f"SELECT * FROM ({rows}) AS s WHERE NOT EXISTS (SELECT 1 FROM quarantine AS q"
                " WHERE q.source = s.source AND CAST(q.raw_record AS VARCHAR) = s.raw_record"
                " AND json_extract_string(q.parsed, '$.event_type')"
                " IS NOT DISTINCT FROM json_extract_string(s.parsed, '$.event_type'))"
            )
        inserted = con.execute(f"INSERT INTO quarantine ({QUARANTINE_COLUMNS}) {rows}").fetchall()[0][0]
        (staged_rows,) = con.execute(f"SELECT count(*) FROM {_staged(files, placed=False)}").fetchall()[0]
        con.execute(
            "INSERT INTO dirty_days SELECT DISTINCT"
            " coalesce(local_date, CAST(timezone(?, quarantined_at) AS DATE)) FROM quarantine WHERE batch_id = ?",
            [self.region.zone, self.batch_id],
        )
        return staged_rows - inserted

    def _quarantine_rows(self, rows: pl.DataFrame, mark: str = "") -> pl.DataFrame:
        # One line can carry two events (a charge row and its refund); the second of a line gets a ".2" suffix so
        # that every quarantine row keeps an id of its own (the review queue is keyed by it). Rows quarantined at
        # commit carry a `mark` as well, apart from those the contract quarantined from the same line.
        nth = pl.col("source_row").cum_count().over("source_row")
        suffix = pl.when(nth > 1).then(pl.lit(".") + nth.cast(pl.String)).otherwise(pl.lit(""))
        return rows.with_columns(
            quarantine_id=pl.lit(f"{self.batch_id}:") + pl.col("source_row").cast(pl.String) + pl.lit(mark) + suffix,
            batch_id=pl.lit(self.batch_id),
            region=pl.lit(self.region.code),
            status=pl.when(pl.col("hold").is_null()).then(pl.lit("open")).otherwise(pl.lit("held")),
            quarantined_at=pl.lit(self.started),
        )

    def _file(self, kind: str, number: int | None = None) -> Path:
        return self.folder / f"{kind}-{self._staged if number is None else number:06d}.parquet"

    def _files(self, kind: str) -> list[str]:
        return sorted(str(p) for p in self.folder.glob(f"{kind}-*.parquet"))


#: Staging files live seconds and are read once: writing them fast beats making them small (about twice as fast
#: as lz4 with statistics).
_STAGING_PARQUET = {"compression": "uncompressed", "statistics": False}

#: An event is one payment's event of one type and status (the contract's event_id, compared part by part).
_EVENT_PARTS = ", ".join(EVENT_ID_PARTS)
_SAID = ", ".join(REPEATED_COLUMNS)
_EVENT_HASH = f"hash({_EVENT_PARTS})"
#: While a batch loads, temporary tables of the connection: the store's events that this batch repeats, the staged
#: rows that repeat an event, and each of those sorted (first delivery, duplicate, or other money).
_STORED_EVENTS = "kanda_batch_stored_events"
_REPEATS = "kanda_batch_repeats"
_SORTED = "kanda_batch_sorted_repeats"
_DECIDED_REPEATS = "kanda_batch_decided_repeats"
#: A staged event's raw record, as JSON text, where the batch keeps it (`StagedBatch` without `raw_lines`).
_RAW = "raw_json"
#: The store's refunds whose time a steward supplied, and the staged refunds held for repeating one at another minute
#: (or for repeating, with a steward's time, a stored refund): `_hold_other_times`.
_STEWARD_TIMED = "kanda_batch_steward_timed"
_OTHER_TIMES = "kanda_batch_other_times"
#: What two refunds of a payment must share to be one refund given two minutes (`REPEAT_OTHER_TIME`).
_REFUND_KEY = "transaction_id, status, amount_minor, currency"
#: The field of a fix batch's raw record saying that a steward approved the row as a second refund of its payment,
#: told while editing that a refund of the same amount is counted at another minute (`kanda.review.refund_times`).
SECOND_REFUND = "second_refund"
#: Whether a fix batch's staged row `t` is a second refund by a steward's decision: approved over that notice, or
#: approved from a quarantine row of its own (which the fix batch names in its raw record) that failed
#: `REPEAT_OTHER_TIME`.
_APPROVED_SECOND = (
    f"(coalesce(json_extract_string({{t}}.{_RAW}, '$.{SECOND_REFUND}') = 'true', false)"
    " OR EXISTS (SELECT 1 FROM quarantine AS q"
    f" WHERE q.quarantine_id = json_extract_string({{t}}.{_RAW}, '$.quarantine_id')"
    f" AND list_contains(json_extract_string(q.reasons, '$[*].rule'), '{REPEAT_OTHER_TIME}')))"
)


#: A settled running total's columns: the difference it adds (`s.total`: what the store holds), and the total
#: itself as its reference.
_SETTLED = {
    "amount_minor": "l.amount_minor - coalesce(s.total, 0) AS amount_minor",
    "net_minor": "l.amount_minor - coalesce(s.total, 0) - l.fee_minor AS net_minor",
    "event_ref": "abs(l.amount_minor) AS event_ref",
}


def dirty_quarantine_days(con: duckdb.DuckDBPyConnection, region: RegionConfig, ids: str) -> None:
    """Mark dirty the days of the quarantine rows named in the relation `ids` (a `quarantine_id` column) when they
    leave quarantine: the day a row was quarantined on loses it (`rows_quarantined`), whichever day its event
    lands on, and even when its event adds nothing (a refund a later total already covers)."""
    con.execute(
        "INSERT INTO dirty_days SELECT DISTINCT coalesce(local_date, CAST(timezone(?, quarantined_at) AS DATE))"
        f" FROM quarantine WHERE quarantine_id IN (SELECT quarantine_id FROM {ids})",
        [region.zone],
    )


def _time_supplied(t: str, lines: str) -> str:
    """Whether the time of an event `t` (stored, or staged by a fix batch) is a steward's: no quarantine row of its
    line made by a file or a release (what the rail said of that line) states it. A fix batch's events keep their
    line, and a time that was unreadable or missing is stated by none; a fix quarantined again and approved later is
    judged by its line's first quarantine row too, so the steward's time is still recognised as theirs. `lines` is a
    relation holding the lines asked about (`t`'s own), so that only their quarantine rows' JSON is read."""
    return (
        "NOT EXISTS (SELECT 1 FROM (SELECT source_file, source_row, batch_id, parsed FROM quarantine"
        f"   WHERE (source_file, source_row) IN (SELECT source_file, source_row FROM {lines})) AS q0"
        f" WHERE q0.source_file = {t}.source_file AND q0.source_row = {t}.source_row"
        " AND q0.batch_id NOT IN (SELECT batch_id FROM ledger WHERE kind = 'fix')"
        f" AND TRY_CAST(json_extract_string(q0.parsed, '$.occurred_at') AS TIMESTAMPTZ) = {t}.occurred_at)"
    )


def _refund_minute(alias: str = "") -> str:
    """`REFUND_MINUTE_SQL` of the rows under `alias`: the `event_ref` of a refund told apart by its minute."""
    return REFUND_MINUTE_SQL.replace("occurred_at", f"{alias}occurred_at")


def _said(alias: str = "") -> str:
    """What a delivery of an event said that a duplicate must say again (`REPEATED_COLUMNS`), as one value."""
    return "{" + ", ".join(f"'{c}': {alias}{c}" for c in REPEATED_COLUMNS) + "}"


def _staged(files: list[str], *, placed: bool) -> str:
    """The staged files as a relation; `placed` adds where each row sits, to tell apart rows of one event that
    share a line number (a steward's fix batch holds rows of several files, whose numbers repeat)."""
    where = ", filename = true, file_row_number = true" if placed else ""
    return f"read_parquet({_sql_list(files)}{where})"


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join(sql_text(p) for p in paths) + "]"
