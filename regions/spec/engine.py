"""The spec engine: a `RailSpec` compiled into polars expressions, read like any built-in adapter.

The spec is compiled once per file (once the header is known) into one expression per contract field; each chunk
is then a handful of vectorised selects, with the same shared helpers the built-in readers use
(`regions.parsing`: streaming CSV, exact amount parsing incl. lakh grouping, comma decimals and native digits,
zone-aware times, salted buyer hashes). Nothing runs per row in Python.

Conventions shared with the built-ins: `source_row` is the 1-based record number after the header (ignored rows
consume numbers), rows matched by an `ignore` rule or an ignored vocabulary word are counted in `ignored`, a value
that does not parse becomes null (the contract quarantines the row with its raw record), and a file that cannot be
read at all raises `FileRejected` with a sentence a person can act on.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from regions import RegionConfig
from regions.money import MINOR_UNIT_EXPONENT
from regions.parsing import (
    UNREADABLE,
    add_buyer_ref,
    check_file,
    detect_encoding,
    finish,
    int_string,
    iter_csv_chunks,
    iter_ndjson_chunks,
    major_to_minor,
    map_chunk,
    map_pool,
    month_first_record,
    month_first_rejection,
    naive_datetime,
    normalise_digits,
    normalise_email,
    normalise_phone,
    numbered_chunks,
    raw_record,
    reference_groups,
    reference_parts,
    rejection,
    require_columns,
    strptime,
    utc_from_epoch,
    utc_from_iso,
    utc_from_local,
)
from regions.rails.base import ADAPTER_SCHEMA, RAIL_REF, AdapterChunk, Expects, FileRejected, ReadContext
from regions.spec import model as m

DELIMITERS = (",", ";", "\t", "|")
#: Names that refer to values the spec derived, not to columns of the file.
DERIVED = {"@event_type": "event_type", "@status": "status"}


def normalise_name(name: str) -> str:
    """Header comparison ignores case, spaces and punctuation (`Receipt No.` = `receipt no` = `ReceiptNo`)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# --------------------------------------------------------------------------------------------------- column naming
def columns_of(src: object) -> list[str]:
    """The columns one source reads, in first-use order."""
    found: list[str] = []
    _walk(src, found, required_only=False)
    return found


def referenced_columns(spec: m.RailSpec, *, required_only: bool = False) -> list[str]:
    """Every column name the spec reads, in first-use order (`required_only`: not those with a `missing` value)."""
    found: list[str] = []
    fields = spec.fields
    for name in type(fields).model_fields:
        value = getattr(fields, name)
        for one in value if isinstance(value, list) else [value]:  # `deductions` is a list of sources
            parts = [one.of] if isinstance(one, m.Buyer) else [one]
            if isinstance(one, m.Settled):
                parts = [one.currency, one.amount]
            for part in parts:
                _walk(part, found, required_only=required_only)
    if spec.vocabulary is not None:
        _walk(spec.vocabulary.of, found, required_only=required_only)
    for rule in spec.ignore:
        _walk_condition(rule, found, required_only=required_only)
    for event in spec.events:
        _walk_condition(event.when, found, required_only=required_only)
        _walk(event.status, found, required_only=required_only)
        _walk(event.occurred_at, found, required_only=required_only)
        _walk_money(event.amount, found, required_only=required_only)
        _walk(event.settled_amount, found, required_only=required_only)
    return found


def _walk_condition(cond: m.Condition, found: list[str], *, required_only: bool) -> None:
    _walk(cond.of, found, required_only=required_only)
    for inner in [*(cond.all or []), *(cond.any or []), *([cond.not_] if cond.not_ is not None else [])]:
        _walk_condition(inner, found, required_only=required_only)


def _walk_money(money: object, found: list[str], *, required_only: bool) -> None:
    if isinstance(money, m.AbsAmount):
        _walk_money(money.abs, found, required_only=required_only)
    elif isinstance(money, m.MinusAmount):
        for part in money.minus:
            _walk_money(part, found, required_only=required_only)
    elif isinstance(money, m.WhenAmount):
        _walk_condition(money.when, found, required_only=required_only)
        _walk_money(money.then, found, required_only=required_only)
        _walk_money(money.otherwise, found, required_only=required_only)
    elif not isinstance(money, m.EventAmount):
        _walk(money, found, required_only=required_only)


def _walk(src: object, found: list[str], *, required_only: bool) -> None:
    def walk(src: object) -> None:
        if src is None or isinstance(src, m.ValueSource):
            return
        if isinstance(src, str):
            if src not in found and src not in DERIVED:
                found.append(src)
        elif isinstance(src, m.ColumnSource):
            if not (required_only and src.missing is not None):
                walk(src.column)
        elif isinstance(src, m.SplitSource):
            walk(src.split.of)
        elif isinstance(src, m.RegexSource):
            walk(src.regex.of)
        elif isinstance(src, m.JsonSource):
            walk(src.json_.of)
        elif isinstance(src, m.LookupSource):
            walk(src.lookup.of)
        elif isinstance(src, m.CoalesceSource):
            for item in src.coalesce:
                walk(item)
        elif isinstance(src, m.ConcatSource):
            for item in src.concat.parts:
                walk(item)
        elif isinstance(src, m.CaseSource):
            walk(src.case.of)
            for item in src.case.when.values():
                walk(item)
            walk(src.case.default)
            walk(src.case.missing)

    walk(src)


def alias_table(spec: m.RailSpec, currency: str) -> dict[str, str]:
    """Normalised header spelling -> canonical name (a canonical name is also its own spelling)."""
    table: dict[str, str] = {}
    for canonical, spellings in spec.header.aliases.items():
        for spelling in [canonical, *spellings]:
            table[normalise_name(spelling.replace("{currency}", currency))] = canonical
    return table


@dataclass(frozen=True)
class Layout:
    """Where the data starts and what each canonical column is called in this file."""

    header_index: int  # 0-based line (or sheet row) of the header
    names: list[str]  # unique column names as read (the header as printed, de-duplicated)
    columns: dict[str, str]  # canonical or printed name -> name as read
    delimiter: str = ","


def layout_from_header(spec: m.RailSpec, index: int, header: list[str], currency: str, delimiter: str = ",") -> Layout:
    aliases = alias_table(spec, currency)
    names = [h if h not in header[:i] else f"{h} #{i}" for i, h in enumerate(header)]
    columns: dict[str, str] = {}
    for name in names:
        columns.setdefault(name, name)
        canonical = aliases.get(normalise_name(name))
        if canonical is not None:
            columns.setdefault(canonical, name)
    return Layout(index, names, columns, delimiter)


def missing_columns(spec: m.RailSpec, layout: Layout) -> list[str]:
    return [
        c
        for c in referenced_columns(spec, required_only=True)
        if c not in layout.columns and c not in spec.header.optional
    ]


def find_header(spec: m.RailSpec, lines: list[list[str]], currency: str, delimiter: str = ",") -> Layout:
    """The first of the leading rows that names every required column; `FileRejected` naming what is missing."""
    best: tuple[int, Layout] | None = None
    for index, fields in enumerate(lines[: spec.header.search_lines]):
        fields = [f.strip().lstrip("\ufeff") for f in fields]
        if not any(fields):
            continue
        layout = layout_from_header(spec, index, fields, currency, delimiter)
        missing = missing_columns(spec, layout)
        if not missing:
            return layout
        if best is None or len(missing) < best[0]:
            best = (len(missing), layout)
    raise HeaderNotFound(spec, best[1] if best is not None else None)


class HeaderNotFound(FileRejected):
    """No leading row names every required column; `layout` is the closest row, for the rejection's wording."""

    def __init__(self, spec: m.RailSpec, layout: Layout | None) -> None:
        self.layout = layout
        if layout is None:
            super().__init__("the file has no header row", "empty_file")
        else:
            missing = ", ".join(printed_name(spec, c) for c in missing_columns(spec, layout))
            super().__init__(f"required column(s) missing: {missing}", "wrong_columns")


def printed_name(spec: m.RailSpec, column: str, currency: str = "") -> str:
    """A column as the rail's exports print it (its first header spelling), for rejections."""
    spellings = spec.header.aliases.get(column)
    return spellings[0].replace("{currency}", currency or "{currency}") if spellings else column


def delimiters(spec: m.RailSpec) -> tuple[str, ...]:
    if spec.delimiter == "auto":
        return DELIMITERS
    return tuple(spec.delimiter) if isinstance(spec.delimiter, list) else (spec.delimiter,)


def required_columns(spec: m.RailSpec) -> list[str]:
    """The columns a file must have, in the order a rejection lists them: the aliases' order when every one has
    aliases, else the order of `raw` (JSON lines), else the order the spec reads them."""
    required = [
        c for c in referenced_columns(spec, required_only=True) if c not in spec.header.optional and c not in DERIVED
    ]
    if required and all(c in spec.header.aliases for c in required):
        order = list(spec.header.aliases)
        required.sort(key=order.index)
    elif spec.raw:
        required.sort(key=lambda c: spec.raw.index(c) if c in spec.raw else len(spec.raw))
    return required


#: How many leading records of a JSON-lines file decide whether it is the rail's feed at all (`header.present`): a
#: count of records, not the first chunk, so that the verdict does not depend on the chunk size (a log opening with
#: a megabyte of events without an amount was refused when read in small chunks and loaded in the ingest's).
PRESENCE_RECORDS = 100_000

#: The largest workbook an `xlsx` rail reads: sheets are read whole into memory (CSV and JSON lines are streamed),
#: so past this a workbook is refused by its size (`too_large`) before it is opened, not read until memory runs out.
XLSX_MAX_BYTES = 512 << 20


def expects_of(spec: m.RailSpec, format_name: str) -> Expects:
    """What the rail's files look like, in a rejection's words: its required columns as its exports print them."""
    what = spec.expects or f"a {format_name} {spec.format.upper()} file"
    columns = tuple(printed_name(spec, c) for c in required_columns(spec))
    limit = XLSX_MAX_BYTES if spec.format == "xlsx" else None
    return Expects(what, spec.format, columns, delimiter=delimiters(spec)[0], max_bytes=limit)


#: What a `($)` money header means: a platform's fixed label for US dollars (Gumroad's export states every amount
#: but the buyer-currency columns in USD, whatever the seller's country), never the region's own currency.
DOLLAR_LABEL_CURRENCY = "USD"

_MONEY_UNIT = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>\$|[A-Za-z]{3})\)$")


def check_currency(spec: m.RailSpec, header: list[str], expects: Expects, region: RegionConfig) -> None:
    """Refuse a file whose money columns (those spelt with `{currency}`) name another currency than the region's.

    `($)` is US dollars: read as the region's own money it would load a Gumroad export's dollar amounts 1:1 as
    shillings, a plausible figure nothing downstream could flag.
    """
    money = {
        normalise_name(spelling.split("(")[0])
        for spellings in spec.header.aliases.values()
        for spelling in spellings
        if "{currency}" in spelling
    }
    for name in header:
        match = _MONEY_UNIT.match(name.strip())
        if match is None or normalise_name(match["name"]) not in money:
            continue
        dollars = match["unit"] == "$"
        unit = DOLLAR_LABEL_CURRENCY if dollars else match["unit"].upper()
        if unit == region.currency:
            continue
        if dollars:
            problem = (
                f"the money columns say ($), a platform's label for US dollars, but this region's money is"
                f" {region.currency}: kanda counts each region's money in its own currency and does not convert it;"
                f" export the file in {region.currency} (headers such as `Sale Price ({region.currency})`)"
            )
        else:  # three letters matched by a pattern: naming them quotes nothing but a currency code
            problem = (
                f"the money columns are in {unit}, but this region's exports are in {region.currency}: "
                "the file belongs to another region"
            )
        raise rejection("wrong_currency", problem, expects, region)


def reject_header(spec: m.RailSpec, exc: HeaderNotFound, expects: Expects, region: RegionConfig) -> FileRejected:
    """The closest header row's failure worded as the built-in rails word it (`regions.parsing.require_columns`)."""
    if exc.layout is None:
        return rejection("empty_file", "the file has no header row", expects, region)
    layout = exc.layout
    required = required_columns(spec)  # the order of `expects.columns`, which require_columns pairs them by
    present = [c for c in required if c in layout.columns]
    try:
        require_columns(present, expects, region, required=required, found=layout.names)
    except FileRejected as rejected:
        return rejected
    return exc  # pragma: no cover - a missing column always fails require_columns


def sniff_csv(spec: m.RailSpec, path: Path, encoding: str, currency: str) -> Layout:
    """Header row and delimiter: the declared delimiter(s), the one whose split finds the header."""
    with path.open("r", encoding=encoding, newline="") as handle:
        head = [handle.readline() for _ in range(spec.header.search_lines)]
    head = [line.lstrip("\ufeff") for line in head if line]
    candidates = delimiters(spec)
    if spec.delimiter == "auto":
        candidates = tuple(sorted(candidates, key=lambda d: -max((line.count(d) for line in head), default=0)))
    failures: list[HeaderNotFound] = []
    for delimiter in candidates:
        rows = [next(csv.reader([line], delimiter=delimiter), []) for line in head]
        try:
            return find_header(spec, rows, currency, delimiter)
        except HeaderNotFound as exc:
            failures.append(exc)
    found = [f for f in failures if f.layout is not None]
    if not found:
        raise HeaderNotFound(spec, None)

    def closeness(exc: HeaderNotFound) -> tuple[int, int]:
        assert exc.layout is not None
        return len(missing_columns(spec, exc.layout)), -len(exc.layout.names)

    # the split that comes closest (fewest missing, then most columns); ties go to the rail's own separator
    raise min(found, key=closeness)


# ---------------------------------------------------------------------------------------------------- compiling
class Compiler:
    """Spec sources -> polars expressions over one file's columns."""

    def __init__(self, spec: m.RailSpec, layout: Layout, exponent: int = 2) -> None:
        self.spec = spec
        self.layout = layout
        self.exponent = exponent
        self.parsed: dict[str, str] = {}
        self.parsed_exprs: dict[str, pl.Expr] = {}
        #: Every column the spec reads, as text without surrounding blanks, computed once per chunk (`with_texts`)
        #: into a working column that each use reads: an eager select shares no subexpressions, and a status
        #: column read by the vocabulary and two event conditions would otherwise be cleaned three times over.
        present = [name for name in referenced_columns(spec) if name in layout.columns]
        self.texts = {name: f"_text{index}" for index, name in enumerate(present)}
        #: Derived values that are lower-case words already (a vocabulary's or the default event type and status).
        self.clean_derived = {"@event_type", "@status"} - {
            f"@{name}" for name in ("event_type", "status") if getattr(spec.fields, name) is not None
        }
        decimal = spec.amount.decimal
        self.decimal = decimal if decimal != "auto" else ("," if layout.delimiter == ";" else ".")

    def column(self, name: str) -> pl.Expr:
        if name in DERIVED:
            return pl.col(DERIVED[name])
        if name in self.texts:
            return pl.col(self.texts[name])
        if name in self.layout.columns:
            return self._text(name)
        return pl.lit(None, pl.String)  # an optional column this file does not have

    def _text(self, name: str) -> pl.Expr:
        return pl.col(self.layout.columns[name]).cast(pl.String).str.strip_chars()

    def lower(self, src: object, *, strip: bool = False) -> pl.Expr:
        """A source in lower case (`strip`: without surrounding blanks too), for the comparisons that ignore case.

        Lower-casing text is one of the mapping's larger costs, and a status column is compared by the vocabulary,
        by each event's condition and by each event's status lookup: a column the file has is lower-cased once per
        chunk into a working column (`parsed_columns`, like the parsed amounts), a derived word that is lower-case
        by construction is read as it is, and a lookup lower-cases its table instead of its result. Anything else
        is lower-cased where it is used. Each form gives exactly the value the plain expression would.
        """
        name = src.column if isinstance(src, m.ColumnSource) and src.missing is None else src
        if isinstance(name, str) and name in self.texts:  # working texts are stripped already
            key = f"lower:{name}"
            working = self.parsed.get(key)
            if working is None:
                working = self.parsed[key] = f"_lower{len(self.parsed)}"
                self.parsed_exprs[working] = pl.col(self.texts[name]).str.to_lowercase()
            return pl.col(working)
        if isinstance(name, str) and name in self.clean_derived:
            return pl.col(DERIVED[name])
        if isinstance(src, m.LookupSource):
            return self._lookup(src.lookup, lambda v: v if v is None else (v.strip() if strip else v).lower())
        text = self.source(src)
        return (text.str.strip_chars() if strip else text).str.to_lowercase()

    def _lookup(self, a: m.LookupArgs, result: Callable[[str | None], str | None] = lambda v: v) -> pl.Expr:
        table = {k.strip().lower(): result(v) for k, v in a.table.items()}
        return self.lower(a.of, strip=True).replace_strict(table, default=result(a.default), return_dtype=pl.String)

    def with_texts(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` with the working text columns that `column` reads (the original cells stay for `raw_record`)."""
        return frame.with_columns(self._text(name).alias(working) for name, working in self.texts.items())

    def source(self, src: object) -> pl.Expr:
        if isinstance(src, str):
            return self.column(src)
        if isinstance(src, m.ColumnSource):
            if src.missing is not None and src.column not in self.layout.columns:
                return pl.lit(src.missing, pl.String)
            return self.column(src.column)
        if isinstance(src, m.ValueSource):
            return pl.lit(None if src.value is None else str(src.value), pl.String)
        if isinstance(src, m.SplitSource):
            a = src.split
            return self.source(a.of).str.split(a.separator).list.get(a.index, null_on_oob=True).str.strip_chars()
        if isinstance(src, m.RegexSource):
            a = src.regex
            if isinstance(a.group, str):
                return self.source(a.of).str.extract_groups(a.pattern).struct.field(a.group)
            return self.source(a.of).str.extract(a.pattern, a.group)
        if isinstance(src, m.JsonSource):
            return self.source(src.json_.of).str.json_path_match(src.json_.path)
        if isinstance(src, m.LookupSource):
            return self._lookup(src.lookup)
        if isinstance(src, m.CoalesceSource):
            return pl.coalesce([_nonempty(self.source(s)) for s in src.coalesce])
        if isinstance(src, m.ConcatSource):
            return pl.concat_str([self.source(s) for s in src.concat.parts], separator=src.concat.separator)
        if isinstance(src, m.CaseSource):
            a = src.case
            # compared as `equals` compares, ignoring case and surrounding blanks: a Captured column re-saved by a
            # spreadsheet says FALSE where Stripe wrote false
            on = self.lower(a.of, strip=True)
            result = self.source(a.default) if a.default is not None else pl.lit(None, pl.String)
            for key, then in reversed(list(a.when.items())):
                result = pl.when(on == key.strip().lower()).then(self.source(then)).otherwise(result)
            if a.missing is not None:
                result = pl.when(on.is_null()).then(self.source(a.missing)).otherwise(result)
            return result
        raise TypeError(f"unknown source {src!r}")  # pragma: no cover - the model admits no other kind

    def ignored(self) -> pl.Expr:
        """True for rows that are structure, not data (rules, ignored vocabulary words)."""
        mask = pl.lit(False)
        for rule in self.spec.ignore:
            mask = mask | self.condition(rule)
        vocab = self.spec.vocabulary
        if vocab is not None and vocab.ignore:
            words = [w.strip().lower() for w in vocab.ignore]
            mask = mask | self.lower(vocab.of).is_in(words).fill_null(False)
        return mask

    def condition(self, cond: m.Condition) -> pl.Expr:
        """A condition as a boolean expression; a check on a missing value is false, never null."""
        if cond.all is not None:
            return pl.all_horizontal([self.condition(c) for c in cond.all])
        if cond.any is not None:
            return pl.any_horizontal([self.condition(c) for c in cond.any])
        if cond.not_ is not None:
            return ~self.condition(cond.not_)
        value = self.source(cond.of)
        if cond.equals is not None:
            hit = self.lower(cond.of) == cond.equals.strip().lower()
        elif cond.one_of is not None:
            hit = self.lower(cond.of).is_in([v.strip().lower() for v in cond.one_of])
        elif cond.matches is not None:
            hit = value.str.contains(cond.matches)
        elif cond.empty is not None:
            blank = value.is_null() | (value == "")
            return blank if cond.empty else ~blank
        elif cond.missing is not None:
            return value.is_null() if cond.missing else value.is_not_null()
        elif cond.nonzero is not None:
            # given and not zero; unparseable text counts as given (an amount of unknown size, quarantined)
            parsed = self.amount(cond.of, self.exponent)
            hit = (value != "") & (parsed.is_null() | (parsed != 0))
            hit = hit.fill_null(False)
            return hit if cond.nonzero else ~hit
        else:  # is_header: a repeated page header repeats its own column name
            names = self._header_names(cond.of)
            hit = self.lower(cond.of).str.replace_all(r"[^a-z0-9]", "").is_in(names)
        return hit.fill_null(False)

    def money(self, money: object, templates: dict[str, m.EventTemplate]) -> pl.Expr:
        """An event amount before its sign: a source read as money, or arithmetic on such amounts."""
        if isinstance(money, m.AbsAmount):
            return self.money(money.abs, templates).abs()
        if isinstance(money, m.MinusAmount):
            first, second = money.minus
            return self.money(first, templates) - self.money(second, templates)
        if isinstance(money, m.WhenAmount):
            return (
                pl.when(self.condition(money.when))
                .then(self.money(money.then, templates))
                .otherwise(self.money(money.otherwise, templates))
            )
        if isinstance(money, m.EventAmount):
            other = templates[money.event]
            return (
                pl.when(self.condition(other.when))
                .then(self.money(other.amount, templates))
                .otherwise(pl.lit(0, pl.Int64))
            )
        return self.amount(money, self.exponent)

    def _header_names(self, src: object) -> list[str]:
        name = src if isinstance(src, str) else getattr(src, "column", "")
        spellings = {name, self.layout.columns.get(name, name), *self.spec.header.aliases.get(name, [])}
        return [normalise_name(s) for s in spellings]

    def amount(self, src: object, exponent: int) -> pl.Expr:
        """A source parsed as money, once per source: the parse becomes a column (`parsed_columns`) that every use
        (the sale, a refund, a condition, a difference) reads, instead of parsing the text again each time."""
        key = repr(src)
        name = self.parsed.get(key)
        if name is None:
            name = self.parsed[key] = f"_money{len(self.parsed)}"
            self.parsed_exprs[name] = self._parse_amount(src, exponent)
        return pl.col(name)

    def parsed_columns(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` with the working columns the compiled expressions read: parsed amounts, lower-cased texts.

        A working column may read another: a fee that is a `case` on a column (nested in a `case` on
        `@event_type`, Flutterwave's `merchant_fee`) parses an expression that compares the column's lower-cased
        working text. The columns of one `with_columns` are computed side by side from the frame it is given, so
        they are added in rounds, each holding those whose inputs the frame already has. One that reads a value
        derived later (`@event_type`, `@status`) waits for a later call: the spec model admits such a reference
        only where that value exists by then (`model.derived_reads`).
        """
        pending = {name: expr for name, expr in self.parsed_exprs.items() if name not in frame.columns}
        while pending:
            have = set(frame.columns)
            ready = {name: expr for name, expr in pending.items() if set(expr.meta.root_names()) <= have}
            if not ready:
                break
            frame = frame.with_columns(**ready)
            pending = {name: expr for name, expr in pending.items() if name not in ready}
        return frame

    def _parse_amount(self, src: object, exponent: int) -> pl.Expr:
        text = self.source(src)
        unit = self.spec.amount
        if unit.unit == "major":
            return major_to_minor(text, exponent, decimal=self.decimal)
        value = int_string(text)
        divisor = unit.scale_down
        if divisor == 1:
            return value
        # A declared x100 source whose value is not a multiple of 100 is not what the spec says: null, quarantined.
        return pl.when(value % divisor == 0).then(value // divisor).otherwise(None)

    def occurred_at(self, zone: str, source: m.Source | None = None) -> pl.Expr:
        t = self.spec.time
        text = self.source(self.spec.fields.occurred_at if source is None else source)
        if t.native_digits:
            text = normalise_digits(text)
        parsed: list[pl.Expr] = []
        strftime = [f for f in t.formats if f not in ("iso", "epoch_s", "epoch_ms")]
        for fmt in t.formats:
            if fmt == "iso":
                parsed.append(utc_from_iso(text))
            elif fmt in ("epoch_s", "epoch_ms"):
                parsed.append(utc_from_epoch(text, "s" if fmt == "epoch_s" else "ms"))
        if strftime and t.zone == "offset":  # each format states its offset (`%z`); a second of 60 is unreadable
            parsed += [
                text.map_batches(
                    functools.partial(strptime, fmt=f), return_dtype=pl.Datetime("us", "UTC"), is_elementwise=True
                ).dt.convert_time_zone("UTC")
                for f in strftime
            ]
        elif strftime and t.zone == "utc":
            parsed.append(naive_datetime(text, strftime).dt.replace_time_zone("UTC"))
        elif strftime:
            parsed.append(utc_from_local(text, strftime, zone))
        parsed = [p.cast(pl.Datetime("us", "UTC")) for p in parsed]
        return parsed[0] if len(parsed) == 1 else pl.coalesce(parsed)


def _nonempty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


def settled_elsewhere(
    c: Compiler, fields: m.Fields, currency: pl.Expr, region_currency: str, staged: pl.DataFrame
) -> pl.Expr | None:
    """Rows paid in another currency than the region's whose settled figures the rail states in the region's
    (`fields.settled`): a buyer charged in USD on an account that settles in EGP. The payment's currency must be a
    known ISO 4217 code: a misspelt or garbled one is a damaged row, quarantined for it, not a payment to convert.

    None when no row of the chunk is such a row (nearly every chunk of a region's exports): its settled figures are
    then not parsed at all, which would cost a whole chunk's worth of amount parsing for nothing."""
    if fields.settled is None:
        return None
    settled_in = c.source(fields.settled.currency).str.to_uppercase()
    paid_elsewhere = (currency != region_currency) & currency.is_in(sorted(MINOR_UNIT_EXPONENT))
    settled = (paid_elsewhere & (settled_in == region_currency)).fill_null(False)
    return settled if staged.select(settled.any()).item() else None


def states_figure(c: Compiler, src: m.Source) -> pl.Expr:
    """A settled figure the row states: given and not zero (Stripe writes 0 where nothing settled, as on a failed
    charge). Text that does not parse counts as stated: the figure is then unreadable, and quarantined as such."""
    return c.condition(m.Condition(of=src, nonzero=True))


def map_rows(spec: m.RailSpec, layout: Layout, rows: pl.DataFrame, ctx: ReadContext) -> tuple[pl.DataFrame, int]:
    """Adapter-shaped rows (before `finish`) from one chunk with `source_row`, and how many rows were ignored.

    A row yields its own event and then, in `events` order, each further event whose condition holds; all of a
    row's events share its `source_row` (the batch numbers the second `:row.2`), ordered by row, then template.
    """
    region = ctx.region
    c = Compiler(spec, layout, region.exponent)
    rows = c.with_texts(rows)
    fields = spec.fields
    if spec.ignore or (spec.vocabulary is not None and spec.vocabulary.ignore):
        # as a column, then filtered: a condition on an optional column the file lacks is a literal, and polars
        # (2.1) fails filtering 20,000 rows or more by a literal predicate ("filter predicate length of 2")
        structure = c.ignored().alias("_structure")
        kept = c.parsed_columns(rows).with_columns(structure).filter(~pl.col("_structure")).drop("_structure")
    else:
        kept = rows
    ignored = rows.height - kept.height
    if spec.vocabulary is not None:
        word = c.lower(spec.vocabulary.of, strip=True)
        vocab_map = {k.strip().lower(): v for k, v in spec.vocabulary.map.items()}
        event_type = word.replace_strict(
            {k: v[0] for k, v in vocab_map.items()}, default=spec.vocabulary.default_event_type, return_dtype=pl.String
        )
        status = word.replace_strict({k: v[1] for k, v in vocab_map.items()}, default=None, return_dtype=pl.String)
    else:
        event_type, status = pl.lit("sale"), pl.lit("success")
    if fields.event_type is not None:
        event_type = c.lower(fields.event_type)
    if fields.status is not None:
        status = c.lower(fields.status)
    reference = (
        [reference_groups(c.source(fields.reference), region.reference_pattern)] if fields.reference is not None else []
    )
    staged = c.parsed_columns(kept).with_columns(*reference, event_type=event_type, status=status)
    if any(re.match(r"%d([/.-])%m\1", f) for f in spec.time.formats):
        # on the staged rows: the time may be a `case` (on a column's working text, or on `@event_type`)
        text = c.source(fields.occurred_at).cast(pl.String)
        staged = c.parsed_columns(staged)
        dates = staged.select(text=text, row=pl.col("source_row"))
        month_first = month_first_record(dates["text"], dates["row"])
        if month_first is not None:
            raise month_first_rejection(month_first, expects_of(spec, spec.name or "spec"), region)

    exponent = region.exponent
    amount = c.amount(fields.amount, exponent)
    absent = isinstance(fields.currency, str) and fields.currency not in layout.columns  # an optional column
    if fields.currency is None or absent:
        currency = pl.lit(region.currency)
    else:
        currency = c.source(fields.currency).str.to_uppercase()
    if fields.settled is not None:
        staged = c.parsed_columns(staged)  # the working columns a currency's source may read (a `case`'s)
    settled = settled_elsewhere(c, fields, currency, region.currency, staged)
    own_currency = currency
    if fields.settled is not None and settled is not None:
        # before the sign rules below, which the settled figure follows as the amount it replaces does
        read = settled & states_figure(c, fields.settled.amount)
        amount = pl.when(read).then(c.amount(fields.settled.amount, exponent)).otherwise(amount)
        own_currency = pl.when(read).then(pl.lit(region.currency)).otherwise(currency)
    fee = c.amount(fields.fee, exponent) if fields.fee is not None else pl.lit(0, pl.Int64)
    fee_text = c.source(fields.fee) if fields.fee is not None else pl.lit("0")
    unstated = fee_text.is_null() | (fee_text == "")
    if fields.fee_required is not None:
        # where the rail always states a fee, none is a fee of unknown size: null (quarantined), not a made-up 0
        required = c.condition(fields.fee_required)
        fee = (
            pl.when(unstated & required)
            .then(pl.lit(None, pl.Int64))
            .when(unstated)
            .then(pl.lit(0, pl.Int64))
            .otherwise(fee)
        )
    else:
        fee = pl.when(unstated).then(pl.lit(0, pl.Int64)).otherwise(fee)
    is_sale = pl.col("event_type") == "sale"
    if spec.amount.sign in ("event_type", "sales_as_given"):
        # A sale keeps the sign it was written with: a negative sale is the contract's to quarantine, never a
        # positive figure made up by taking its absolute value.
        amount = pl.when(is_sale).then(amount).otherwise(-amount.abs())
    elif spec.amount.sign == "negate_back":
        amount = pl.when(is_sale).then(amount).otherwise(-amount)
    if fields.reference is not None:
        creator, product = reference_parts()
    else:
        creator, product = pl.lit(None, pl.String), pl.lit(None, pl.String)
    if fields.creator_id is not None:
        creator = c.source(fields.creator_id)
    if fields.product_id is not None:
        product = c.source(fields.product_id)
    if fields.buyer is None:
        contact = pl.lit(None, pl.String)
    elif fields.buyer.kind == "email":
        contact = normalise_email(c.source(fields.buyer.of))
    else:
        contact = normalise_phone(c.source(fields.buyer.of), region.calling_code)
    if fields.charged is not None:
        # the buyer bore `borne` of the fee: the seller's fee is the rest; a figure outside 0..fee contradicts them.
        # An unreadable amount is quarantined for itself: the fee is not in question then.
        charged_text = c.source(fields.charged)
        stated = c.amount(fields.amount, exponent)
        borne = c.amount(fields.charged, exponent) - stated
        fee = (
            pl.when(~is_sale | charged_text.is_null() | (charged_text.str.strip_chars() == "") | stated.is_null())
            .then(fee)
            .when((borne >= 0) & (borne <= fee))
            .then(fee - borne)
        )
    if fields.fee_currency is not None:
        stated_in = c.source(fields.fee_currency).str.to_uppercase()
        # the region's currency, which the contract holds every event to: the fee of a charge in another one is
        # still the settlement's, and the charge is quarantined for its own currency
        fee = pl.when(stated_in.is_null() | (stated_in == "") | (stated_in == region.currency)).then(fee)
    deducted = pl.lit(0, pl.Int64)
    for part in fields.deductions:
        # what else the rail took from the seller (an affiliate's commission): part of what the sale cost them
        text = c.source(part)
        value = c.amount(part, exponent)
        given = text.is_not_null() & (text.str.strip_chars() != "")
        deducted = deducted + pl.when(~given).then(pl.lit(0, pl.Int64)).when(value >= 0).then(value)
    if fields.deductions:
        fee = fee + deducted
    channel = c.lower(fields.channel) if fields.channel is not None else pl.lit(spec.channel_default)
    shared = [
        pl.col("source_row"),
        _nonempty(c.source(fields.transaction_id)).alias("transaction_id"),
        creator.alias("creator_id"),
        product.alias("product_id"),
        contact.alias("_contact"),
        _nonempty(channel).cast(pl.String).alias("channel"),
        c.occurred_at(region.zone).alias("occurred_at"),
        raw_record(layout.names),
    ]
    if fields.event_ref is not None:
        shared.append(_nonempty(c.source(fields.event_ref).str.strip_chars()).alias(RAIL_REF))
    own = [
        pl.col("event_type"),
        pl.col("status").cast(pl.String),
        amount.alias("amount_minor"),
        fee.alias("fee_minor"),
        own_currency.alias("currency"),
    ]
    if fields.net is not None:
        net = c.amount(fields.net, exponent)
        if spec.amount.sign in ("event_type", "sales_as_given", "negate_back"):
            net = pl.when(is_sale).then(net).otherwise(-net.abs())
        own.append((net - deducted.fill_null(0)).alias("net_minor"))
    if not spec.events:
        mapped = c.parsed_columns(staged).select([*shared[:2], *own[:2], *shared[2:], *own[2:]])
        return add_buyer_ref(mapped, "_contact", ctx.salt), ignored

    templates = {t.key: t for t in spec.events}
    fanned = []
    for index, template in enumerate(spec.events, start=1):
        value = c.money(template.amount, templates)
        event_currency = currency
        if template.settled_amount is not None and settled is not None:
            read = settled & states_figure(c, template.settled_amount)
            value = pl.when(read).then(c.amount(template.settled_amount, exponent)).otherwise(value)
            event_currency = pl.when(read).then(pl.lit(region.currency)).otherwise(currency)
        signed = {"negative": -value.abs(), "negate": -value, "as_given": value}[template.sign]
        event_status = c.lower(template.status) if template.status is not None else pl.col("status")
        fanned += [
            c.condition(template.when).alias(f"_when{index}"),
            event_status.cast(pl.String).alias(f"_status{index}"),
            signed.cast(pl.Int64).alias(f"_amount{index}"),
            event_currency.alias(f"_currency{index}"),
        ]
        if template.occurred_at is not None:  # a time of its own where the row states one (unreadable: null)
            stated = c.source(template.occurred_at)
            fanned += [
                (stated.is_not_null() & (stated != "")).alias(f"_has_time{index}"),
                c.occurred_at(region.zone, template.occurred_at).alias(f"_time{index}"),
            ]
    wide = c.parsed_columns(staged).select([*shared, *own, *fanned])
    names = ["source_row", "transaction_id", "event_type", "status", "creator_id", "product_id", "_contact", "channel"]
    names += ["amount_minor", "fee_minor", "currency", "occurred_at", "raw_record"]
    names += ["net_minor"] if fields.net is not None else []
    names += [RAIL_REF] if fields.event_ref is not None else []
    parts = [wide.select(*[pl.col(n) for n in names], _order=pl.lit(0, pl.Int8))]
    for index, template in enumerate(spec.events, start=1):
        extra = wide.filter(pl.col(f"_when{index}"))
        if extra.is_empty():
            continue
        overrides = {
            "event_type": pl.lit(template.event_type, pl.String),
            "status": pl.col(f"_status{index}"),
            "amount_minor": pl.col(f"_amount{index}"),
            "fee_minor": pl.lit(0, pl.Int64),
            "net_minor": pl.col(f"_amount{index}"),
            "currency": pl.col(f"_currency{index}"),
        }
        if template.occurred_at is not None:
            has_time = pl.col(f"_has_time{index}")
            overrides["occurred_at"] = pl.when(has_time).then(pl.col(f"_time{index}")).otherwise(pl.col("occurred_at"))
        parts.append(
            extra.select(*[overrides.get(n, pl.col(n)).alias(n) for n in names], _order=pl.lit(index, pl.Int8))
        )
    mapped = parts[0] if len(parts) == 1 else pl.concat(parts).sort("source_row", "_order", maintain_order=True)
    return add_buyer_ref(mapped.drop("_order"), "_contact", ctx.salt), ignored


# ------------------------------------------------------------------------------------------------------ reading
class SpecAdapter:
    """An adapter whose whole behaviour is its spec."""

    def __init__(self, spec: m.RailSpec, format_name: str | None = None) -> None:
        self.spec = spec
        self.format_name = format_name or spec.name or "spec"
        self.expects = expects_of(spec, self.format_name)
        self.states_fees = spec.fields.fee is not None
        self.running_totals = spec.money_back == "running_total"

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        # the same first look as the built-in rails: missing, empty, binary, another container -> a kind and advice
        check_file(path, self.expects, ctx.region)
        reader = {"csv": self._csv, "xlsx": self._xlsx, "ndjson": self._ndjson}[self.spec.format]
        yield from reader(path, ctx)

    def _header(self, found: Layout, region: RegionConfig) -> Layout:
        check_currency(self.spec, found.names, self.expects, region)
        return found

    def layout(self, path: Path, ctx: ReadContext) -> Layout:
        """The header this file would be read with (for `kanda regions check`); refused as `read` refuses it."""
        check_file(path, self.expects, ctx.region)
        if self.spec.format == "ndjson":
            paths = json_paths(self.spec)
            return Layout(0, paths, {p: p for p in paths})
        try:
            if self.spec.format == "csv":
                encoding = detect_encoding(path) if self.spec.encoding == "auto" else self.spec.encoding
                return self._header(sniff_csv(self.spec, path, encoding, ctx.region.currency), ctx.region)
            sheet = _read_sheet(path, 0, 1, self.expects, ctx.region)
            head = [
                ["" if v is None else str(v) for v in row] for row in sheet.head(self.spec.header.search_lines).rows()
            ]
            return self._header(find_header(self.spec, head, ctx.region.currency), ctx.region)
        except HeaderNotFound as exc:
            raise reject_header(self.spec, exc, self.expects, ctx.region) from None

    def _csv(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        encoding = detect_encoding(path) if self.spec.encoding == "auto" else self.spec.encoding
        try:
            layout = self._header(sniff_csv(self.spec, path, encoding, ctx.region.currency), ctx.region)
        except HeaderNotFound as exc:
            if exc.layout is not None:
                check_currency(self.spec, exc.layout.names, self.expects, ctx.region)
            raise reject_header(self.spec, exc, self.expects, ctx.region) from None
        chunks = iter_csv_chunks(
            path,
            ctx.batch_rows,
            delimiter=layout.delimiter,
            column_names=layout.names,
            skip_rows=layout.header_index + 1,
            ragged=self.spec.ragged,
            encoding=encoding,
            expects=self.expects,
            region=ctx.region,
        )
        with map_pool() as pool:
            for rows, skipped in numbered_chunks(chunks, layout.header_index):
                frame, ignored = map_chunk(pool, functools.partial(map_rows, self.spec, layout, ctx=ctx), rows)
                yield AdapterChunk(frame=frame, ignored=ignored + skipped)

    def _xlsx(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        import fastexcel

        try:
            sheets = fastexcel.read_excel(str(path)).sheet_names
        except Exception as exc:  # fastexcel raises its own error types for non-zip or damaged workbooks
            problem = "the workbook's parts cannot be read (a damaged or partly written file?)"
            raise rejection("corrupt_spreadsheet", problem, self.expects, ctx.region) from exc
        position, headers = 0, 0
        with map_pool() as pool:
            for number, sheet in enumerate(sheets, start=1):
                table = _read_sheet(path, sheet, number, self.expects, ctx.region)
                if table.height == 0 or table.width == 0:
                    continue
                head = [
                    ["" if v is None else str(v) for v in row]
                    for row in table.head(self.spec.header.search_lines).rows()
                ]
                try:
                    found = self._header(find_header(self.spec, head, ctx.region.currency), ctx.region)
                except HeaderNotFound as exc:
                    if exc.layout is None:  # a sheet of blank rows
                        continue
                    rejected = reject_header(self.spec, exc, self.expects, ctx.region)
                    # sheet names are content: say which sheet by its position
                    raise FileRejected(f"sheet {number}: {rejected.reason}", rejected.kind) from None
                headers += 1
                layout = Layout(found.header_index, found.names, found.columns)
                data = table.slice(found.header_index + 1).rename(dict(zip(table.columns, found.names, strict=False)))
                data = data.select(found.names).with_columns(
                    source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64) + position
                )
                position += data.height
                if data.height == 0 and found.header_index == 0:
                    continue  # a header without rows: an empty export (a quiet day), as a header-only CSV
                for start in range(0, max(data.height, 1), ctx.batch_rows):
                    rows = data.slice(start, ctx.batch_rows)
                    frame, ignored = map_chunk(pool, functools.partial(map_rows, self.spec, layout, ctx=ctx), rows)
                    yield AdapterChunk(frame=frame, ignored=ignored + (found.header_index if start == 0 else 0))
        if not headers:
            problem = "the workbook is empty (no sheet has a header row)"
            raise rejection("empty_file", problem, self.expects, ctx.region)

    def _ndjson(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        paths = json_paths(self.spec)
        required = [p for p in referenced_columns(self.spec, required_only=True) if p not in self.spec.header.optional]
        schema = _json_schema(paths)
        layout = Layout(0, paths, {p: p for p in paths})
        position = 0

        def flattened() -> Iterator[pl.DataFrame]:
            nonlocal position
            # the first PRESENCE_RECORDS records are held back until they show the file is the rail's feed
            held: list[pl.DataFrame] = []
            looked, present, decided = 0, set(), False
            for chunk in iter_ndjson_chunks(path, ctx.batch_rows, schema, expects=self.expects, region=ctx.region):
                if chunk.height == 0:
                    continue
                flat = chunk.select([_json_leaf(p).alias(p) for p in paths] + [pl.col(UNREADABLE)])
                if not decided:
                    head = flat.head(PRESENCE_RECORDS - looked)
                    present |= {p for p in required if head[p].null_count() < head.height}
                    looked += head.height
                    held.append(flat)
                    if looked < PRESENCE_RECORDS:
                        continue
                    self._require_present(required, present, ctx.region)
                    decided, ready, held = True, held, []
                else:
                    ready = [flat]
                for frame in ready:
                    yield frame.with_columns(source_row=pl.int_range(1, frame.height + 1, dtype=pl.Int64) + position)
                    position += frame.height
            if held:  # a file of fewer records than PRESENCE_RECORDS
                self._require_present(required, present, ctx.region)
                for frame in held:
                    yield frame.with_columns(source_row=pl.int_range(1, frame.height + 1, dtype=pl.Int64) + position)
                    position += frame.height

        with map_pool() as pool:
            for flat in flattened():
                lines = flat[UNREADABLE].is_not_null()
                if lines.any():
                    yield AdapterChunk(frame=unreadable_lines(flat.filter(lines)))
                    flat = flat.filter(~lines)
                if flat.height:
                    rows = flat.drop(UNREADABLE)
                    frame, ignored = map_chunk(pool, functools.partial(map_rows, self.spec, layout, ctx=ctx), rows)
                    yield AdapterChunk(frame=frame, ignored=ignored)
        if position == 0:
            raise rejection(
                "empty_file", "the file holds no JSON documents (only blank lines)", self.expects, ctx.region
            )

    def _require_present(self, required: list[str], present: set[str], region: RegionConfig) -> None:
        """Refuse a JSON-lines file whose first records lack the fields the rail reads (`header.present`)."""
        found = [p for p in required if p in present]
        if self.spec.header.present == "all" and len(found) < len(required):
            require_columns(found, self.expects, region)
        if required and not found:
            problem = (
                f"no record has any of the fields the rail reads (the first {PRESENCE_RECORDS:,} are looked at; "
                "is this another rail's feed?)"
            )
            raise rejection("wrong_columns", problem, self.expects, region)


def unreadable_lines(flat: pl.DataFrame) -> pl.DataFrame:
    """Adapter rows for lines that are not JSON objects: no field read, so the contract quarantines each (every
    field missing), with the line's number, what is wrong with it and its text as the raw record."""
    nothing = [pl.lit(None, dtype).alias(name) for name, dtype in ADAPTER_SCHEMA.items() if name != "source_row"]
    return finish(flat.select("source_row", *nothing, pl.col(UNREADABLE).alias("raw_record")))


def json_paths(spec: m.RailSpec) -> list[str]:
    """The JSON fields a JSON-lines rail reads: those named in `raw` first (the raw record's order), then the rest."""
    return [*spec.raw, *[p for p in referenced_columns(spec) if p not in spec.raw]]


def _read_sheet(
    path: Path,
    sheet: str | int,
    number: int = 1,
    expects: Expects | None = None,
    region: RegionConfig | None = None,
) -> pl.DataFrame:
    """One sheet, every cell as text, no header assumed (the spec finds it); an empty sheet is an empty frame."""
    try:
        return pl.read_excel(
            path,
            engine="calamine",
            sheet_name=sheet if isinstance(sheet, str) else None,
            sheet_id=None if isinstance(sheet, str) else sheet + 1,
            has_header=False,
            infer_schema_length=0,
            raise_if_empty=False,
        )
    except Exception as exc:
        problem = f"sheet {number} cannot be read (a damaged or partly written file?)"
        raise rejection("corrupt_spreadsheet", problem, expects, region) from exc


def _json_schema(paths: list[str]) -> dict[str, pl.DataType]:
    """A nested struct schema with a string at every leaf the spec reads (numbers and objects arrive as text)."""
    tree: dict = {}
    for p in paths:
        node = tree
        parts = p.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise FileRejected(f"the spec reads both {part!r} and a field inside it")
        node.setdefault(parts[-1], None)

    def dtype(node: dict | None) -> pl.DataType:
        return pl.String() if node is None else pl.Struct({k: dtype(v) for k, v in node.items()})

    return {k: dtype(v) for k, v in tree.items()}


def _json_leaf(path: str) -> pl.Expr:
    parts = path.split(".")
    expr = pl.col(parts[0])
    for part in parts[1:]:
        expr = expr.struct.field(part)
    return expr
