"""Ingest native files into a regional store: adapter -> contract -> quarantine or load, exactly once.

A file is one batch and one DuckDB transaction: its events, its quarantine rows, the days it touched and its
ledger row commit together or not at all (`kanda.regional.batch` stages the validated chunks so that this holds for
files larger than memory), so a crash anywhere leaves the store as it was and a rerun finishes the job. The file's
content hash in the ledger makes a second delivery of the same file a no-op; the event identity (transaction,
event type, status) makes a second delivery of the same webhook a counted duplicate.
"""

from __future__ import annotations

import csv
import datetime as dt
import filecmp
import glob
import io
import logging
import os
import queue
import shutil
import stat
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
import pyarrow as pa

from kanda.regional.archive import file_hash, kept_under_batch, processed_dir
from kanda.regional.batch import StagedBatch, clear_staging, dirty_quarantine_days
from kanda.regional.ledger import BatchCounts
from kanda.regional.owners import stored_owners
from kanda.regional.store import memory_limit, open_store, registered, transaction
from kanda.settings import Settings
from quality.boundary import canonicalise
from quality.contract import contract_dtypes, event_id_expr, event_ref_expr
from regions import RegionConfig, get_region
from regions.rails import Adapter, FileRejected, ReadContext, get_adapter

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The note on a loaded file that held no records.
NO_DATA_ROWS = "no data rows: the file holds no records to load (a header-only export, or only rows the rail ignores)"

#: Called after each chunk with (file name, rows so far) so that the CLI can drive a progress bar.
Progress = Callable[[str, int], None]
#: The quarantined rows a steward has decided whose decision has not reached the store (quarantine ids), asked under
#: the store's lock before the files are read: an ingest neither releases such a held row nor loads a file's copy of
#: any of them as it came (`kanda.review.reprocess.decided_rows`, which the region flow passes).
KeepHeld = Callable[[], Iterable[str]]


@dataclass
class FileResult:
    file: str
    status: str  # loaded | rejected | already_ingested
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    ignored: int = 0
    reason: str | None = None  # why rejected; for a loaded file, a note (e.g. no data rows)
    batch_id: str | None = None
    kind: str | None = None  # rejected: the reason's class, a key of regions.rails.base.REJECT_KINDS

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "status": self.status,
            "rows_in": self.rows_in,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "reason": self.reason,
            "kind": self.kind,
        }


@dataclass
class IngestReport:
    region: str
    files: list[FileResult] = field(default_factory=list)
    released: BatchCounts | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ingest_files(
    settings: Settings,
    region_code: str,
    paths: Iterable[Path],
    *,
    progress: Progress | None = None,
    keep_held: KeepHeld | None = None,
) -> IngestReport:
    """Ingest files into one region's store under its writer lock, then release any held rows now onboarded
    (except those `keep_held` names: see `release_held`)."""
    region = get_region(region_code)
    asked_at = _now()  # before waiting for the lock: a landing ingest may file a named file away meanwhile
    with open_store(settings, region.code) as con:
        return _ingest(
            con, settings, region, [Path(p) for p in paths], progress=progress, asked_at=asked_at, keep_held=keep_held
        )


def ingest_landing(
    settings: Settings, region_code: str, *, progress: Progress | None = None, keep_held: KeepHeld | None = None
) -> IngestReport:
    """Ingest every file waiting in the region's landing folder, then move each out of the way.

    The folder is listed, and each file moved, only while holding the region's writer lock: a second ingest of
    the same folder waits for the first and then sees only what the first left, instead of a listing of files
    that were moved away meanwhile (which it would record as "file not found" rejections). Loaded and
    already-ingested files move to `processed/` right after their transaction commits; rejected files were
    already kept under `KANDA_HOME/rejected/`. A crash before the move only means the next run finds the file
    again and sees, by its hash, that it is already ingested.
    """
    region = get_region(region_code)
    with open_store(settings, region.code) as con:
        paths = pending_files(settings, region)
        return _ingest(con, settings, region, paths, progress=progress, file_away=True, keep_held=keep_held)


def _ingest(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    region: RegionConfig,
    paths: list[Path],
    *,
    progress: Progress | None,
    file_away: bool = False,
    asked_at: dt.datetime | None = None,
    keep_held: KeepHeld | None = None,
) -> IngestReport:
    with memory_limit(con, settings.ingest_memory_limit, restore=settings.duckdb_memory_limit):
        return _ingest_paths(
            con, settings, region, paths, progress=progress, file_away=file_away, asked_at=asked_at, keep_held=keep_held
        )


def _ingest_paths(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    region: RegionConfig,
    paths: list[Path],
    *,
    progress: Progress | None,
    file_away: bool,
    asked_at: dt.datetime | None = None,
    keep_held: KeepHeld | None = None,
) -> IngestReport:
    report = IngestReport(region.code)
    clear_staging(settings.home, region.code)
    sync_registry(con, settings, region)
    # held rows a steward has decided, the decision not in the store yet: their copies are not loaded as they came
    decided = frozenset(keep_held()) if keep_held else frozenset()
    done = processed_dir(settings, region.code)
    for path in paths:
        if file_away and not _regular_file(path):
            # checked before any reader (or hashing) opens it: a link may point anywhere on the machine
            result = _reject(con, settings, region, path, None, _not_regular_reason(path), kind=NOT_A_REGULAR_FILE)
        else:
            result = ingest_file(con, settings, region, path, progress=progress, asked_at=asked_at, decided=decided)
        report.files.append(result)
        if not file_away:
            continue
        if result.status == "rejected":
            path.unlink(missing_ok=True)  # a link itself is removed, never its target
        else:
            done.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), _archive_name(done, path, result))
    report.released = release_held(con, settings, region, keep=decided)
    return report


def _filed_away_by_another_run(
    con: duckdb.DuckDBPyConnection, settings: Settings, region: RegionConfig, path: Path, asked_at: dt.datetime | None
) -> FileResult | None:
    """A landing-folder file named on the command line that a landing ingest running meanwhile loaded and moved
    to `processed/`: it is ingested, not a rejected file (which would stay on the region's record for good). Only a
    file of that name loaded since it was named counts: rails reuse names (`statement.csv` every month), and last
    month's archived statement says nothing of a file that was never there."""
    landing = settings.landing(region.code)
    if asked_at is None or path.parent.resolve() != landing.resolve():
        return None
    done = processed_dir(settings, region.code)
    for kept in [done / path.name, *sorted(done.glob(f"{glob.escape(path.stem)}.*{glob.escape(path.suffix)}"))]:
        if not kept.is_file():
            continue
        seen = con.execute(
            "SELECT batch_id FROM ledger WHERE kind = 'file' AND content_hash = ? AND finished_at >= ? LIMIT 1",
            [file_hash(kept), asked_at],
        ).fetchall()
        if seen:
            reason = f"moved to {kept} by another run, which ingested it (batch {seen[0][0]})"
            return FileResult(path.name, "already_ingested", reason=reason)
    return None


def _archive_name(done: Path, path: Path, result: FileResult) -> Path:
    """Where a landed file is kept once read: its own name, unless an earlier file of that name (rails reuse
    export names: `statement.csv` every month) is kept there with other content, which a move would overwrite."""
    target = done / path.name
    if not target.exists() or filecmp.cmp(path, target, shallow=False):
        return target
    return kept_under_batch(done, path.name, result.batch_id or f"{_now():%Y%m%dT%H%M%S%f}")


#: The kind of a whole-file reject for a landing-folder entry that is not a plain file (a link, a pipe, a device).
NOT_A_REGULAR_FILE = "not_a_regular_file"


def _not_regular_reason(path: Path) -> str:
    """Says what the entry is and that it was not read; never where a link points, nor anything it points at."""
    what = "a symbolic link" if path.is_symlink() else "not a regular file (a pipe, socket or device)"
    return (
        f"{what}: kanda does not follow links or read anything but regular files, so it was not read and nothing"
        " was kept; put the file itself in the landing folder"
    )


def _regular_file(path: Path) -> bool:
    """A plain file in its own right: not a link (to anywhere), not a pipe, socket or device."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return True  # gone since the listing: `ingest_file` says so


def pending_files(settings: Settings, region: RegionConfig) -> list[Path]:
    """Entries of the landing folder matching the region's pattern, links and other non-files included (so that
    they are rejected and removed rather than waiting forever); sub-folders are not entries to ingest."""
    folder = settings.landing(region.code)
    if not folder.exists():
        return []
    # `glob` reads a folder it may not list as an empty one: "no files waiting", exit 0, while files wait
    with os.scandir(folder):
        pass
    _require_own_landing(settings, region, folder)
    return sorted(p for p in folder.glob(region.file_glob) if p.is_symlink() or not p.is_dir())


class LandingTaken(ValueError):
    """The region's landing folder is, once links and `..` are followed, an earlier region's: its files are not
    this region's to take."""


def _require_own_landing(settings: Settings, region: RegionConfig, folder: Path) -> None:
    """Region files naming the same folder are refused when loaded (`regions._refuse_shared_landing`), but only as
    written: an absolute path to another region's folder under the landing root, or a link to it, took that
    region's files into this region's store (all quarantined there) and left the owner "no files waiting". The
    first region (in the order regions load) keeps the folder, as there."""
    from regions import all_regions

    mine = folder.resolve()
    for code, other in all_regions().items():
        if settings.served and code not in settings.served:
            continue
        if other.landing_folder(settings.landing_dir).resolve() == mine:
            if code != region.code:
                raise LandingTaken(
                    f"{region.code}: landing folder {folder} is region {code}'s landing folder too; {region.code}"
                    f" ingests nothing until its region file names a folder of its own"
                )
            return


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    region: RegionConfig,
    path: Path,
    *,
    progress: Progress | None = None,
    asked_at: dt.datetime | None = None,
    decided: Collection[str] = (),
) -> FileResult:
    """One file in one transaction. `asked_at`: when the file was named (on the command line), so that a file a
    landing ingest loaded and filed away since then is known for what it is. `decided`: quarantine ids of held rows a
    steward has decided whose decision has not reached the store (`StagedBatch`)."""
    if not path.is_file():
        moved = _filed_away_by_another_run(con, settings, region, path, asked_at)
        if moved is not None:
            return moved
        missing = "the file was not found (or is not a regular file)"
        return _reject(con, settings, region, path, None, missing, "not_found")
    adapter = get_adapter(region.source_format)
    ctx = ReadContext(region=region, salt=settings.buyer_salt, batch_rows=settings.batch_rows)
    # The reader starts before the file is hashed: detecting the encoding and parsing the first chunk (the reader
    # thread) overlap hashing it (this one), which otherwise ran alone on one core. A file already ingested costs
    # what was read ahead meanwhile (at most two chunks, or a workbook's first sheet), dropped when the reader closes.
    with Prefetched(adapter.read(path, ctx)) as chunks:
        content_hash = file_hash(path)
        seen = con.execute(
            "SELECT batch_id FROM ledger WHERE kind = 'file' AND content_hash = ? LIMIT 1", [content_hash]
        ).fetchall()
        if seen:
            return FileResult(path.name, "already_ingested", reason=f"same content as batch {seen[0][0]}")
        batch_id = f"{region.code}-{_now():%Y%m%dT%H%M%S%f}-{content_hash[:10]}"
        batch = StagedBatch(
            settings.home,
            region,
            batch_id,
            _known_creators(con, region),
            raw_lines=_lines_of(adapter, path, ctx),
            owners=stored_owners(con),
            decided=decided,
        )
        try:
            for chunk in chunks:
                frame = canonicalise(
                    chunk.frame, region, source=region.source_format, source_file=path.name, batch_id=batch_id
                )
                batch.add(frame, ignored=chunk.ignored)
                if progress:
                    progress(path.name, batch.counts.rows_read)
        except FileRejected as exc:
            batch.discard()
            return _reject(con, settings, region, path, content_hash, exc.reason, exc.kind)
        except BaseException:
            batch.discard()
            raise
    counts = batch.commit(con, kind="file", file_name=path.name, content_hash=content_hash)
    return FileResult(
        path.name,
        "loaded",
        rows_in=counts.rows_in,
        loaded=counts.loaded,
        quarantined=counts.quarantined,
        duplicates=counts.duplicates,
        ignored=counts.ignored,
        batch_id=batch_id,
        # A header without records is a plausible export (a quiet day): loaded as 0 rows, the same in every rail.
        reason=NO_DATA_ROWS if counts.rows_in == 0 else None,
    )


def _lines_of(adapter: Adapter, path: Path, ctx: ReadContext) -> Callable[[pl.Series], pl.DataFrame]:
    """The raw records of some lines of `path`, read again: wanted at commit for the few lines quarantined there,
    whose raw text the staged events do not keep."""

    def lines(rows: pl.Series) -> pl.DataFrame:
        found = [
            chunk.frame.filter(pl.col("source_row").is_in(rows.implode())).select(
                "source_row", pl.col("raw_record").struct.json_encode()
            )
            for chunk in adapter.read(path, ctx)
        ]
        return pl.concat(found) if found else pl.DataFrame(schema={"source_row": pl.Int64, "raw_record": pl.String})

    return lines


class Prefetched(Iterator[T]):
    """Iterate `chunks` while a background thread reads the next one ahead, from the moment this is created.

    Reading and mapping (pyarrow, polars) and validating and inserting (pandera, DuckDB) each spend most of their
    time in native code that releases the GIL, so on two cores the two halves overlap. At most `depth` chunks wait
    in the queue, which keeps memory bounded to a few chunks. An exception in the reader (`FileRejected`) is
    re-raised here, in the caller's thread, so the transaction logic sees it exactly as before. Use it as a
    context manager: leaving the block, iterated to the end or not, tells the reader to stop and joins it.
    """

    def __init__(self, chunks: Iterator[T], depth: int = 1) -> None:
        self._slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._reader = threading.Thread(target=self._produce, args=(chunks,), name="kanda-ingest-reader", daemon=True)
        self._reader.start()

    def _produce(self, chunks: Iterator[T]) -> None:
        try:
            for item in chunks:
                while not self._stop.is_set():
                    try:
                        self._slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._slots.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._slots.put(("error", exc))

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._slots.get()
        if kind == "item":
            return value  # type: ignore[return-value]
        self._finished = True
        if kind == "error":
            raise value  # type: ignore[misc]
        raise StopIteration

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        while self._reader.is_alive():
            with suppress(queue.Empty):
                self._slots.get(timeout=0.1)
        self._reader.join()


def _reject(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    region: RegionConfig,
    path: Path,
    content_hash: str | None,
    reason: str,
    kind: str,
) -> FileResult:
    """Record a whole-file reject and keep a copy of the file beside its reason, once per content.

    Only a regular file is copied: `copy2` would follow a link and keep (a copy of) whatever it points at.
    """
    kept = ""
    if _regular_file(path) and path.exists():
        folder = settings.rejected_dir / region.code.lower()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{(content_hash or 'nohash')[:12]}_{path.name}"
        # a copy cut short by a crash must not pass for the file, whose landing original goes once it is kept
        if not (target.exists() and filecmp.cmp(path, target, shallow=False)):
            partial = target.with_name(f".{target.name}.part")
            shutil.copy2(path, partial, follow_symlinks=False)
            partial.replace(target)
        kept = str(target)
        (folder / f"{target.name}.reason.txt").write_text(f"{reason}\nkind: {kind}\n")
    exists = con.execute(
        "SELECT 1 FROM rejected_files WHERE content_hash = ? AND file_name = ?", [content_hash or "", path.name]
    ).fetchall()
    if not exists:
        con.execute(
            "INSERT INTO rejected_files (region, file_name, content_hash, reason, kept_at, rejected_at, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [region.code, path.name, content_hash or "", reason, kept, _now(), kind],
        )
    return FileResult(path.name, "rejected", reason=reason, kind=kind)


class RegistryError(ValueError):
    """A registry file, or a record of the region being ingested, that cannot be read: the message names the file,
    the line and the cause. Raised before the store is touched, so the region's files wait in its landing folder;
    a broken record of another region never raises (see `sync_registry`)."""


def sync_registry(con: duckdb.DuckDBPyConnection, settings: Settings, region: RegionConfig) -> None:
    """Copy the region's creators and products from the registry files into the store (small, replaced whole).

    The registry files are shared by every region, so one region's broken record must not stop another: a record
    that cannot be read (a field too many or too few, broken quoting, bytes that are not UTF-8) is skipped with a
    warning when it is another region's, or nobody's one can tell, and that region's own ingest reports it. A
    broken record of this region, a `price_minor` that is not a whole number, or a header without a column the
    store needs is a `RegistryError` naming the file, the line(s) and the cause.
    """
    read = {}  # both files are read before either is copied: a `RegistryError` leaves the store as it was
    for table, file_name in (("creators", "creators.csv"), ("products", "products.csv")):
        path = settings.registry_dir / file_name
        if path.exists():
            columns = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall()]
            read[table] = (columns, registry_rows(path, region, columns))
    if "creators" in read:
        _warn_other_currencies(read["creators"][1], region)
    for table, (columns, rows) in read.items():
        with registered(con, "kanda_registry_rows", rows.to_arrow()), transaction(con):
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT {', '.join(columns)} FROM kanda_registry_rows")


def _warn_other_currencies(creators: pl.DataFrame, region: RegionConfig) -> None:
    """A creator's registry `currency` other than the region's: the money is the region's (the contract holds
    every event to it), and so are the reports; a different value is a registry mistake worth naming."""
    if "currency" not in creators.columns:
        return
    other = creators.filter(pl.col("currency").str.strip_chars().str.to_uppercase() != region.currency)
    for creator_id, currency in other.select("creator_id", "currency").iter_rows():
        log.warning(
            "%s: registry: creator %s has currency %r, but %s settles in %s; reports show %s",
            region.code,
            creator_id,
            currency,
            region.code,
            region.currency,
            region.currency,
        )


def registry_rows(path: Path, region: RegionConfig, columns: list[str]) -> pl.DataFrame:
    """The region's rows of one registry file: every value as text (an empty field is null), `price_minor` as an
    integer. Each record is checked alone (Python's csv module, strict quoting) before polars reads this region's
    records, so that polars never sees another region's lines."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"registry file {path} cannot be read: {exc.strerror or exc}") from None
    lines = raw.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the last line's terminator
    header = _registry_header(path, lines, columns)
    at = {name: header.index(name) for name in ("region", "creator_id", "product_id") if name in header}
    kept: list[tuple[int, bytes]] = []  # this region's records: (line, raw text)
    problems: list[str] = []
    for line, text, fields, cause in _registry_records(lines, len(header)):
        if fields is not None:
            if fields[at["region"]] == region.code:
                kept.append((line, text))
        elif _of_region(text, at, region.code):
            problems.append(f"line {line}: {cause}")
        else:
            message = "%s: registry file %s line %d skipped (not a record of %s): %s"
            log.warning(message, region.code, path, line, region.code, cause)
    _raise_problems(path, region, problems)
    try:
        rows = _read_records(lines[0], [text for _, text in kept])
    except pl.exceptions.PolarsError:
        # a record Python's csv module reads but polars does not: found and named by reading each one alone
        for line, text in kept:
            try:
                _read_records(lines[0], [text])
            except pl.exceptions.PolarsError as exc:
                problems.append(f"line {line}: {str(exc).splitlines()[0]}")
        _raise_problems(path, region, problems)
        raise
    if rows.height != len(kept):  # each record is one row; anything else is a bug, not a bad record
        raise AssertionError(f"{path}: {len(kept)} records of {region.code} read as {rows.height} rows")
    key = "product_id" if "product_id" in columns else "creator_id"
    repeated = (
        rows.with_row_index("kanda_row")
        .filter(pl.col(key).is_not_null() & pl.col(key).is_duplicated())
        .group_by(key, maintain_order=True)
        .agg("kanda_row")
    )
    _raise_problems(
        path,
        region,
        [
            f"{key} {value} is on lines {', '.join(str(kept[i][0]) for i in indices)}: one record per {key} (a"
            " new price or title edits its line), else every sale of it would be counted once per record"
            for value, indices in repeated.iter_rows()
        ],
    )
    if "price_minor" in columns:
        price = pl.col("price_minor")
        bad = rows.with_row_index("kanda_row").filter(
            price.is_not_null() & price.cast(pl.Int64, strict=False).is_null()
        )
        problems = [
            f"line {kept[index][0]}: price_minor {value!r} is not a whole number (of minor units)"
            for index, value in zip(bad["kanda_row"], bad["price_minor"], strict=True)
        ]
        _raise_problems(path, region, problems)
        rows = rows.with_columns(price.cast(pl.Int64))
    return rows


def _registry_header(path: Path, lines: list[bytes], columns: list[str]) -> list[str]:
    """The header's names; a file without a header, or without a column the store needs, is a `RegistryError`."""
    try:
        header = next(csv.reader([lines[0].decode()], strict=True), []) if lines else []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RegistryError(f"registry file {path}: line 1 (the header) cannot be read: {_record_cause(exc)}") from None
    if not header:
        raise RegistryError(f"registry file {path}: no header on line 1 (expected: {', '.join(columns)})")
    missing = [name for name in (*columns, "region") if name not in header]
    if missing:
        raise RegistryError(
            f"registry file {path}: the header (line 1) lacks column(s) {', '.join(dict.fromkeys(missing))}"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise RegistryError(f"registry file {path}: the header (line 1) repeats column(s) {', '.join(repeated)}")
    return header


def _registry_records(lines: list[bytes], width: int) -> Iterator[tuple[int, bytes, list[str] | None, str | None]]:
    """Every record after the header: its first line (1-based), its raw text, and its fields, or None and the cause
    when it cannot be read. A broken record is given as its first line alone and reading starts again on the next
    line, so that an unclosed quote cannot swallow the records after it. Blank lines are skipped."""
    start = 1
    while start < len(lines):
        base = start
        reader = csv.reader((lines[i].decode() + "\n" for i in range(base, len(lines))), strict=True)
        while start < len(lines):
            try:
                fields = next(reader)
            except (csv.Error, UnicodeDecodeError) as exc:
                yield start + 1, lines[start], None, _record_cause(exc)
                start += 1
                break  # a new reader, from the next line
            end = base + reader.line_num
            if fields and len(fields) != width:
                yield start + 1, lines[start], None, f"{len(fields)} fields where the header has {width}"
                start += 1
                break
            if fields:
                yield start + 1, b"\n".join(lines[start:end]), fields, None
            start = end


def _record_cause(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at column {exc.start + 1})"
    return f"broken quoting ({exc})"


def _of_region(text: bytes, at: dict[str, int], code: str) -> bool:
    """Whether a line that cannot be read is the region's: its region field, or a creator or product id with the
    region's prefix (read leniently: the line is broken)."""
    fields = next(csv.reader([text.decode(errors="replace")]), [])
    cell = {name: fields[i].strip().upper() for name, i in at.items() if i < len(fields)}
    return cell.get("region") == code or any(
        cell.get(name, "").startswith(f"{code}-") for name in ("creator_id", "product_id")
    )


def _raise_problems(path: Path, region: RegionConfig, problems: list[str]) -> None:
    if not problems:
        return
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    raise RegistryError(f"{region.code}: registry file {path}: {region.code}'s record(s) cannot be read: {shown}")


def _read_records(header: bytes, records: list[bytes]) -> pl.DataFrame:
    text = b"\n".join([header, *records]) + b"\n"
    return pl.read_csv(io.BytesIO(text), infer_schema_length=0)


def _known_creators(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> pl.Series:
    return con.sql(f"SELECT creator_id FROM creators WHERE region = '{region.code}'").pl()["creator_id"]


#: A quarantine row whose raw record names a money column in US dollars, `Sale Price ($)`: an older kanda read
#: Gumroad's `($)` as the region's currency and held such rows, whose amounts may be dollars. Today's readers refuse
#: those files, so only rows kept from before can match (`kanda verify` names them: `dollar_records`).
DOLLAR_RECORD_SQL = "list_bool_or(list_transform(json_keys(raw_record), lambda k: k LIKE '%($)'))"


def release_held(
    con: duckdb.DuckDBPyConnection, settings: Settings, region: RegionConfig, *, keep: Iterable[str] = ()
) -> BatchCounts | None:
    """Load held `unknown_creator` rows whose creator is now in the registry, as one balanced batch.

    The rows go through the same contract and duplicate rule as on arrival; their provenance (source file and
    row) is kept, and the quarantine row is marked released with the batch that loaded it. A row read from a
    `($)` file by an older kanda stays held: its amounts may be US dollars, which a steward must look at. So do the
    rows `keep` names (quarantine ids): those a steward has decided (fixed under another creator, or rejected) and
    whose decision has not reached the store yet; released as they arrived, the decision would be overtaken.
    """
    known = _known_creators(con, region)
    kept = pa.table({"quarantine_id": pa.array(sorted(set(keep)), pa.string())})
    with registered(con, "kanda_known", known.to_frame().to_arrow()), registered(con, "kanda_kept_held", kept):
        held = con.sql(
            "SELECT quarantine_id, parsed FROM quarantine WHERE status = 'held' AND hold = 'unknown_creator'"
            f" AND creator_id IN (SELECT creator_id FROM kanda_known) AND NOT coalesce({DOLLAR_RECORD_SQL}, false)"
            " AND quarantine_id NOT IN (SELECT quarantine_id FROM kanda_kept_held)"
        ).pl()
    if held.is_empty():
        return None
    batch_id = f"{region.code}-{_now():%Y%m%dT%H%M%S%f}-release"
    schema = pl.Struct(contract_dtypes())
    frame = held.select(pl.col("parsed").str.json_decode(schema).alias("p"), "quarantine_id").unnest("p")
    # a row held by an older kanda has no `event_ref`: the one its reader gives now (as the store upgrade did)
    frame = frame.with_columns(event_ref=pl.coalesce("event_ref", event_ref_expr())).with_columns(
        event_id=event_id_expr(), batch_id=pl.lit(batch_id), raw_record=pl.struct(pl.col("quarantine_id"))
    )
    batch = StagedBatch(settings.home, region, batch_id, known, hold_unknown=False)
    batch.add(frame.drop("quarantine_id"))
    # the release is marked in the same transaction as the load (see StagedBatch.commit's `also`)
    released = frame.select("quarantine_id").to_arrow()

    def mark_released(con: duckdb.DuckDBPyConnection) -> None:
        with registered(con, "kanda_released", released):
            con.execute(
                "UPDATE quarantine SET status = 'released', released_at = ?, released_batch = ?"
                " WHERE quarantine_id IN (SELECT quarantine_id FROM kanda_released)",
                [_now(), batch_id],
            )
            dirty_quarantine_days(con, region, "kanda_released")

    return batch.commit(con, kind="release", file_name=None, content_hash=None, also=mark_released)


__all__ = ["FileResult", "IngestReport", "RegistryError", "ingest_file", "ingest_files", "ingest_landing", "open_store"]
