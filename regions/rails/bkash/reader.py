"""bKash tokenized-checkout execute responses (`bkash_execute`, Bangladesh), one JSON object per line.

Fields: `paymentID` (the transaction id: it exists from create on, before bKash assigns a `trxID`), `trxID`,
`transactionStatus`, `amount` (major units as a string: "500.00", lakh-grouped "1,00,000.00" or Bengali digits
"৫০০.০০" in human-fixed records), `currency`, `intent`, `merchantInvoiceNumber` ("<creator>.<product>.<nonce>"),
`paymentExecuteTime` ("2024-01-01T12:05:00:000 GMT+0600": a colon before the milliseconds and a GMT offset; a plain
ISO 8601 time is accepted too), `customerMsisdn` ("017...").

Vocabulary (`transactionStatus`; refunds and reversals are our design, logged by the refund handler in the same
file): "Completed" -> sale/success; "Initiated", "Authorized" -> sale/pending; "Failed", "Cancelled", "Expired",
"Declined" -> sale/failed; "Refunded" -> refund/success and "Reversed" -> reversal/success, where the record keeps
the original `paymentID` and `trxID` (`originalTrxID`), adds the refund's own `refundTrxID`, and `amount` is the
positive amount returned (negated here) with `paymentExecuteTime` the time of the refund. Any other status gives a
null status (quarantined). The response carries no fee, so `fee_minor` is 0.

`source_row` is the 1-based number of the record among the file's non-blank lines. Error bodies without a
`paymentID` (e.g. `{"statusCode":"2056","statusMessage":"Invalid Payment State"}`) are not payments: they are
dropped and counted in `ignored`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    finish,
    iter_ndjson_chunks,
    major_to_minor,
    normalise_phone,
    raw_record,
    reference_parts,
    rejection,
    utc_from_iso,
    vocabulary,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

FORMAT = "bkash_execute"
FIELDS = [
    "paymentID",
    "trxID",
    "transactionStatus",
    "amount",
    "currency",
    "intent",
    "merchantInvoiceNumber",
    "paymentExecuteTime",
    "customerMsisdn",
    "payerReference",
    "statusCode",
    "statusMessage",
    "originalTrxID",
    "refundTrxID",
]
SCHEMA: dict[str, pl.DataType] = {name: pl.String() for name in FIELDS}
EXPECTS = Expects(
    "bKash execute responses, one JSON object per line",
    "ndjson",
    ("paymentID", "transactionStatus", "amount", "currency", "merchantInvoiceNumber", "paymentExecuteTime"),
)
#: transactionStatus -> (event_type, status)
VOCABULARY: dict[str, tuple[str, str]] = {
    "completed": ("sale", "success"),
    "initiated": ("sale", "pending"),
    "authorized": ("sale", "pending"),
    "failed": ("sale", "failed"),
    "cancelled": ("sale", "failed"),
    "expired": ("sale", "failed"),
    "declined": ("sale", "failed"),
    "refunded": ("refund", "success"),
    "reversed": ("reversal", "success"),
}
_BKASH_TIME = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}):(\d{1,6})\s*GMT([+-]\d{2}):?(\d{2})$"


def bkash_time_to_utc(expr: pl.Expr) -> pl.Expr:
    """ "2024-01-01T12:05:00:000 GMT+0600" -> 2024-01-01 06:05:00 UTC; ISO 8601 passes through; else null."""
    text = expr.str.strip_chars()
    iso = text.str.replace(_BKASH_TIME, "${1}.${2}${3}:${4}")
    return utc_from_iso(iso)


class BkashAdapter:
    format_name = FORMAT
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        offset = 0
        for chunk in iter_ndjson_chunks(path, ctx.batch_rows, SCHEMA, expects=EXPECTS, region=ctx.region):
            frame = chunk.with_row_index("source_row", offset=offset + 1).with_columns(
                pl.col("source_row").cast(pl.Int64)
            )
            data = frame.filter(pl.col("paymentID").str.strip_chars().replace("", None).is_not_null())
            if offset == 0 and chunk.height > 0 and data.filter(pl.col("transactionStatus").is_not_null()).is_empty():
                problem = (
                    "not a bKash execute-response file: no record in the first block has paymentID and "
                    "transactionStatus (is this another rail's feed?)"
                )
                raise rejection("wrong_columns", problem, EXPECTS, ctx.region)
            offset += chunk.height
            yield AdapterChunk(frame=self._map(data, ctx), ignored=frame.height - data.height)

    @staticmethod
    def _map(frame: pl.DataFrame, ctx: ReadContext) -> pl.DataFrame:
        state = pl.col("transactionStatus").str.strip_chars().str.to_lowercase()
        event_type, status = vocabulary(state, VOCABULARY, default_event="sale")
        major = major_to_minor(pl.col("amount"), ctx.region.exponent)
        creator, product = reference_parts(
            pl.col("merchantInvoiceNumber").str.strip_chars(), ctx.region.reference_pattern
        )
        mapped = frame.with_columns(
            transaction_id=pl.col("paymentID").str.strip_chars(),
            event_type=event_type,
            status=status,
            creator_id=creator,
            product_id=product,
            channel=pl.lit("bkash"),
            amount_minor=pl.when(event_type == "sale").then(major).otherwise(-major.abs()),
            fee_minor=pl.lit(0, pl.Int64),
            currency=pl.col("currency").str.strip_chars().str.to_uppercase(),
            occurred_at=bkash_time_to_utc(pl.col("paymentExecuteTime")),
            _contact=normalise_phone(pl.col("customerMsisdn"), ctx.region.calling_code),
            raw_record=raw_record(FIELDS),
        )
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


ADAPTER = register(BkashAdapter())
