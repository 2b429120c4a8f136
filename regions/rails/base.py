"""What every regional adapter promises.

An adapter turns one native file into chunks of rows in the adapter shape (`ADAPTER_SCHEMA` plus a `raw_record`
struct holding the row as it arrived). Unparseable values become nulls, never exceptions: the contract then
quarantines the row with the raw record beside it. A file that cannot be read at all raises `FileRejected` with a
sentence a person can act on. Rows that are structure rather than data (a Totals line, repeated page headers,
disclaimers, payouts on a statement) are counted in `ignored`, so the ledger still accounts for every line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

from regions import RegionConfig

#: Columns (and dtypes) an adapter chunk carries besides `raw_record`. `net_minor` is optional: adapters whose
#: source states a net amount supply it, and the contract then checks it; otherwise it is amount - fee.
ADAPTER_SCHEMA: dict[str, pl.DataType] = {
    "source_row": pl.Int64(),
    "transaction_id": pl.String(),
    "event_type": pl.String(),
    "status": pl.String(),
    "creator_id": pl.String(),
    "product_id": pl.String(),
    "buyer_ref": pl.String(),
    "channel": pl.String(),
    "amount_minor": pl.Int64(),
    "fee_minor": pl.Int64(),
    "currency": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
}


#: Why a whole file was refused, as a stable machine-readable class (stored in `rejected_files.kind`, shown by the
#: CLI and the API). The words a person reads are in `FileRejected.reason`; these names never change meaning.
REJECT_KINDS: dict[str, str] = {
    "not_found": "the file is missing",
    "not_a_regular_file": "a symbolic link, pipe, socket or device in a landing folder: not followed, not read",
    "unreadable": "the file cannot be opened (permissions, I/O error)",
    "empty_file": "zero bytes, or nothing but blank lines: no header either (a failed download)",
    "binary_zip": "a ZIP archive (an Excel workbook, a Word document or zipped files) where text is expected",
    "binary_pdf": "a PDF document where a data export is expected",
    "binary_other": "other binary content (gzip, NUL bytes, an image, an old Office file)",
    "wrong_encoding": "text in UTF-16 or UTF-32, or UTF-8 mixed with another encoding; the rails expect UTF-8 (or"
    " Windows-1252 for CSV)",
    "not_csv": "text, but not CSV: JSON, HTML or XML given to a CSV rail",
    "not_json": "not JSON lines: CSV, HTML, a JSON array or a corrupt line given to a JSON-lines rail",
    "not_a_spreadsheet": "not an Excel (.xlsx) workbook although the rail expects one",
    "corrupt_spreadsheet": "an .xlsx workbook whose parts cannot be read (damaged file)",
    "wrong_delimiter": "a CSV separated by another character than the rail's",
    "wrong_columns": "the header (or the JSON fields) lacks columns the rail requires: another rail's file",
    "wrong_currency": "the file states amounts in another currency than the region's: another region's file",
    "wrong_date_order": "dates written month first (a spreadsheet's US locale) where the rail writes them day first",
    "malformed": "a line does not fit the file's structure (wrong field count, unclosed quote)",
    "truncated": "the file ends in the middle of a record (an interrupted download or copy)",
    "too_large": "larger than the rail can read safely",
}


class FileRejected(Exception):
    """The file as a whole cannot be read: `kind` names the class (a key of `REJECT_KINDS`) and `reason` says why
    in plain words a person can act on.

    A reason never quotes the file's content: a misrouted file can be anything (a symlink to a system file once put
    its first line into a reason), and reasons are shown in places the file's readers are not (the CLI, e-mails,
    Dagster). It describes what the file looks like and what the region expects instead.
    """

    def __init__(self, reason: str, kind: str = "unreadable") -> None:
        if kind not in REJECT_KINDS:
            raise ValueError(f"unknown rejection kind {kind!r}; known: {sorted(REJECT_KINDS)}")
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Expects:
    """What a rail's files look like, in the words a rejection uses to say what the region expects.

    `container` is how the file is read ("csv", "ndjson" or "xlsx"); `columns` are the required header names as
    they appear in the rail's own exports (or the JSON fields), not the adapter's internal names.
    """

    what: str
    container: str
    columns: tuple[str, ...]
    delimiter: str = ","
    #: Largest file the rail reads safely; None: streamed, any size. (A workbook is read whole, sheet by sheet.)
    max_bytes: int | None = None

    def columns_in(self, region: RegionConfig) -> tuple[str, ...]:
        """The columns as the region's files print them: a rail spec's `{currency}` is the region's currency."""
        return tuple(column.replace("{currency}", region.currency) for column in self.columns)


@dataclass
class AdapterChunk:
    frame: pl.DataFrame
    ignored: int = 0


#: Rows per chunk when a file is streamed. Mapping a chunk holds several intermediate columns per source column at
#: once, so peak memory follows the chunk size (about 1.6 GB at 500,000 Stripe rows, 0.7 GB at 100,000) while
#: throughput does not (per-chunk overhead is small next to 100,000 rows of work): see docs/benchmarks.md.
DEFAULT_BATCH_ROWS = 100_000


#: An adapter's optional output column: the rail's own id of each refund record, which tells a payment's refunds
#: apart better than their times (`quality.contract.event_ref_expr`).
RAIL_REF = "_rail_ref"


@dataclass(frozen=True)
class ReadContext:
    """What an adapter needs besides the file: the region and the installation's buyer salt."""

    region: RegionConfig
    salt: str
    batch_rows: int = DEFAULT_BATCH_ROWS


class Adapter(Protocol):
    #: The `source_format` name used in region configs.
    format_name: str
    #: What its files look like, for rejection reasons.
    expects: Expects
    #: Whether its files state the rail's fee. Where they do not (the rail charges separately, or settles net),
    #: events carry fee 0 and net equals the amount: the figures are before the rail's charges, and reports and
    #: `kanda regions list` say so rather than show a fee of 0 as if nothing was charged.
    states_fees: bool
    #: Whether its files restate each payment's money going back as a running total (a charge exported again with
    #: a larger `Amount Refunded`) rather than one record per refund: a batch then loads only what the total adds
    #: to what the store holds (`kanda.regional.batch`).
    running_totals: bool

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]: ...
