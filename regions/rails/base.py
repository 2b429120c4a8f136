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


class FileRejected(Exception):
    """The file as a whole cannot be read; `reason` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AdapterChunk:
    frame: pl.DataFrame
    ignored: int = 0


@dataclass(frozen=True)
class ReadContext:
    """What an adapter needs besides the file: the region and the installation's buyer salt."""

    region: RegionConfig
    salt: str
    batch_rows: int = 500_000


class Adapter(Protocol):
    #: The `source_format` name used in region configs.
    format_name: str

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]: ...
