"""MTN MoMo merchant portal export (Ghana), XLSX: one row per collection, refund or other account movement.

Columns (matched by a normalised name, so `External Id`, `externalId` and `External ID` are one column):
`Date` (local time, the region's zone; an Excel date cell or text `YYYY-MM-DD HH:MM:SS` / `DD/MM/YYYY HH:MM:SS`),
`Transaction Id` (MoMo's financialTransactionId), `Type`, `Status`, `Reason`, `Amount` and `Fee` (major units as text,
`"1000"` or `"1,000.50"`, or number cells), `Currency`, `External Id` (the checkout reference
`<creator>.<product>.<nonce>`), `Payer Party Id` (the payer's MSISDN) and `Reference Transaction Id` (for refunds
and reversals: the payment they undo).

| Type      | Status SUCCESSFUL / PENDING / FAILED (REJECTED, TIMEOUT) | amount   | transaction_id           |
|-----------|----------------------------------------------------------|----------|--------------------------|
| PAYMENT   | sale / success, pending, failed                           | +Amount  | Transaction Id           |
| REFUND    | refund / same                                             | -|Amount|| Reference Transaction Id |
| REVERSAL  | reversal / same                                           | -|Amount|| Reference Transaction Id |
| other     | ignored (transfers, cash-outs, the Totals row)            |          |                          |

XLSX cannot be streamed, but a sheet holds at most 1,048,576 rows, so memory is bounded by the format: each sheet
is read whole (calamine, every cell as text so no type is guessed) and yielded in chunks of `batch_rows`. Every
sheet is read, because the portal (and our writer) continues past the row cap on a further sheet with its own
header. XLSX is a small-file rail: large volumes belong in CSV or NDJSON formats.

source_row: the 1-based number of the data row across the workbook in sheet order, not counting each sheet's
header row (the Totals row and ignored rows consume numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import fastexcel
import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    finish,
    major_to_minor,
    normalise_phone,
    raw_record,
    reference_parts,
    rejection,
    require_columns,
    utc_from_local,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, FileRejected, ReadContext

#: Normalised header (lower case, letters and digits only) -> canonical column.
ALIASES = {
    "date": "date",
    "transactiondate": "date",
    "transactionid": "txn",
    "financialtransactionid": "txn",
    "type": "type",
    "transactiontype": "type",
    "status": "status",
    "reason": "reason",
    "amount": "amount",
    "fee": "fee",
    "currency": "currency",
    "externalid": "external_id",
    "payerpartyid": "payer",
    "partyid": "payer",
    "payer": "payer",
    "referencetransactionid": "ref_txn",
    "originaltransactionid": "ref_txn",
}
REQUIRED = ["date", "txn", "type", "status", "amount", "external_id", "payer", "ref_txn"]
#: The required columns as the portal's export names them, in the order of REQUIRED.
EXPECTS = Expects(
    "an MTN MoMo merchant portal export (.xlsx workbook)",
    "xlsx",
    (
        "Date",
        "Transaction Id",
        "Type",
        "Status",
        "Amount",
        "External Id",
        "Payer Party Id",
        "Reference Transaction Id",
    ),
    # sheets are read whole into memory; volumes beyond this belong in a streamed (CSV or JSON lines) rail
    max_bytes=512 << 20,
)
_TYPES = {"payment": "sale", "refund": "refund", "reversal": "reversal"}
_STATUS = {
    "successful": "success",
    "pending": "pending",
    "failed": "failed",
    "rejected": "failed",
    "timeout": "failed",
}
_TIME_FORMATS = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"]


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class MomoExportAdapter:
    format_name = "momo_export"
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        try:
            sheets = fastexcel.read_excel(str(path)).sheet_names
        except Exception as exc:  # fastexcel's errors are multi-line internals: say what it means instead
            raise _damaged("the workbook's parts cannot be read", ctx) from exc
        position, headers = 0, 0
        for number, sheet in enumerate(sheets, start=1):
            table = _read_sheet(path, sheet, number, ctx)
            if table.width == 0:
                continue
            headers += 1
            canonical = {name: ALIASES.get(_normalise(name), name) for name in table.columns}
            try:
                found = [n for n in table.columns if not n.startswith("__UNNAMED__")]
                require_columns(list(canonical.values()), EXPECTS, ctx.region, required=REQUIRED, found=found)
            except FileRejected as exc:  # sheet names are content: say which sheet by its position
                raise FileRejected(f"sheet {number}: {exc.reason}", exc.kind) from None
            table = table.with_columns(source_row=pl.int_range(1, table.height + 1, dtype=pl.Int64) + position)
            position += table.height
            for start in range(0, table.height, ctx.batch_rows):
                rows = table.slice(start, ctx.batch_rows)
                frame, ignored = _map(rows, canonical, ctx)
                yield AdapterChunk(frame=finish(frame), ignored=ignored)
        if not headers:
            problem = "the workbook is empty (no sheet has a header row)"
            raise rejection("empty_file", problem, EXPECTS, ctx.region)
        # A header without rows is an empty export (a quiet day), loaded as 0 rows like a header-only CSV.


def _damaged(problem: str, ctx: ReadContext) -> FileRejected:
    return rejection("corrupt_spreadsheet", f"{problem} (a damaged or partly written file?)", EXPECTS, ctx.region)


def _read_sheet(path: Path, sheet: str, number: int, ctx: ReadContext) -> pl.DataFrame:
    try:
        # an empty sheet is width 0 (skipped), not an error: a blank workbook is then rejected as empty
        return pl.read_excel(path, engine="calamine", sheet_name=sheet, infer_schema_length=0, raise_if_empty=False)
    except Exception as exc:
        raise _damaged(f"sheet {number} cannot be read", ctx) from exc


def _map(rows: pl.DataFrame, canonical: dict[str, str], ctx: ReadContext) -> tuple[pl.DataFrame, int]:
    c = {canon: pl.col(name).str.strip_chars() for name, canon in canonical.items()}
    kind = c["type"].str.to_lowercase().replace_strict(_TYPES, default=None)
    kept = rows.filter(kind.is_not_null())
    status = c["status"].str.to_lowercase().replace_strict(_STATUS, default=None)
    # Refunds and reversals may be printed negative, so their size is taken; a payment keeps its sign, so a
    # negative one is quarantined as a negative sale rather than booked as money received.
    amount = major_to_minor(c["amount"], ctx.region.exponent)
    fee_text = c["fee"] if "fee" in c else pl.lit(None, pl.String)
    fee = (
        pl.when(fee_text.is_null() | (fee_text == "")).then(0).otherwise(major_to_minor(fee_text, ctx.region.exponent))
    )
    creator, product = reference_parts(c["external_id"], ctx.region.reference_pattern)
    times = [utc_from_local(c["date"], fmt, ctx.region.zone) for fmt in _TIME_FORMATS]
    currency = c["currency"].str.to_uppercase() if "currency" in c else pl.lit(ctx.region.currency)
    mapped = kept.with_columns(event_type=kind).select(
        pl.col("source_row"),
        pl.when(pl.col("event_type") == "sale").then(c["txn"]).otherwise(c["ref_txn"]).alias("transaction_id"),
        pl.col("event_type"),
        status.alias("status"),
        creator.alias("creator_id"),
        product.alias("product_id"),
        normalise_phone(c["payer"], ctx.region.calling_code).alias("contact"),
        pl.lit("mtn_momo").alias("channel"),
        pl.when(pl.col("event_type") == "sale").then(amount).otherwise(-amount.abs()).alias("amount_minor"),
        fee.alias("fee_minor"),
        currency.alias("currency"),
        pl.coalesce(times).alias("occurred_at"),
        raw_record(list(canonical)),
    )
    return add_buyer_ref(mapped, "contact", ctx.salt), rows.height - kept.height


def _nonempty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


ADAPTER = register(MomoExportAdapter())
