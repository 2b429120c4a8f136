"""Vectorised building blocks shared by the adapters: streaming readers, amount and time parsing, buyer hashing.

Everything here works on whole columns (polars expressions, pyarrow and DuckDB kernels); nothing loops over rows
in Python, because ingestion throughput is bounded by the slowest per-row step.
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from regions.rails.base import ADAPTER_SCHEMA, FileRejected

_BENGALI_DIGITS = {chr(0x09E6 + i): str(i) for i in range(10)}
_ARABIC_INDIC_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)}
_SAMPLE_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------------- file reading
def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as UTF-8, else Windows-1252/Latin-1.

    Checked over the whole file in blocks with an incremental decoder (C speed, constant memory): a Latin-1 byte
    can sit anywhere, and discovering it after half the file was loaded would fail the batch.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        while block := handle.read(16 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return "latin-1"
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def require_nonempty(path: Path) -> None:
    if not path.exists():
        raise FileRejected(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty")


def read_header(path: Path, encoding: str, delimiter: str = ",") -> list[str]:
    with path.open("r", encoding=encoding, newline="") as handle:
        line = handle.readline()
    import csv

    header = next(csv.reader([line.lstrip("\ufeff")], delimiter=delimiter), [])
    return [h.strip() for h in header]


def iter_csv_chunks(
    path: Path,
    batch_rows: int,
    *,
    delimiter: str = ",",
    skip_rows: int = 0,
    column_names: list[str] | None = None,
    ragged: str = "reject",
    encoding: str | None = None,
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Stream a CSV as all-string polars frames of about `batch_rows` rows, with the count of ragged lines skipped.

    Types are never inferred: a column that is numeric in the first block and dirty later must not change type
    mid-file. `ragged="skip"` drops lines with the wrong number of fields (statement disclaimers) and counts
    them; `ragged="reject"` rejects the file (a truncated export). Pass `encoding` when the caller already
    detected it: detection reads the whole file.
    """
    require_nonempty(path)
    encoding = encoding or detect_encoding(path)
    names = column_names or read_header(path, encoding, delimiter)
    if not any(names):
        raise FileRejected("the file has no header row")
    skip = skip_rows + (0 if column_names else 1)
    if ragged == "reject":
        batches, skipped_count = _duckdb_csv_batches(path, names, delimiter, skip, encoding), lambda: 0
    else:
        batches, skipped_count = _pyarrow_csv_batches(path, names, delimiter, skip, encoding)
    pending: list[pa.RecordBatch] = []
    pending_rows = reported = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= batch_rows:
            table = pa.Table.from_batches(pending)
            yield pl.from_arrow(table.slice(0, batch_rows)), skipped_count() - reported  # type: ignore[misc]
            reported = skipped_count()
            rest = table.slice(batch_rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    if pending_rows or skipped_count() > reported:
        empty = pa.table({n: pa.array([], pa.string()) for n in names})
        table = pa.Table.from_batches(pending) if pending_rows else empty
        yield pl.from_arrow(table), skipped_count() - reported  # type: ignore[misc]


def _duckdb_csv_batches(
    path: Path, names: list[str], delimiter: str, skip: int, encoding: str
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
            raise FileRejected(f"the CSV is malformed or truncated: {_first_line(exc)}") from exc


def _pyarrow_csv_batches(
    path: Path, names: list[str], delimiter: str, skip: int, encoding: str
) -> tuple[Iterator[pa.RecordBatch], Callable[[], int]]:
    """pyarrow's streaming reader, skipping and counting lines with the wrong number of fields."""
    skipped = 0

    def on_invalid(row: pacsv.InvalidRow) -> str:
        nonlocal skipped
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
            raise FileRejected(f"the CSV is malformed or truncated: {_first_line(exc)}") from exc
        except OSError as exc:
            raise FileRejected(f"not a readable CSV file: {_first_line(exc)}") from exc

    return batches(), lambda: skipped


def iter_ndjson_chunks(path: Path, batch_rows: int, schema: dict[str, pl.DataType]) -> Iterator[pl.DataFrame]:
    """Stream newline-delimited JSON in blocks cut at line ends, parsed by polars with an explicit schema.

    The explicit schema reads numbers and strings alike into string leaves, so a rail that sends `"5000"` on one
    day and `5000` the next maps the same way. A line that is not JSON (a truncated last delivery) rejects the
    file: a half-written file is not a partial success.
    """
    require_nonempty(path)
    block_bytes = max(1 << 20, batch_rows * 400)
    with path.open("rb") as handle:
        carry = b""
        while True:
            block = handle.read(block_bytes)
            data = carry + block
            if not block:
                if data.strip():
                    yield _parse_ndjson(data, schema)
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            yield _parse_ndjson(data[: cut + 1], schema)


def _parse_ndjson(data: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines = [line for line in data.split(b"\n") if line.strip()]
    try:
        return pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=schema)
    except Exception as exc:  # polars raises ComputeError for any malformed line
        raise FileRejected(f"a line is not valid JSON (truncated or corrupt file): {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def require_columns(present: list[str], required: list[str], fmt: str) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise FileRejected(
            f"not a {fmt} file: required column(s) missing: {', '.join(missing)} (found: {', '.join(present)[:300]})"
        )


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
    with more fraction digits than the currency has (other than trailing zeros) or more than 18 digits of minor
    units is null. A null amount is quarantined by the contract with the raw text beside it.

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
    digits, which need normalising), and at most 15 integer digits keep the fast path clear of int64 overflow:
    15 digits times 10^exponent (at most 3) stays below 10^18.
    """
    text = values.str.strip_chars()
    thousands = "," if decimal == "." else "."
    fraction = rf"(?:{re.escape(decimal)}[0-9]{{{exponent}}})?" if exponent else ""
    plain = rf"^-?(?:[0-9]{{1,15}}|[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}}){{1,4}}){fraction}$"
    frame = pl.DataFrame({"t": text}).with_columns(
        fast=pl.col("t").str.contains(plain).fill_null(False),
        digits=pl.col("t").str.replace_all(thousands, "", literal=True),
    )
    minor = frame.select(
        pl.when(pl.col("fast") & pl.col("digits").str.contains(decimal, literal=True))
        .then(pl.col("digits").str.replace(decimal, "", literal=True).cast(pl.Int64, strict=False))
        .when(pl.col("fast"))
        .then(pl.col("digits").cast(pl.Int64, strict=False) * (10**exponent))
        .otherwise(None)
        .cast(pl.Int64)
        .alias(values.name)
    ).to_series()
    leftover = frame.select(pl.arg_where(~pl.col("fast") & pl.col("t").is_not_null())).to_series()
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
    frac = parts.struct.field("3").fill_null("").str.strip_chars_end("0")
    digits = (whole + frac.str.pad_end(exponent, "0")).str.strip_chars_start("0")
    digits = pl.when(digits == "").then(pl.lit("0")).otherwise(digits)
    readable = whole.is_not_null() & (frac.str.len_chars() <= exponent) & (digits.str.len_chars() <= MAX_MINOR_DIGITS)
    return pl.when(readable).then((sign + digits).cast(pl.Int64, strict=False)).otherwise(None).cast(pl.Int64)


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


def utc_from_iso(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 with `Z` or an explicit offset ("2025-02-11T10:42:20.000Z", "...+01:00") to UTC; else null."""
    text = expr.cast(pl.String).str.strip_chars().str.replace(r"Z$", "+00:00")
    return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us").dt.convert_time_zone("UTC")


def utc_from_local(expr: pl.Expr, fmt: str, zone: str) -> pl.Expr:
    """A naive local time in `fmt` read in the region's IANA zone, to UTC.

    Ambiguous wall times (the hour repeated when DST ends, Africa/Cairo) take the earlier instant; times that do
    not exist (skipped when DST starts) are null and so quarantined rather than silently shifted.
    """
    naive = expr.cast(pl.String).str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")
    return naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def naive_datetime(expr: pl.Expr, formats: list[str]) -> pl.Expr:
    """A naive datetime in the first of `formats` that parses (strict=False, microseconds); null if none does.

    Same result as coalescing one `to_datetime` per format, but the later formats only see the values the
    earlier ones left null, which is usually none: whole-column parses are a large share of mapping time.
    """
    return expr.cast(pl.String).map_batches(
        functools.partial(_first_format, formats=formats), return_dtype=pl.Datetime("us"), is_elementwise=True
    )


def _first_format(values: pl.Series, *, formats: list[str]) -> pl.Series:
    parsed = values.str.to_datetime(formats[0], strict=False, time_unit="us")
    for fmt in formats[1:]:
        leftover = (parsed.is_null() & values.is_not_null()).arg_true()
        if not leftover.len():
            break
        parsed = parsed.scatter(leftover, values.gather(leftover).str.to_datetime(fmt, strict=False, time_unit="us"))
    return parsed


def reference_parts(expr: pl.Expr, pattern: str) -> tuple[pl.Expr, pl.Expr]:
    """(creator_id, product_id) extracted from the payment reference by the region's configured pattern."""
    groups = expr.cast(pl.String).str.extract_groups(pattern)
    return groups.struct.field("creator_id"), groups.struct.field("product_id")


def normalise_email(expr: pl.Expr) -> pl.Expr:
    """Lower-cased trimmed email; masked ("****") or malformed values become null (no usable buyer reference)."""
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.str.contains(r"^[^@\s*]+@[^@\s*]+\.[a-z]{2,}$")).then(text).otherwise(None)


def normalise_phone(expr: pl.Expr, calling_code: str) -> pl.Expr:
    """International digits for a phone ("0712..." / "+254712..." / "254712..." -> "254712...").

    Masked phones ("0****393"), Excel-mangled ones ("2.547E+11") and junk become null: a wrong buyer reference is
    worse than none. A 64-hex value (M-Pesa now sends SHA-256 hashed MSISDNs) is kept as the identifier itself.
    """
    text = expr.cast(pl.String).str.strip_chars()
    hashed = text.str.to_lowercase().str.contains(r"^[0-9a-f]{64}$")
    digits = text.str.replace_all(r"[\s\-()]", "")
    plain = digits.str.contains(r"^\+?\d{7,15}$")
    digits = digits.str.strip_prefix("+")
    international = (
        pl.when(digits.str.starts_with("00"))
        .then(digits.str.slice(2))
        .when(digits.str.starts_with("0"))
        .then(pl.lit(calling_code) + digits.str.slice(1))
        .when(digits.str.starts_with(calling_code))
        .then(digits)
        .otherwise(pl.lit(calling_code) + digits)
    )
    return pl.when(hashed).then(text.str.to_lowercase()).when(plain).then(international).otherwise(None)


def add_buyer_ref(frame: pl.DataFrame, contact_column: str, salt: str) -> pl.DataFrame:
    """Replace a normalised contact column with `buyer_ref`, its salted SHA-256, and drop the contact.

    Polars has no cryptographic hash; DuckDB's vectorised `sha256` does it. Only the contact column crosses over
    (as Arrow, zero-copy with string views): handing DuckDB the whole frame would convert every column, the
    nested `raw_record` included, to hash one.
    """
    contact = pa.table({"c": frame.get_column(contact_column).to_arrow(compat_level=pl.CompatLevel.newest())})
    with duckdb.connect() as con:
        con.register("contact", contact)
        hashed = con.sql(
            "SELECT CASE WHEN c IS NULL THEN NULL ELSE sha256(? || c) END AS h FROM contact", params=[salt]
        ).pl()
    return frame.with_columns(buyer_ref=hashed.get_column("h")).drop(contact_column)


def raw_record(columns: list[str]) -> pl.Expr:
    """The row as it arrived, kept beside the parsed fields so that a quarantined row shows what was really sent."""
    return pl.struct([pl.col(c) for c in columns]).alias("raw_record")


def finish(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the adapter schema and order the columns, keeping `raw_record` and an optional `net_minor`."""
    extra = [c for c in ("net_minor",) if c in frame.columns]
    cast = [pl.col(name).cast(dtype, strict=False) for name, dtype in ADAPTER_SCHEMA.items()]
    return frame.select([*cast, *[pl.col(c).cast(pl.Int64, strict=False) for c in extra], pl.col("raw_record")])
