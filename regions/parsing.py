"""Vectorised building blocks shared by the adapters: streaming readers, amount and time parsing, buyer hashing.

Everything here works on whole columns (polars expressions, pyarrow and DuckDB kernels); nothing loops over rows
in Python, because ingestion throughput is bounded by the slowest per-row step.
"""

from __future__ import annotations

import codecs
import functools
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
import polars_hash as plh
import pyarrow as pa
import pyarrow.csv as pacsv

from regions import RegionConfig
from regions.rails.base import ADAPTER_SCHEMA, RAIL_REF, Expects, FileRejected

_BENGALI_DIGITS = {chr(0x09E6 + i): str(i) for i in range(10)}
_ARABIC_INDIC_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)}
_SAMPLE_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------------- file reading
def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as UTF-8, else Windows-1252/Latin-1.

    Checked over the whole file in blocks with an incremental decoder (C speed, constant memory): a Latin-1 byte
    can sit anywhere, and discovering it after half the file was loaded would fail the batch. A file that opens
    with UTF-8's byte-order mark and then holds a byte that is not UTF-8 has two encodings mixed (files joined, or
    one value edited by another tool): read as Latin-1 its mark became `ï»¿` in the first column's name, and the file
    was refused for a missing column it has. It is refused for what it is.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        marked = handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        handle.seek(0)
        try:
            while block := handle.read(16 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            if marked:
                raise rejection(
                    "wrong_encoding",
                    f"the file starts with UTF-8's byte-order mark but holds a byte that is not UTF-8"
                    f" ({exc.object[exc.start : exc.start + 1]!r}): two encodings are mixed in it",
                ) from None
            return "latin-1"
    return "utf-8"


def require_nonempty(path: Path) -> None:
    """Reject a missing or zero-byte file before any reader sees it (readers fail on these with internals)."""
    if not path.is_file():
        raise FileRejected("the file was not found (or is not a regular file)", "not_found")
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty (0 bytes): nothing arrived, so fetch the export again", "empty_file")


def read_header(path: Path, encoding: str, delimiter: str = ",") -> list[str]:
    """The first line split by `delimiter` as CSV, names stripped (a UTF-8 byte-order mark removed)."""
    import csv

    with path.open("r", encoding=encoding, newline="") as handle:
        line = handle.readline()
    header = next(csv.reader([line.lstrip("\ufeff")], delimiter=delimiter), [])
    return [h.strip() for h in header]


# ------------------------------------------------------------------------------------------ what a file looks like
@dataclass(frozen=True)
class Looks:
    """What a file's first bytes say it is: `shape` for decisions, `words` for the person reading a rejection."""

    #: empty | blank | zip | pdf | gzip | ole2 | utf16 | utf32 | binary | html | xml | json | json_array | text
    shape: str
    words: str


#: How a shape is named to a person. Never built from the content itself.
_SHAPE_WORDS = {
    "empty": "the file is empty (0 bytes)",
    "blank": "the file holds only blank lines",
    "zip": "this looks like a ZIP archive (an Excel .xlsx workbook, a Word document or zipped files)",
    "pdf": "this looks like a PDF document",
    "gzip": "this looks like a gzip-compressed file",
    "ole2": "this looks like an old Office file (an Excel 97-2003 .xls workbook or similar)",
    "utf16": "this looks like UTF-16 text (what Excel's 'Unicode Text' and some Windows tools save)",
    "utf32": "this looks like UTF-32 text",
    "binary": "this looks like binary data (an image, a program or a damaged file), not text",
    "html": "this looks like an HTML web page (a login or error page saved instead of the export?)",
    "xml": "this looks like an XML document (an Excel 2003 XML sheet or a web-service response?)",
    "json": "this looks like JSON lines (one object per line, as webhook logs are)",
    "json_array": "this looks like a single JSON document (an array), not one JSON object per line",
    "text": "this looks like text",
}
_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"%PDF", "pdf"),
    (b"\x1f\x8b", "gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"\xff\xfe\x00\x00", "utf32"),
    (b"\x00\x00\xfe\xff", "utf32"),
    (b"\xff\xfe", "utf16"),
    (b"\xfe\xff", "utf16"),
)
_SNIFF_BYTES = 8192
#: Bytes that never occur in a text export (C0 controls other than tab, newlines, form feed and escape).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def sniff(path: Path) -> Looks:
    """What the file looks like from its first 8 KiB: magic numbers, byte-order marks, NUL bytes, first character.

    Text is told apart only as far as a rejection needs: JSON, HTML, XML, or other text (which a CSV reader then
    judges by its header). A file of blank lines is `blank`, so it is treated like an empty one.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise FileRejected(f"the file cannot be opened ({type(exc).__name__})", "unreadable") from exc
    shape = _shape(head, size)
    return Looks(shape, _SHAPE_WORDS[shape] if shape != "text" else _text_words(head))


def _shape(head: bytes, size: int) -> str:
    if size == 0:
        return "empty"
    for magic, shape in _MAGIC:
        if head.startswith(magic):
            return shape
    if b"\x00" in head:
        # UTF-16 without a byte-order mark has a NUL beside almost every ASCII character.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 50 + 1:
            return "utf16"
        return "binary"
    if sum(head.count(c) for c in _CONTROL) > len(head) // 20:
        return "binary"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        return "blank" if size <= len(head) else "text"
    lowered = text[:256].lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "html"
    if lowered.startswith("<?xml") or lowered.startswith("<"):
        return "html" if "<html" in head[:2048].decode("latin-1").lower() else "xml"
    if text.startswith("{"):
        return "json"
    if text.startswith("["):
        return "json_array"
    return "text"


def _text_words(head: bytes) -> str:
    """ "text separated by ';'" and the like: the separator is structure, not content, so it may be named."""
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").split("\n", 1)[0]
    counts = {sep: first.count(sep) for sep in (",", ";", "\t", "|")}
    sep = max(counts, key=counts.__getitem__)
    if not counts[sep]:
        return "this looks like plain text without a separated header line"
    return f"this looks like CSV text separated by {_SEPARATOR_NAMES[sep]}"


_SEPARATOR_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}

#: The rejection kind for a file that looks like `shape`, per container a rail reads; None: the shape fits.
_MISFIT = {
    "csv": {"text": None, "json": "not_csv", "json_array": "not_csv", "html": "not_csv", "xml": "not_csv"},
    "ndjson": {"json": None, "text": "not_json", "json_array": "not_json", "html": "not_json", "xml": "not_json"},
    "xlsx": {"zip": None},
}
_MISFIT_COMMON = {
    "empty": "empty_file",
    "blank": "empty_file",
    "zip": "binary_zip",
    "pdf": "binary_pdf",
    "gzip": "binary_other",
    "ole2": "binary_other",
    "binary": "binary_other",
    "utf16": "wrong_encoding",
    "utf32": "wrong_encoding",
}
#: What to do about it, by kind and then by the container the rail reads ("" for any); the words end a reason.
_ADVICE = {
    "empty_file": {"": "fetch the export again"},
    "binary_zip": {"csv": "open it in Excel and save the sheet as 'CSV UTF-8', or unzip it", "": "unzip it first"},
    "binary_pdf": {"": "download the export as a data file, not as PDF"},
    "wrong_encoding": {"csv": "save it again as UTF-8, e.g. 'CSV UTF-8' in Excel", "": "write it again as UTF-8"},
    "not_a_spreadsheet": {"": "download the export as an Excel workbook (.xlsx)"},
    "truncated": {"": "fetch the file again"},
}


def expectation(expects: Expects, region: RegionConfig) -> str:
    """ "KE (Kenya) expects an M-Pesa statement CSV with a header naming Receipt No, Completion Time, ..." """
    columns = ", ".join(expects.columns_in(region))
    naming = "fields" if expects.container == "ndjson" else "a header naming"
    return f"{region.code} ({region.name}) expects {expects.what} with {naming} {columns}"


def rejection(
    kind: str, problem: str, expects: Expects | None = None, region: RegionConfig | None = None
) -> FileRejected:
    """The one way a reader words a rejection: the problem, then what the region expects, then what to do."""
    parts = [problem]
    if expects is not None and region is not None:
        parts.append(expectation(expects, region))
    reason = "; ".join(parts)
    advice = _ADVICE.get(kind, {})
    container = expects.container if expects is not None else ""
    if advice:
        reason += f" ({advice.get(container, advice.get('', ''))})"
    return FileRejected(reason, kind)


def check_file(path: Path, expects: Expects, region: RegionConfig) -> Looks:
    """Reject a file that is missing, empty or plainly not what the rail reads, before any parser sees it.

    Parsers fed the wrong thing fail with their internals (a zip error for a text file named .xlsx, a JSON tape
    error for CSV), or worse, echo the first bytes; this names what the file looks like instead.
    """
    if not path.is_file():
        raise rejection("not_found", "the file was not found (or is not a regular file)", expects, region)
    looks = sniff(path)
    size = path.stat().st_size
    if expects.max_bytes is not None and size > expects.max_bytes:
        problem = f"the file is {_size(size)}, more than the {_size(expects.max_bytes)} this rail reads at once"
        raise rejection("too_large", f"{problem} (split the export by date range)", expects, region)
    fits = _MISFIT.get(expects.container, {})
    kind = fits[looks.shape] if looks.shape in fits else _MISFIT_COMMON.get(looks.shape)
    if expects.container == "xlsx" and looks.shape not in ("empty", "blank", "pdf", "zip"):
        kind = "not_a_spreadsheet"
    if kind is None and looks.shape == "zip":
        _check_workbook(path, expects, region)
    if kind is not None:
        raise rejection(kind, looks.words, expects, region)
    return looks


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _check_workbook(path: Path, expects: Expects, region: RegionConfig) -> None:
    """A ZIP that is a whole .xlsx workbook: its directory is readable and it holds an Excel workbook part."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        problem = "the workbook is cut off or damaged (its ZIP directory cannot be read: an interrupted download?)"
        raise rejection("truncated", problem, expects, region) from exc
    if "xl/workbook.xml" not in parts and "xl/workbook.bin" not in parts:
        what = "a Word document" if any(p.startswith("word/") for p in parts) else "zipped files"
        problem = f"this is a ZIP archive holding {what}, not an Excel workbook"
        raise rejection("not_a_spreadsheet", problem, expects, region)


#: A header name shown in a reason: starts with a letter, short, letters, digits and simple punctuation only.
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 _.()$#?/%&'-]{0,39}$")
_MAX_SHOWN = 12


def shown_header(names: list[str]) -> str:
    """The found column names for a reason, only when they look like a header; else a sentence saying why not.

    Names are file content, so they are shown only when every non-empty one starts with a letter and uses letters,
    digits and simple punctuation (at most 40 characters, at most 40 columns): that lets "Invoice, Total" through
    and keeps out data lines (amounts, dates, e-mails, phones), system-file lines (`root:x:0:0:...`) and lines
    split on the wrong separator. At most 12 are listed.
    """
    present = [n for n in names if n]
    if not present or len(names) > 40 or not all(_HEADER_NAME.match(n) for n in present):
        return "the first line does not look like a header, so it is not shown"
    listed = ", ".join(present[:_MAX_SHOWN])
    more = f" and {len(present) - _MAX_SHOWN} more" if len(present) > _MAX_SHOWN else ""
    return f"found: {listed}{more}"


def require_columns(
    present: list[str],
    expects: Expects,
    region: RegionConfig,
    *,
    required: list[str] | None = None,
    found: list[str] | None = None,
) -> None:
    """Reject a file whose header lacks a required column, naming the missing ones as the rail's exports do.

    `present` are the header names as the reader matches them (canonical aliases, for some rails); `required` are
    the same-order canonical names of `expects.columns` when they differ from them; `found` are the names as they
    stand in the file, shown only if they look like a header (`shown_header`). A single found name containing
    another separator is reported as a wrong delimiter, which is what a person needs to fix.
    """
    printed = expects.columns_in(region)
    wanted = required or list(printed)
    missing = [printed[i] if required else c for i, c in enumerate(wanted) if c not in present]
    if not missing:
        return
    found = present if found is None else found
    if expects.container == "csv" and len([n for n in found if n]) == 1:
        others = [s for s in _SEPARATOR_NAMES if s != expects.delimiter and s in found[0]]
        if others:
            separator = max(others, key=found[0].count)
            problem = (
                f"the header is separated by {_SEPARATOR_NAMES[separator]}, "
                f"not by {_SEPARATOR_NAMES[expects.delimiter]}"
            )
            raise rejection("wrong_delimiter", problem, expects, region)
    # JSON lines have no header: what was found there is no header to show
    noun, seen = ("field", "") if expects.container == "ndjson" else ("column", f" ({shown_header(found)})")
    if len(missing) == len(wanted):
        problem = f"none of the required {noun}s is there{seen}"
    else:
        problem = f"required {noun}(s) missing: {', '.join(missing)}{seen}"
    raise rejection("wrong_columns", problem, expects, region)


R = TypeVar("R")

#: Slices of a chunk mapped at once by `map_chunk`, one per core of the machines kanda is sized for.
MAP_WORKERS = 2


def map_pool() -> ThreadPoolExecutor:
    """The threads `map_chunk` maps slices in: one pool per file, closed with the reader."""
    return ThreadPoolExecutor(max_workers=MAP_WORKERS, thread_name_prefix="kanda-map")


def map_chunk(
    pool: Executor, map_rows: Callable[[pl.DataFrame], tuple[pl.DataFrame, int]], rows: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """`map_rows` over a chunk as `MAP_WORKERS` consecutive slices at once, put back together in row order (each
    slice `finish`ed), with the rows each slice ignored added up.

    Mapping is polars work that releases the GIL, but one chunk's mapping keeps only part of two cores busy (many
    of its steps run on one thread), so the reader left a core partly idle while the ingest's own thread waited
    for it. Slices of one chunk, rather than several chunks mapped ahead, keep memory where it was: the same rows
    are in flight, only on more threads. Mapping is row by row (a line's events are made from that line alone),
    so slices mapped apart and concatenated give exactly the frame the whole chunk would.
    """
    size = max(1, -(-rows.height // MAP_WORKERS))
    slices = [rows.slice(start, size) for start in range(0, rows.height, size)] or [rows]
    results = [future.result() for future in [pool.submit(map_rows, part) for part in slices]]
    frames = [finish(frame) for frame, _ in results]
    return (frames[0] if len(frames) == 1 else pl.concat(frames)), sum(ignored for _, ignored in results)


def numbered_chunks(
    chunks: Iterable[tuple[pl.DataFrame, int]], preamble: int = 0
) -> Iterator[tuple[pl.DataFrame, int]]:
    """`iter_csv_chunks`' chunks with `source_row` (1-based, continuing across chunks) and the lines each skipped;
    the first (there is always one, empty for a file without records) also carries the `preamble`, the lines
    before the header, so that the ledger counts them once."""
    position = 0
    for chunk, skipped in chunks:
        yield (
            chunk.with_columns(source_row=pl.int_range(1, chunk.height + 1, dtype=pl.Int64) + position),
            (skipped + preamble),
        )
        position += chunk.height
        preamble = 0


def iter_csv_chunks(
    path: Path,
    batch_rows: int,
    *,
    delimiter: str = ",",
    skip_rows: int = 0,
    column_names: list[str] | None = None,
    ragged: str = "reject",
    record_line: Callable[[str], bool] | None = None,
    encoding: str | None = None,
    expects: Expects | None = None,
    region: RegionConfig | None = None,
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Stream a CSV as all-string polars frames of about `batch_rows` rows, with the count of ragged lines skipped.

    Types are never inferred: a column that is numeric in the first block and dirty later must not change type
    mid-file. `ragged="skip"` drops lines with the wrong number of fields (statement disclaimers) and counts
    them; `ragged="reject"` rejects the file (a truncated export). With `ragged="skip"`, `record_line` tells a
    record from a structure line by the line's text: a ragged line it calls a record (on M-Pesa, one that starts
    with a receipt number) is a sale with a stray or missing separator (an unquoted 4,300.00), not a disclaimer,
    and rejects the file (`malformed`, naming the line and its field count) instead of being skipped. It sees
    only the ragged lines, so the reading itself stays vectorised. Pass `encoding` when the caller already
    detected it: detection reads the whole file. `expects` and `region` word a rejection (`rejection`).
    """
    require_nonempty(path)
    encoding = encoding or detect_encoding(path)
    names = column_names or read_header(path, encoding, delimiter)
    if not any(names):
        raise rejection("empty_file", "the file has no header row (its first line is blank)", expects, region)
    skip = skip_rows + (0 if column_names else 1)
    explain = (expects, region)
    if ragged == "reject":
        batches, skipped_count = _duckdb_csv_batches(path, names, delimiter, skip, encoding, explain), lambda: 0
    else:
        batches, skipped_count = _pyarrow_csv_batches(path, names, delimiter, skip, encoding, explain, record_line)
    pending: list[pa.RecordBatch] = []
    pending_rows = reported = 0
    yielded = False
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= batch_rows:
            table = pa.Table.from_batches(pending)
            yield pl.from_arrow(table.slice(0, batch_rows)), skipped_count() - reported  # type: ignore[misc]
            yielded, reported = True, skipped_count()
            rest = table.slice(batch_rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    # A file without records still yields one (empty) chunk, so that what the caller counts with the first chunk
    # (the lines before the header, `numbered_chunks`) is counted for a header-only export too.
    if pending_rows or skipped_count() > reported or not yielded:
        empty = pa.table({n: pa.array([], pa.string()) for n in names})
        table = pa.Table.from_batches(pending) if pending_rows else empty
        yield pl.from_arrow(table), skipped_count() - reported  # type: ignore[misc]


_Explain = tuple["Expects | None", "RegionConfig | None"]


def _duckdb_csv_batches(
    path: Path, names: list[str], delimiter: str, skip: int, encoding: str, explain: _Explain
) -> Iterator[pa.RecordBatch]:
    """DuckDB's parallel CSV reader, strict: a line with the wrong number of fields rejects the file.

    About twice as fast as pyarrow's streaming reader on two cores. Every column is read as text and an empty
    field stays an empty string (the null marker is set to a value no export contains), as with pyarrow.
    """

    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    columns = "{" + ", ".join(f"{quoted(n)}: 'VARCHAR'" for n in names) + "}"
    sql = (
        f"SELECT * FROM read_csv({quoted(str(path))}, columns = {columns}, header = false, skip = {skip},"
        f" delim = {quoted(delimiter)}, quote = '\"', escape = '\"', nullstr = '\x00kanda-no-null',"
        f" strict_mode = true, auto_detect = false, encoding = {quoted('latin-1' if encoding != 'utf-8' else 'utf-8')})"
    )
    with duckdb.connect() as con:
        try:
            yield from con.sql(sql).to_arrow_reader(1 << 17)
        except duckdb.Error as exc:
            raise _csv_failure(path, str(exc), len(names), explain) from exc


def _pyarrow_csv_batches(
    path: Path,
    names: list[str],
    delimiter: str,
    skip: int,
    encoding: str,
    explain: _Explain,
    record_line: Callable[[str], bool] | None = None,
) -> tuple[Iterator[pa.RecordBatch], Callable[[], int]]:
    """pyarrow's streaming reader, skipping and counting lines with the wrong number of fields, except a line that
    `record_line` calls a record: that one stops the reader and rejects the file (`_ragged_record`).

    The handler runs once per ragged line only. pyarrow swallows an exception raised in it, so it notes the line
    and answers "error"; the reader's ArrowInvalid is then turned into the rejection.
    """
    skipped = 0
    records: list[tuple[int, str]] = []  # (field count, text) of a ragged line that is a record

    def on_invalid(row: pacsv.InvalidRow) -> str:
        nonlocal skipped
        if record_line is not None and record_line(row.text):
            records.append((row.actual_columns, row.text))
            return "error"
        skipped += 1
        return "skip"

    read_options = pacsv.ReadOptions(
        column_names=names, skip_rows=skip, encoding="utf8" if encoding == "utf-8" else "latin1", block_size=8 << 20
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=False)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from pacsv.open_csv(path, read_options=read_options, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if records:
                count, text = records[0]
                raise _ragged_record(path, text, count, len(names), skip, encoding, explain) from exc
            raise _csv_failure(path, str(exc), len(names), explain) from exc
        except OSError as exc:
            raise rejection("unreadable", f"the file cannot be read ({type(exc).__name__})", *explain) from exc

    return batches(), lambda: skipped


def _ragged_record(
    path: Path, text: str, count: int, n_fields: int, skip: int, encoding: str, explain: _Explain
) -> FileRejected:
    """A record with another field count than the header's, worded as `_csv_failure` words one, never quoted.

    pyarrow's streaming reader does not know line numbers, so the line is found again by its text among the lines
    after the `skip` ones (reject path only: reads the file once more). The first line with that text is the one:
    an earlier line with the same text would have had the same field count and been rejected first. A record
    that runs over several lines (a quote opened and not closed) is found by its first line.
    """
    first, *more = re.split(r"\r\n|\r|\n", text)
    number = None
    with path.open("r", encoding=encoding, newline="") as handle:
        for index, line in enumerate(handle, start=1):
            if index > skip and line.rstrip("\r\n") == first:
                number = index
                break
    where = f"line {number}" if number is not None else "a line"
    fault = f"{where} has {count} fields where the header has {n_fields}"
    if more:
        cause = "a quote is misplaced (a quoted value runs on over the next lines)"
    else:
        cause = "a value holds an unquoted separator" if count > n_fields else "a record is broken or shortened"
    kind = "malformed"
    if number is not None and not _ends_with_newline(path) and number >= _count_lines(path):
        kind, cause = "truncated", "the file is cut off (an interrupted download?)"
    problem = (
        f"the CSV is malformed or truncated: {fault} and starts like a record, so it cannot be skipped as a "
        f"statement line; {cause}"
    )
    return rejection(kind, problem, *explain)


def _csv_failure(path: Path, message: str, n_fields: int, explain: _Explain) -> FileRejected:
    """A CSV parser's error as a reason: the line number and what is wrong with it, never the line itself.

    DuckDB's and pyarrow's messages quote the offending line (file content), so only the line number, the field
    count and the kind of fault are taken from them. A fault on the last line of a file that does not end in a
    newline, or an unclosed quote, is a cut-off file (`truncated`); any other is `malformed`.
    """
    # only the parser's own sentence: DuckDB appends the offending line and its options (which mention "quote")
    message = re.sub(r"Original Line:.*", "", message.split("Possible fixes")[0])
    line = re.search(r"Line: (\d+)", message)
    found = re.search(r"Found: (\d+)|got (\d+)", message)
    unclosed = "unterminated quote" in message.lower()
    where = f"line {line[1]}" if line else "a line"
    count = int(found[1] or found[2]) if found else None
    if unclosed:
        fault, cause = f"{where} has an unclosed quote", "a quote is misplaced"
    elif count is not None:
        fault = f"{where} has {count} fields where the header has {n_fields}"
        cause = "a value holds an unquoted separator" if count > n_fields else "a record is broken or shortened"
    elif "quote" in message.lower():
        fault, cause = f"{where} has a stray quote", "a quote is misplaced"
    else:
        fault, cause = f"{where} cannot be split into the header's {n_fields} fields", "the line is damaged"
    truncated = unclosed or (line is not None and not _ends_with_newline(path) and int(line[1]) >= _count_lines(path))
    if truncated:
        cause = "the file is cut off (an interrupted download?)"
    kind = "truncated" if truncated else "malformed"
    return rejection(kind, f"the CSV is malformed or truncated: {fault}; {cause}", *explain)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 1))
        return handle.read(1) in (b"\n", b"\r")


def _count_lines(path: Path) -> int:
    """Lines in the file, the last one counted even without a newline (reject path only: reads the file)."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


#: The column `iter_ndjson_chunks` adds to each chunk: null for a record read as it was sent; for a line that is
#: not a JSON object (a receiver's error text, two documents run together, a line cut off and then written on), its
#: file line number, what is wrong with it and its text, so that the line is quarantined and the rest reads.
UNREADABLE = "_kanda_unreadable"
_UNREADABLE_TYPE = pl.Struct({"line": pl.Int64(), "problem": pl.String(), "text": pl.String()})
#: How much of an unreadable line its quarantine row keeps (a steward needs to see what it was, not megabytes).
_UNREADABLE_TEXT = 2_000
#: The longest line read as a delivery: a webhook document is kilobytes, and polars needs about thirty times a
#: line's size to parse it (a 100 MB line took the process to 3 GB). A longer line is quarantined unread.
MAX_LINE_BYTES = 4 << 20


def iter_ndjson_chunks(
    path: Path,
    batch_rows: int,
    schema: dict[str, pl.DataType],
    *,
    expects: Expects | None = None,
    region: RegionConfig | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream newline-delimited JSON in blocks cut at line ends, parsed by polars with an explicit schema.

    The explicit schema reads numbers and strings alike into string leaves, so a rail that sends `"5000"` on one
    day and `5000` the next maps the same way. A webhook log is written by a receiver line by line, so one line
    that cannot be read says nothing about the others: it is kept in the `UNREADABLE` column (to be quarantined),
    and an object the schema reads that arrives as something else (`"data": [...]`, `"meta": ""`) is read as
    missing. Only the last line of a file without its final newline, not parsing, rejects the file: a half-written
    file is not a partial success. `expects` and `region` word the rejection.
    """
    require_nonempty(path)
    block_bytes = max(1 << 20, batch_rows * 400)
    first_line = 1  # file line number of the block's first line, for a rejection's "line N"
    with path.open("rb") as handle:
        carry = b""
        while True:
            block = handle.read(block_bytes)
            data = carry + block
            if not block:
                if data.strip():
                    yield _parse_ndjson(data, schema, first_line, (expects, region), last=True)
                return
            cut = data.rfind(b"\n")
            if cut < 0 and len(data) > MAX_LINE_BYTES:
                # one line longer than any delivery: read past it, never held whole (a 1 GB line grew the process
                # to 22 GB), and kept as an unreadable line with its start
                size, ended, carry = len(data), False, b""
                while more := handle.read(block_bytes):
                    end = more.find(b"\n")
                    if end >= 0:
                        size, ended, carry = size + end, True, more[end + 1 :]
                        break
                    size += len(more)
                if not ended:
                    problem = f"line {first_line}, the last, is {size:,} bytes long and has no end: cut off"
                    raise rejection("truncated", problem, expects, region)
                yield _too_long_line(data, size, first_line, schema)
                first_line += 1
                continue
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            yield _parse_ndjson(data[: cut + 1], schema, first_line, (expects, region), last=False)
            first_line += data.count(b"\n", 0, cut + 1)


def _parse_ndjson(
    data: bytes, schema: dict[str, pl.DataType], first_line: int, explain: _Explain, *, last: bool
) -> pl.DataFrame:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines = [line for line in data.split(b"\n") if line.strip()]
    cut_off = last and not data.endswith(b"\n")
    if max(map(len, lines), default=0) > MAX_LINE_BYTES:
        return _read_line_by_line(data, schema, first_line, explain, cut_off=cut_off)
    try:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=schema)
    except Exception:  # polars raises ComputeError for a malformed line, SchemaError for a wrong shape
        return _read_line_by_line(data, schema, first_line, explain, cut_off=cut_off)
    return frame.with_columns(pl.lit(None, dtype=_UNREADABLE_TYPE).alias(UNREADABLE))


def _too_long_line(start: bytes, size: int, number: int, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """One record for a line longer than `MAX_LINE_BYTES`, read past: nothing read from it, its start kept."""
    frame = pl.read_ndjson(io.BytesIO(b"{}"), schema=schema)
    problem = f"{size:,} bytes long, longer than any delivery ({MAX_LINE_BYTES:,})"
    record = _unreadable(number, problem, start[:_UNREADABLE_TEXT], size)
    return frame.with_columns(pl.Series(UNREADABLE, [record], dtype=_UNREADABLE_TYPE))


def _read_line_by_line(
    data: bytes, schema: dict[str, pl.DataType], first_line: int, explain: _Explain, *, cut_off: bool
) -> pl.DataFrame:
    """A block polars could not read whole, read line by line: only such a block pays for it (the standard json
    module per line), so a clean file keeps the fast path.

    Each line that is a JSON object is read with every object the schema reads that arrived as something else set
    to null (Paystack sends `subscription.expiring_cards` with `"data": [...]`; a payment without metadata may
    carry `[]` or `""`): the rail then ignores the event or quarantines the row for what it lacks. Any other line
    becomes `{}` with its `UNREADABLE` record, keeping every record's position (`source_row`).
    """
    numbered = [(first_line + i, line) for i, line in enumerate(data.split(b"\n")) if line.strip()]
    documents: list[bytes] = []
    unreadable: list[dict | None] = []
    for position, (number, line) in enumerate(numbered):
        if len(line) > MAX_LINE_BYTES:
            document, problem = None, f"{len(line):,} bytes long, longer than any delivery ({MAX_LINE_BYTES:,})"
        else:
            document, problem = _json_object(line)
        if problem is None:
            conformed = _conform(document, schema)
            documents.append(line if conformed is document else json.dumps(conformed).encode())
            unreadable.append(None)
            continue
        if cut_off and position == len(numbered) - 1:
            problem = f"line {number}, the last, is not valid JSON: the file is truncated or corrupt (cut off)"
            raise rejection("truncated", problem, *explain)
        documents.append(b"{}")
        unreadable.append(_unreadable(number, problem, line))
    try:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(documents)), schema=schema)
    except Exception:
        # what the json module reads and polars does not (a lone surrogate escape, ...): found one line at a time
        for index, document in enumerate(documents):
            try:
                pl.read_ndjson(io.BytesIO(document), schema=schema)
            except Exception:
                number, line = numbered[index]
                documents[index] = b"{}"
                unreadable[index] = _unreadable(number, "not readable as JSON text", line)
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(documents)), schema=schema)
    return frame.with_columns(pl.Series(UNREADABLE, unreadable, dtype=_UNREADABLE_TYPE))


def _json_object(line: bytes) -> tuple[dict, None] | tuple[None, str]:
    """The line's JSON object, or why it is not one (worded for the steward who sees the quarantined line)."""

    def no_constant(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(line.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as exc:
        if str(exc) in ("NaN", "Infinity", "-Infinity"):
            return None, f"not valid JSON: it holds {exc}, which JSON does not allow"
        return None, "not valid JSON (an error message, a line cut off, or two documents run together)"
    if not isinstance(value, dict):
        kinds = {list: "an array", str: "a string", type(None): "null", bool: "true or false"}
        kind = kinds.get(type(value), "a number")
        return None, f"valid JSON but {kind}, not an object"
    return value, None


def _conform(document: dict, schema: Mapping[str, pl.DataType]) -> dict:
    """`document`, or a copy with each object `schema` reads that arrived as another kind of value set to null."""
    changed: dict | None = None
    for name, dtype in schema.items():
        value = document.get(name)
        if not isinstance(dtype, pl.Struct) or value is None:
            continue
        inner = _conform(value, {f.name: f.dtype for f in dtype.fields}) if isinstance(value, dict) else None
        if inner is not value:
            changed = changed if changed is not None else dict(document)
            changed[name] = inner
    return changed if changed is not None else document


def _unreadable(number: int, problem: str, line: bytes, size: int | None = None) -> dict:
    """The quarantine record of an unreadable line: its number, what is wrong, and its start (`size`: its length,
    where `line` holds only its start)."""
    size = len(line) if size is None else size
    text = line[:_UNREADABLE_TEXT].decode("utf-8", errors="replace").strip()
    if size > _UNREADABLE_TEXT:
        text += f" ... ({size:,} bytes in all)"
    return {"line": number, "problem": f"line {number} is {problem}", "text": text}


# ---------------------------------------------------------------------------------------------- value parsing
def normalise_digits(expr: pl.Expr) -> pl.Expr:
    """Bengali and Arabic-Indic digits to ASCII, as typed in human-made files."""
    table = {**_BENGALI_DIGITS, **_ARABIC_INDIC_DIGITS}
    return expr.str.replace_many(list(table), list(table.values()))


def major_to_minor(expr: pl.Expr, exponent: int, *, decimal: str = ".") -> pl.Expr:
    """Parse a major-unit amount string ("10,000.00", "1,00,000", "1.234,56", "৫০০") into exact minor units.

    Exact or null, never another number: no floats (digits are handled as text and cast once), no int64
    arithmetic that could wrap (an 18-or-more digit amount used to wrap to a small plausible sale), grouping must
    be well formed (western "1,234,567" or lakh "12,34,567", by the rail's thousands mark or a space), and a value
    with more fraction digits than the currency has (other than trailing zeros, and never three of them: "1.000"
    francs may be a thousand) or more than 18 digits of minor units is null. A null amount is quarantined by the
    contract with the raw text beside it.

    Runs as one batch function (not one expression tree) so that each intermediate column is computed once and
    the full normalisation runs only on the few values that need it; see `_minor_units`.
    """
    return expr.cast(pl.String).map_batches(
        functools.partial(_minor_units, exponent=exponent, decimal=decimal), return_dtype=pl.Int64, is_elementwise=True
    )


#: Minor units are built as a digit string and cast once; 18 digits always fit in int64 (whose max has 19), and
#: anything that large is far beyond the contract's range anyway, so longer values are null rather than risked.
MAX_MINOR_DIGITS = 18


def _minor_units(values: pl.Series, *, exponent: int, decimal: str) -> pl.Series:
    """Fast path for plain numbers ("2950,00", "1.150,00", "-12"), full normalisation for the rest ("1.234,5").

    Almost every value in a real export is digits, perhaps grouped, with the currency's exact fraction digits;
    for those the minor units are simply the digits without grouping and decimal marks (or the digits times
    10^exponent), which equals what the general parser computes. ASCII digits only (`\\d` would match native
    digits, which need normalising), and at most 18 - exponent integer digits keep the fast path clear of int64
    overflow: they times 10^exponent stay below 10^18 (15 digits for the usual exponents up to 3; fewer for the
    four-decimal units such as CLF).
    """
    text = values.str.strip_chars()
    thousands = "," if decimal == "." else "."
    fraction = rf"(?:{re.escape(decimal)}[0-9]{{{exponent}}})?" if exponent else ""
    whole, groups = MAX_MINOR_DIGITS - max(exponent, 3), (MAX_MINOR_DIGITS - max(exponent, 3)) // 3 - 1
    plain = rf"^-?(?:[0-9]{{1,{whole}}}|[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}}){{1,{groups}}}){fraction}$"
    frame = pl.DataFrame({"t": text}).with_columns(fast=pl.col("t").str.contains(plain).fill_null(False))
    digits = pl.col("t").str.replace_all(thousands, "", literal=True).str.replace(decimal, "", literal=True)
    # On the fast path a decimal mark can only be the character just before the last `exponent` digits (a
    # thousands mark or a digit sits there otherwise), so one character tells whole units from minor ones.
    scale = (
        pl.when(pl.col("t").str.slice(-(exponent + 1), 1) == decimal).then(1).otherwise(10**exponent)
        if exponent
        else pl.lit(1)
    )
    minor = frame.select(
        pl.when(pl.col("fast"))
        .then(digits.cast(pl.Int64, strict=False) * scale)
        .otherwise(None)
        .cast(pl.Int64)
        .alias(values.name)
    ).to_series()
    # An empty cell (half of a statement's Paid In / Withdrawn pair) is null either way: the general parser, which
    # costs about ten times the fast path per value, sees only text that could still be an amount.
    maybe = ~pl.col("fast") & pl.col("t").is_not_null() & (pl.col("t") != "")
    leftover = frame.select(pl.arg_where(maybe)).to_series()
    if leftover.len():
        rest = pl.DataFrame({"t": text.gather(leftover)})
        slow = rest.select(_major_to_minor_full(pl.col("t"), exponent, decimal=decimal)).to_series()
        minor = minor.scatter(leftover, slow)
    return minor


def _amount_pattern(decimal: str) -> str:
    """Sign, integer part (plain digits, or western or lakh groups by the thousands mark or a space), fraction."""
    thousands = "," if decimal == "." else "."
    integer = []
    for sep in (re.escape(thousands), " "):
        integer += [rf"[0-9]{{1,3}}(?:{sep}[0-9]{{3}})+", rf"[0-9]{{1,2}}(?:{sep}[0-9]{{2}})+{sep}[0-9]{{3}}"]
    return rf"^([+-]?) ?([0-9]+|{'|'.join(integer)})(?:{re.escape(decimal)}([0-9]*))?$"


def _major_to_minor_full(expr: pl.Expr, exponent: int, *, decimal: str = ".") -> pl.Expr:
    """The general parser: native digits, grouping, signs and fraction checks, exact by construction.

    The minor units are assembled as a digit string (integer digits, then the fraction padded to the exponent)
    and cast once, so there is no multiplication to overflow; more than `MAX_MINOR_DIGITS` digits is null.
    """
    text = normalise_digits(expr.cast(pl.String)).str.replace_all(r"[\s\u00a0\u202f]+", " ").str.strip_chars()
    thousands = "," if decimal == "." else "."
    parts = text.str.extract_groups(_amount_pattern(decimal))
    sign = pl.when(parts.struct.field("1") == "-").then(pl.lit("-")).otherwise(pl.lit(""))
    whole = parts.struct.field("2").str.replace_all(f"[ {re.escape(thousands)}]", "")
    written = parts.struct.field("3").fill_null("")
    frac = written.str.strip_chars_end("0")
    digits = (whole + frac.str.pad_end(exponent, "0")).str.strip_chars_start("0")
    digits = pl.when(digits == "").then(pl.lit("0")).otherwise(digits)
    # Three fraction digits where the currency has fewer are a thousands group as often as zeros: "1.000" francs
    # is 1,000 in a French-locale export. Only where they could be one: after 1 to 3 digits that are not a lone 0
    # and carry no group mark of their own ("1,250.000" and "0.000" are plain), else zeros beyond the exponent are
    # exact as in any other length ("5.00").
    could_be_group = parts.struct.field("2").str.contains(r"^[1-9][0-9]{0,2}$")
    group_shaped = ((written.str.len_chars() == 3) & could_be_group) if exponent < 3 else pl.lit(False)
    readable = (
        whole.is_not_null()
        & (frac.str.len_chars() <= exponent)
        & ~group_shaped
        & (digits.str.len_chars() <= MAX_MINOR_DIGITS)
    )
    return pl.when(readable).then((sign + digits).cast(pl.Int64, strict=False)).otherwise(None).cast(pl.Int64)


def month_first_record(times: pl.Series, source_rows: pl.Series) -> int | None:
    """The `source_row` of the first date that can only be month first (12/13/2026, 12-13-2026: no 13th month), or
    None.

    A rail that writes day-first dates (DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY) gets month-first ones when a
    spreadsheet in a US locale re-saves its export; read day first, every date up to the 12th would load on the
    wrong day, silently. One date whose second number is over 12 proves the order, and the reader rejects the file
    (`wrong_date_order`)."""
    parts = times.cast(pl.String).str.strip_chars().str.extract_groups(r"^(\d{1,2})([/.-])(\d{1,2})[/.-]\d{4}\b")
    first = parts.struct.field("1").cast(pl.Int32, strict=False)
    second = parts.struct.field("3").cast(pl.Int32, strict=False)
    found = source_rows.filter((first <= 12) & (second > 12) & (second <= 31))
    return None if found.is_empty() else int(found[0])


def month_first_rejection(source_row: int, expects: Expects, region: RegionConfig) -> FileRejected:
    problem = (
        f"the dates are written month first: the date of record {source_row} has a second number over 12, and "
        "there is no 13th month; re-export the file with day-first (DD/MM/YYYY) or YYYY-MM-DD dates, so that dates "
        "up to the 12th are not read on the wrong day"
    )
    return rejection("wrong_date_order", problem, expects, region)


def vocabulary(
    expr: pl.Expr, mapping: dict[str, tuple[str, str]], *, default_event: str | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """(event_type, status) for a rail's status word via its vocabulary table; an unknown word gets a null status,
    so the row is quarantined instead of being guessed."""
    event_type = expr.replace_strict(
        {k: v[0] for k, v in mapping.items()}, default=default_event, return_dtype=pl.String
    )
    status = expr.replace_strict({k: v[1] for k, v in mapping.items()}, default=None, return_dtype=pl.String)
    return event_type, status


def int_string(expr: pl.Expr) -> pl.Expr:
    """An integer given as a string or number ("10000", 10000, " 10000 "); null when it is anything else.

    A value beyond int64 (a JSON integer of 20 digits) is null, never wrapped; a JSON float with a fraction arrives
    as "5000.5" and is null too, since it states no whole number of minor units.
    """
    text = normalise_digits(expr.cast(pl.String).str.strip_chars())
    return pl.when(text.str.contains(r"^[+-]?\d+$")).then(text).otherwise(None).cast(pl.Int64, strict=False)


#: The last second of year 9999 since 1970: the latest time a stored event, or Python, can hold.
_LAST_EPOCH_SECOND = 253_402_300_799


def utc_from_epoch(expr: pl.Expr, unit: str) -> pl.Expr:
    """Seconds (`unit` "s") or milliseconds ("ms") since 1970 to UTC; null beyond year 9999 or before 1970.

    Bounded before polars scales the value to microseconds, which wraps silently in int64: 2^58 + an epoch second
    of June 2026 would otherwise read as that day, a plausible time for a value that is no time at all."""
    value = int_string(expr)
    limit = _LAST_EPOCH_SECOND * (1000 if unit == "ms" else 1)
    bounded = pl.when((value >= 0) & (value <= limit)).then(value)
    return pl.from_epoch(bounded, time_unit=unit).dt.replace_time_zone("UTC")


#: The ISO 8601 form `utc_from_iso` reads, once a trailing `Z` is written as `+00:00`.
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"


def utc_from_iso(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 with `Z` or an explicit offset ("2025-02-11T10:42:20.000Z", "...+01:00") to UTC; else null.

    A second of 60 ("...T23:59:60Z") is null, not the next minute (`strptime`).
    """
    text = expr.cast(pl.String).str.strip_chars().str.replace(r"Z$", "+00:00")
    return text.map_batches(
        functools.partial(strptime, fmt=_ISO_FORMAT), return_dtype=pl.Datetime("us", "UTC"), is_elementwise=True
    ).dt.convert_time_zone("UTC")


def utc_from_local(expr: pl.Expr, formats: str | list[str], zone: str) -> pl.Expr:
    """A naive local time in the first of `formats` that parses, read in the region's IANA zone, to UTC.

    Ambiguous wall times (the hour repeated when DST ends, Africa/Cairo) and times that do not exist (skipped when
    DST starts) are null and so quarantined rather than guessed: either instant of a repeated hour is a plausible
    time, and one of them is wrong by an hour, perhaps on another local day. The zone is
    applied once, after the formats: a rail's formats never overlap (each has its own separators), so the first
    that parses is the only one that could.
    """
    text = expr.cast(pl.String).str.strip_chars()
    naive = naive_datetime(text, [formats] if isinstance(formats, str) else formats)
    return naive.dt.replace_time_zone(zone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")


def naive_datetime(expr: pl.Expr, formats: list[str]) -> pl.Expr:
    """A naive datetime in the first of `formats` that parses (strict=False, microseconds); null if none does.

    Same result as coalescing one `to_datetime` per format, but the later formats only see the values the
    earlier ones left null, which is usually none: whole-column parses are a large share of mapping time.
    """
    return expr.cast(pl.String).map_batches(
        functools.partial(_first_format, formats=formats), return_dtype=pl.Datetime("us"), is_elementwise=True
    )


def _first_format(values: pl.Series, *, formats: list[str]) -> pl.Series:
    parsed = strptime(values, fmt=formats[0])
    for fmt in formats[1:]:
        leftover = (parsed.is_null() & values.is_not_null()).arg_true()
        if not leftover.len():
            break
        parsed = parsed.scatter(leftover, strptime(values.gather(leftover), fmt=fmt))
    return parsed


#: A time unit of `fmt` written with a fixed number of digits (chrono reads up to that many, fewer too).
_FIXED_DIGITS = {"%Y": 4, "%C": 2, "%y": 2, "%m": 2, "%d": 2, "%j": 3, "%H": 2, "%I": 2, "%M": 2, "%S": 2}
#: One item of a chrono format: a specifier (with padding flag, `%.3f`, `%:z` ...) or a run of literal text.
_FORMAT_ITEM = re.compile(r"%[-_0^#]?(?:\.?[0-9]?f|:{1,3}z|.)|[^%]+", re.S)
_US_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class _Checks:
    """What `strptime` checks after polars parsed a column in one format (`_checks`)."""

    #: the format with the seconds written as a literal "6" and one digit ("...:6%S"): it parses a value exactly
    #: when its seconds are 60; None when the format has no seconds
    sixty: str | None
    #: the seconds end the format, so a value with a second of 60 ends in "60"
    sixty_at_end: bool
    #: for a format in which two numbers touch ("%Y%m%d%H%M%S"): a regex of the exact value, and its length in
    #: bytes when it is digits only (checked without a regex); None for formats with separators
    exact: re.Pattern[str] | None
    width: int | None


@functools.cache
def _checks(fmt: str) -> _Checks:
    items = _FORMAT_ITEM.findall(fmt)
    seconds = {"%S": "6%S", "%T": "%H:%M:6%S"}
    sixty = "".join(seconds.get(i, i) for i in items) if set(seconds) & set(items) else None
    touching = any(a in _FIXED_DIGITS and b in _FIXED_DIGITS for a, b in itertools.pairwise(items))
    known = all(i in _FIXED_DIGITS or i in ("%%", "%.f") or not i.startswith("%") for i in items)
    at_end = bool(items) and items[-1] in seconds
    if not (touching and known):
        return _Checks(sixty, at_end, None, None)
    parts = {"%%": "%", "%.f": r"(?:\.[0-9]{1,9})?"}
    pattern = "".join(
        f"[0-9]{{{_FIXED_DIGITS[i]}}}" if i in _FIXED_DIGITS else parts.get(i) or re.escape(i) for i in items
    )
    digits_only = all(i in _FIXED_DIGITS for i in items)
    width = sum(_FIXED_DIGITS[i] for i in items) if digits_only else None
    return _Checks(sixty, at_end, re.compile(rf"^\s*{pattern}\s*$"), width)


def strptime(values: pl.Series, *, fmt: str) -> pl.Series:
    """`str.to_datetime(fmt)` (strict=False, microseconds), null for the values polars would read as another time.

    Chrono reads a second of 60 (a leap second, or a typo) and polars moves it into the next minute, sometimes the
    next day ("2026-12-04 23:59:60" -> 2026-12-05 00:00:00); and where two numbers touch, chrono takes a short last
    number ("2026120412320" -> 12:32:00, a digit lost). Both are null here, like Feb 30 or 24:00:00, so the contract
    quarantines them as unreadable instead of booking them on the wrong minute or day.

    Cheap on the usual column: the seconds check re-parses only the values that landed on a whole minute and hold
    "60" (a second format with the seconds as a literal "6" and one digit parses exactly the ones whose seconds
    were 60); the exact-length check runs only for formats whose numbers touch, as a byte length and an integer
    cast when the format is digits only.
    """
    parsed = values.str.to_datetime(fmt, strict=False, time_unit="us")
    checks = _checks(fmt)
    wrong: list[pl.Series] = []
    if checks.exact is not None:
        if checks.width is not None:  # a number of exactly `width` digits (one starting with 0 goes to the regex)
            fits = values.str.to_integer(strict=False).is_between(10 ** (checks.width - 1), 10**checks.width - 1)
        else:
            fits = values.str.contains(checks.exact.pattern)
        suspect = (parsed.is_not_null() & ~fits.fill_null(False)).arg_true()
        if suspect.len():  # rare: a short value, or one padded with spaces that the regex alone accepts
            wrong.append(suspect.filter(~values.gather(suspect).str.contains(checks.exact.pattern).fill_null(False)))
    if checks.sixty is not None:
        whole_minute = (parsed.cast(pl.Int64) % _US_PER_MINUTE < 1_000_000).arg_true()
        candidates = values.gather(whole_minute)
        holds_60 = (
            candidates.str.ends_with("60") if checks.sixty_at_end else candidates.str.contains("60", literal=True)
        )
        whole_minute = whole_minute.filter(holds_60)
        if whole_minute.len():
            sixty = values.gather(whole_minute).str.to_datetime(checks.sixty, strict=False, time_unit="us")
            wrong.append(whole_minute.filter(sixty.is_not_null()))
    for rows in wrong:
        if rows.len():
            parsed = parsed.scatter(rows, None)
    return parsed


def reference_groups(expr: pl.Expr, pattern: str) -> pl.Expr:
    """{creator_id, product_id} extracted from the payment reference by the region's configured pattern.

    Add it to the frame once (as `REFERENCE_COLUMN`) and read `reference_parts()` from there: read as two fields
    of this expression, the regex would run twice over the chunk (an eager select shares no subexpressions).
    """
    return expr.cast(pl.String).str.extract_groups(pattern).alias(REFERENCE_COLUMN)


#: The working column that holds `reference_groups` while a chunk is mapped.
REFERENCE_COLUMN = "_reference"


def reference_parts() -> tuple[pl.Expr, pl.Expr]:
    """(creator_id, product_id) from the `reference_groups` column."""
    groups = pl.col(REFERENCE_COLUMN)
    return groups.struct.field("creator_id"), groups.struct.field("product_id")


def normalise_email(expr: pl.Expr) -> pl.Expr:
    """Lower-cased trimmed email; masked ("****") or malformed values become null (no usable buyer reference)."""
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.str.contains(r"^[^@\s*]+@[^@\s*]+\.[a-z]{2,}$")).then(text).otherwise(None)


def normalise_phone(expr: pl.Expr, calling_code: str) -> pl.Expr:
    """International digits for a phone ("0712..." / "+254712..." / "254712..." -> "254712...").

    Masked phones ("0****393"), Excel-mangled ones ("2.547E+11") and junk become null: a wrong buyer reference is
    worse than none. A 64-hex value (M-Pesa now sends SHA-256 hashed MSISDNs) is kept as the identifier itself.

    Runs as one batch function, like `major_to_minor`: an eager `select` does not share subexpressions, and as
    one expression tree the input (often a regex extraction) and the cleaned digits were each computed several
    times over, about 80 % of the M-Pesa mapping's cost.
    """
    return expr.cast(pl.String).map_batches(
        functools.partial(_phone_digits, calling_code=calling_code), return_dtype=pl.String, is_elementwise=True
    )


def _phone_digits(values: pl.Series, *, calling_code: str) -> pl.Series:
    frame = pl.DataFrame({"text": values.str.strip_chars()}).with_columns(
        lower=pl.col("text").str.to_lowercase(), digits=pl.col("text").str.replace_all(r"[\s\-()]", "")
    )
    digits = pl.col("bare")
    international = (
        pl.when(digits.str.starts_with("00"))
        .then(digits.str.slice(2))
        .when(digits.str.starts_with("0"))
        .then(pl.lit(calling_code) + digits.str.slice(1))
        .when(digits.str.starts_with(calling_code))
        .then(digits)
        .otherwise(pl.lit(calling_code) + digits)
    )
    return (
        frame.with_columns(
            hashed=pl.col("lower").str.contains(r"^[0-9a-f]{64}$"),
            plain=pl.col("digits").str.contains(r"^\+?\d{7,15}$"),
            bare=pl.col("digits").str.strip_prefix("+"),
        )
        .select(
            pl.when("hashed").then(pl.col("lower")).when("plain").then(international).otherwise(None).alias(values.name)
        )
        .to_series()
    )


def add_buyer_ref(frame: pl.DataFrame, contact_column: str, salt: str) -> pl.DataFrame:
    """Replace a normalised contact column with `buyer_ref`, its salted SHA-256 (hex), and drop the contact.

    Polars has no cryptographic hash of its own; the polars-hash plugin computes SHA-256 in Rust inside the same
    frame, at about 40 % of the CPU that handing the column to DuckDB's `sha256` and back cost (docs/benchmarks.md).
    A null contact stays a null reference.
    """
    salted = frame.with_columns((pl.lit(salt) + pl.col(contact_column)).alias(contact_column))
    return salted.with_columns(buyer_ref=plh.col(contact_column).chash.sha2_256()).drop(contact_column)


def raw_record(columns: list[str]) -> pl.Expr:
    """The row as it arrived, kept beside the parsed fields so that a quarantined row shows what was really sent."""
    return pl.struct([pl.col(c) for c in columns]).alias("raw_record")


def finish(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the adapter schema and order the columns, keeping `raw_record` and the optional `net_minor` and
    `RAIL_REF` (a refund's own id)."""
    extra = [pl.col("net_minor").cast(pl.Int64, strict=False)] if "net_minor" in frame.columns else []
    extra += [pl.col(RAIL_REF).cast(pl.String)] if RAIL_REF in frame.columns else []
    cast = [pl.col(name).cast(dtype, strict=False) for name, dtype in ADAPTER_SCHEMA.items()]
    return frame.select([*cast, *extra, pl.col("raw_record")])
