"""The spec engine's synthetic writer: truth chunks rendered in the format a rail spec describes.

It inverts the simple mappings (a field read from a column, a regex over a column, a lookup over a column, a
`case` on the event type choosing the amount or time column, a `concat` of columns for date and time) and adds the dirt
the spec says its reader copes with: a header spelling chosen per file from the aliases, title lines
(`writer.preamble`), trailing rows (`writer.trailer`, e.g. Totals), repeated page headers when an `is_header`
rule exists, disclaimer lines when `ragged: skip`, and each truth row's corruption in the column the reader
parses. A spec using transforms that cannot be inverted (split, JSON path, coalesce) gets a clear error here:
such a rail keeps a `writer.py` beside its spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.spec import model as m
from regions.spec.engine import DERIVED, DOLLAR_LABEL_CURRENCY

PAGE_ROWS = 250
DISCLAIMER = "This statement is issued for information only"
_BAD = {"amount": "12,3O0", "time": "N/A"}


class NotInvertible(ValueError):
    """The spec maps a field in a way the generic writer cannot render back."""


def _column_of(src: object, field: str) -> str:
    if isinstance(src, str) and src not in DERIVED:
        return src
    if isinstance(src, m.ColumnSource):
        return src.column
    if isinstance(src, m.RegexSource):
        return _column_of(src.regex.of, field)
    if isinstance(src, m.JsonSource) and re.fullmatch(r"\$\.\w+", src.json_.path):
        # one key of an object (Razorpay's `notes` `$.kanda_ref`): a dotted name, which an NDJSON document nests
        return f"{_column_of(src.json_.of, field)}.{src.json_.path[2:]}"
    if isinstance(src, m.CaseSource) and not (isinstance(src.case.of, str) and src.case.of in DERIVED):
        # a case on a column (Flutterwave's sale fee on `merchant_fee`, which older deliveries lack): rendered as a
        # file without that column reads, in its `missing` branch (else its default); the column is left out, so a
        # CSV rail must list it in `header.optional`
        branch = src.case.missing if src.case.missing is not None else src.case.default
        if branch is not None and not isinstance(branch, m.ValueSource):
            return _column_of(branch, field)
    raise NotInvertible(
        f"field {field!r}: the synthetic writer renders only columns (and regex/lookup over one, a JSON document's "
        "key, or a case on a column whose `missing` or default branch is one)"
    )


def major_text(minor: pl.Expr, exponent: int, decimal: str = ".") -> pl.Expr:
    """Minor units as a major-unit string ("12500.00", or "12500,00" with comma decimals); sign kept."""
    absolute = minor.cast(pl.Int64).abs()
    text = (absolute // (10**exponent)).cast(pl.String)
    if exponent:
        text = text + decimal + (absolute % (10**exponent)).cast(pl.String).str.pad_start(exponent, "0")
    return pl.when(minor < 0).then("-" + text).otherwise(text)


class _Renderer:
    def __init__(self, spec: m.RailSpec, region: RegionConfig, rng: np.random.Generator) -> None:
        self.spec, self.region = spec, region
        # One header spelling per file, among the aliases: header drift across a rail's exports. Not a `($)` one
        # outside a dollar region: the reader refuses that file as US dollars (`engine.check_currency`).
        readable = {
            canonical: [s for s in spellings if region.currency == DOLLAR_LABEL_CURRENCY or not s.endswith("($)")]
            for canonical, spellings in spec.header.aliases.items()
        }
        self.spelling = {
            canonical: spellings[int(rng.integers(0, len(spellings)))].replace("{currency}", region.currency)
            for canonical, spellings in readable.items()
            if spellings
        }
        self.columns: dict[str, pl.Expr] = {}
        self.partial: set[str] = set()

    def name(self, column: str) -> str:
        return self.spelling.get(column, column)

    def put(self, column: str, expr: pl.Expr) -> None:
        name = self.name(column)
        if name in self.partial:  # a column holding one field on some events only: another field fills the rest
            self.columns[name] = self.columns[name].fill_null(expr)
        else:
            self.columns.setdefault(name, expr)

    def money(self, minor: pl.Expr) -> pl.Expr:
        unit = self.spec.amount
        if unit.unit == "major":
            return major_text(minor, self.region.exponent, _decimal(self.spec))
        return (minor.cast(pl.Int64) * unit.scale_down).cast(pl.String)

    def signed(self, minor: pl.Expr) -> pl.Expr:
        # every sign rule but as_given reads money going back from a positive (or any-signed) text
        return minor if self.spec.amount.sign == "as_given" else minor.abs()

    def value(self, src: object, field: str, truth: pl.Expr) -> None:
        """Render `truth` into the column `src` reads (inverting a lookup table; for a `coalesce`, its first
        source, the spelling a current export uses, while the older ones are left out as such an export leaves them)."""
        if isinstance(src, m.ValueSource):
            return
        if isinstance(src, m.CaseSource) and src.case.of == "@event_type" and src.case.default is not None:
            # each event's own column (MTN: a sale's `referenceId`, a refund's `referenceIdToRefund`), empty on the
            # other events, where a later field may write its own value (a refund's `referenceId`)
            other = ~pl.col("event_type").is_in(list(src.case.when))
            branches = [(b, pl.col("event_type") == e) for e, b in src.case.when.items()]
            for branch, holds in [*branches, (src.case.default, other)]:
                if not isinstance(branch, m.ValueSource):
                    self.put(_column_of(branch, field), pl.when(holds).then(truth))
                    self.partial.add(self.name(_column_of(branch, field)))
            return
        if isinstance(src, m.CoalesceSource):
            self.value(src.coalesce[0], field, truth)
            return
        if isinstance(src, m.LookupSource):
            inverse: dict[str, str] = {}
            for word, result in src.lookup.table.items():
                if result is not None:
                    inverse.setdefault(result, word)
            word = truth.replace_strict(inverse, default=None, return_dtype=pl.String)
            of = src.lookup.of
            if isinstance(of, m.ConcatSource) and of.concat.separator:
                # a table keyed by several codes (VNPAY's "<response code>:<transaction status>"): each code goes
                # back into the column (or the lookup over a column) it was read from
                pieces = word.str.split(of.concat.separator)
                for index, part in enumerate(of.concat.parts):
                    self.value(part, field, pieces.list.get(index, null_on_oob=True))
                return
            self.put(_column_of(of, field), word)
            return
        self.put(_column_of(src, field), truth)

    def by_event_type(self, src: object, field: str, money: pl.Expr) -> bool:
        """Render money read by a `case` on `@event_type`: each event's column holds its own event's money and a
        zero on the other events' documents; False when `src` is not such a case.

        A fixed `value` branch (a refund's fee of "0") is the spec's own constant: nothing to write.
        """
        if not (isinstance(src, m.CaseSource) and src.case.of == "@event_type"):
            return False
        zero = self.money(pl.lit(0))
        branches = {**src.case.when}
        for event, branch in branches.items():
            if not isinstance(branch, m.ValueSource):
                self.put(_column_of(branch, field), pl.when(pl.col("event_type") == event).then(money).otherwise(zero))
        default = src.case.default
        if default is not None and not isinstance(default, m.ValueSource):
            other = ~pl.col("event_type").is_in(list(branches))
            self.put(_column_of(default, field), pl.when(other).then(money).otherwise(zero))
        return True

    def render(self, chunk: pl.DataFrame) -> pl.DataFrame:
        spec, region, f = self.spec, self.region, self.spec.fields
        self.columns, self.partial = {}, set()
        corrupt = pl.col("corruption")
        self.value(f.transaction_id, "transaction_id", pl.format("T{}{}", pl.lit(region.code), pl.col("txn_no")))
        if spec.vocabulary is not None:
            inverse: dict[str, str] = {}
            for word, (event, status) in spec.vocabulary.map.items():
                inverse.setdefault(f"{event}:{status}", word)
            key = pl.col("event_type") + ":" + pl.col("status")
            self.put(_column_of(spec.vocabulary.of, "vocabulary"), key.replace_strict(inverse, default="unknown"))
        if f.event_type is not None:
            self.value(f.event_type, "event_type", pl.col("event_type"))
        if f.status is not None:
            self.value(f.status, "status", pl.col("status"))
        amount = (
            pl.when(corrupt == "bad_amount")
            .then(pl.lit(_BAD["amount"]))
            .otherwise(self.money(self.signed(pl.col("amount_minor"))))
        )
        if not self.by_event_type(f.amount, "amount", amount):
            self.put(_column_of(f.amount, "amount"), amount)
        if f.fee is not None:
            fee = self.money(pl.col("fee_minor"))
            if not self.by_event_type(f.fee, "fee", fee):
                self.value(f.fee, "fee", fee)
        if f.charged is not None:  # the seller bears the fee in synthetic files: the buyer paid the amount
            self.value(f.charged, "charged", self.money(self.signed(pl.col("amount_minor"))))
        if f.net is not None:
            net = pl.col("amount_minor") - pl.col("fee_minor")
            self.value(f.net, "net", pl.when(corrupt == "bad_amount").then(pl.lit("")).otherwise(self.money(net)))
        if f.currency is not None:
            self.value(f.currency, "currency", pl.lit(region.currency))
        self._time(corrupt)
        reference = pl.format(
            spec.writer.reference_template.replace("{creator_id}", "{}").replace("{product_id}", "{}"),
            *[pl.col(k) for k in _placeholders(spec.writer.reference_template)],
        )
        if f.reference is not None:
            self.value(
                f.reference, "reference", pl.when(corrupt == "missing_reference").then(pl.lit("")).otherwise(reference)
            )
        if f.creator_id is not None:
            self.value(
                f.creator_id,
                "creator_id",
                pl.when(corrupt == "missing_reference").then(pl.lit("")).otherwise(pl.col("creator_id")),
            )
        if f.product_id is not None:
            self.value(f.product_id, "product_id", pl.col("product_id"))
        if f.buyer is not None:
            self.value(f.buyer.of, "buyer", pl.col("buyer_email" if f.buyer.kind == "email" else "buyer_phone"))
        if f.channel is not None:
            self.value(f.channel, "channel", pl.lit("card"))
        if f.event_ref is not None:  # one id per record: an exact redelivery repeats it
            record = pl.format("R{}-{}-{}", pl.col("txn_no"), pl.col("event_type"), pl.col("status"))
            self.value(f.event_ref, "event_ref", record)
        return chunk.select([expr.cast(pl.String).alias(name) for name, expr in self.columns.items()])

    def _time(self, corrupt: pl.Expr) -> None:
        t, f = self.spec.time, self.spec.fields
        fmt = t.formats[0]
        at = pl.col("occurred_at")
        if fmt == "iso":
            text = at.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f") + "Z"
        elif fmt in ("epoch_s", "epoch_ms"):
            text = (at.dt.epoch("s" if fmt == "epoch_s" else "ms")).cast(pl.String)
        else:
            local = at.dt.convert_time_zone(self.region.zone) if t.zone in ("local", "offset") else at
            text = local.dt.strftime(fmt)
        text = pl.when(corrupt == "bad_time").then(pl.lit(_BAD["time"])).otherwise(text)
        src = f.occurred_at
        if isinstance(src, m.CaseSource) and src.case.of == "@event_type":
            # a time read per event (Chapa: a sale's `created_at`, money going back's `updated_at`): the same time
            # in every branch's column, so each document states it where its own event's time is read
            branches = [*src.case.when.values(), *([src.case.default] if src.case.default is not None else [])]
            for branch in branches:
                self._put_time(branch, text)
            return
        self._put_time(src, text)

    def _put_time(self, src: object, text: pl.Expr) -> None:
        if isinstance(src, m.CoalesceSource):  # the first form a file can state the time in by itself (Gumroad's
            # whole time is a regex over one column, the date and time of day a concatenation of two)
            plain = (str, m.ColumnSource, m.ConcatSource)
            src = next((s for s in src.coalesce if isinstance(s, plain)), src.coalesce[0])
        if isinstance(src, m.ConcatSource) and src.concat.separator:
            parts = text.str.split(src.concat.separator)
            for index, part in enumerate(src.concat.parts):
                piece = parts.list.get(index, null_on_oob=True).fill_null("")
                self.put(_column_of(part, "occurred_at"), piece)
            return
        self.put(_column_of(src, "occurred_at"), text)


def _delimiter(spec: m.RailSpec) -> str:
    """The rail's own separator: the declared one (the first of a list), else by the decimal mark."""
    if isinstance(spec.delimiter, list):
        return spec.delimiter[0]
    if spec.delimiter != "auto":
        return spec.delimiter
    return ";" if spec.amount.decimal == "," else ","


def _decimal(spec: m.RailSpec) -> str:
    if spec.amount.decimal != "auto":
        return spec.amount.decimal
    return "," if spec.format == "csv" and _delimiter(spec) == ";" else "."


def _placeholders(template: str) -> list[str]:
    import re

    return re.findall(r"\{(creator_id|product_id)\}", template)


def write_spec(
    spec: m.RailSpec, path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator
) -> None:
    renderer = _Renderer(spec, region, rng)
    if spec.format == "ndjson":
        _write_ndjson(renderer, path, chunks)
    elif spec.format == "xlsx":
        _write_xlsx(renderer, path, chunks)
    else:
        _write_csv(renderer, path, chunks, rng)


def _write_csv(renderer: _Renderer, path: Path, chunks: Iterator[pl.DataFrame], rng: np.random.Generator) -> None:
    spec = renderer.spec
    delimiter = _delimiter(spec)
    page_headers = any(rule.is_header for rule in spec.ignore)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if rng.random() < 0.5:
            handle.write("\ufeff")
        for line in spec.writer.preamble:
            handle.write(line + "\n")
        header: list[str] | None = None
        for chunk in chunks:
            frame = renderer.render(chunk)
            if header is None:
                header = frame.columns
                handle.write(pl.DataFrame(schema=header).write_csv(separator=delimiter))
            if not (page_headers or spec.ragged == "skip"):
                frame.write_csv(handle, separator=delimiter, include_header=False)
                continue
            for start in range(0, frame.height, PAGE_ROWS):
                frame.slice(start, PAGE_ROWS).write_csv(handle, separator=delimiter, include_header=False)
                if spec.ragged == "skip":
                    handle.write(DISCLAIMER + "\n")
                if page_headers:
                    handle.write(pl.DataFrame(schema=header).write_csv(separator=delimiter))
        if header is not None:
            for row in spec.writer.trailer:
                cells = (row + [""] * len(header))[: len(header)]
                handle.write(
                    pl.DataFrame([cells], schema=header, orient="row").write_csv(
                        separator=delimiter, include_header=False
                    )
                )


def _write_ndjson(renderer: _Renderer, path: Path, chunks: Iterator[pl.DataFrame]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            frame = renderer.render(chunk)
            for record in frame.iter_rows(named=True):  # synthetic data only, never on an ingest path
                doc: dict = {}
                for key, value in record.items():
                    node = doc
                    *parents, leaf = key.split(".")
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[leaf] = value
                handle.write(json.dumps(doc) + "\n")


def _write_xlsx(renderer: _Renderer, path: Path, chunks: Iterator[pl.DataFrame]) -> None:
    import xlsxwriter

    spec = renderer.spec
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Transactions")
    row = 0
    for line in spec.writer.preamble:
        sheet.write_string(row, 0, line)
        row += 1
    header: list[str] | None = None
    for chunk in chunks:
        frame = renderer.render(chunk)
        if header is None:
            header = frame.columns
            for col, name in enumerate(header):
                sheet.write_string(row, col, name)
            row += 1
        for values in frame.iter_rows():  # synthetic data only; XLSX is a small-file format
            for col, value in enumerate(values):
                sheet.write_string(row, col, "" if value is None else value)
            row += 1
    for cells in spec.writer.trailer:
        for col, value in enumerate(cells):
            sheet.write_string(row, col, value)
        row += 1
    book.close()
