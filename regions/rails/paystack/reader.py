"""Paystack webhook events (Nigeria), one JSON document per line as our webhook receiver appends them.

Mapping (the rail's vocabulary -> the contract). `charge.*` events are mapped by `data.status`, not by the event
name, because Paystack re-sends a transaction object whose status is the truth whatever the event is called:

| event      | data.status                           | event_type / status        | occurred_at from  | amount  |
|------------|---------------------------------------|----------------------------|-------------------|---------|
| `charge.*` | success                               | sale / success             | `data.paid_at`    | +amount |
| `charge.*` | failed, abandoned                     | sale / failed              | `data.created_at` | +amount |
| `charge.*` | pending, ongoing, processing, queued  | sale / pending             | `data.created_at` | +amount |
| `charge.*` | reversed                              | reversal / success         | `data.updated_at` | -amount |
| `refund.*` | processed; pending, processing; failed| refund / success; pending; failed | `data.created_at` | -amount |
| other      | (transfer.*, subscription.*, charge.dispute.*, ...) | ignored      |                   |         |

The time is the moment the event's status took effect: a charge is paid at `paid_at`; a failed or pending attempt
and a refund object happen at their `created_at`; a reversal changes an old transaction, so `updated_at`.

- transaction_id: the payment's `data.reference` (unique per transaction, chosen at checkout); refund events carry
  the refunded payment's reference as `data.transaction_reference`, so sale, status changes and refunds link up.
- amount and fees are in subunits (kobo), as an integer or a numeric string; anything else is null. Refund events
  carry no fee (fee 0). Paystack amounts are always positive: the sign comes from the event type.
- creator/product come from `data.metadata.kanda_ref`. `metadata` is read as JSON text, because Paystack sends it
  as an object, a JSON-encoded string, `""` or null depending on the integration; a typed struct would reject the
  whole file on the first `""`. `customer` is read the same way.
- buyer_ref: the customer email only (Paystack requires an email on every transaction, phones are mostly null), so
  one buyer has one reference across events.
- Other events (`transfer.*`, `subscription.*`, `charge.dispute.*`, ...) are not sales: dropped and counted in
  `ignored`. Disputes would be chargebacks but carry a different payload; they are not mapped yet.
- source_row: the 1-based position of the JSON document among the non-blank lines of the file (ignored events
  consume a number too, so numbers are unique and stable).
- Duplicate deliveries are identical lines and so map to identical rows; de-duplication happens downstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    finish,
    int_string,
    iter_ndjson_chunks,
    normalise_email,
    raw_record,
    reference_parts,
    rejection,
    require_columns,
    utc_from_iso,
    vocabulary,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

_S = pl.String()
_DATA_FIELDS = [
    "id",
    "status",
    "reference",
    "transaction_reference",
    "amount",
    "fees",
    "paid_at",
    "created_at",
    "updated_at",
    "channel",
    "currency",
    "gateway_response",
    "customer",
    "metadata",
]
#: Every leaf is read as a string: numbers arrive as numbers or strings, objects as JSON text.
SCHEMA: dict[str, pl.DataType] = {"event": _S, "data": pl.Struct({name: _S for name in _DATA_FIELDS})}
#: Flat columns kept in raw_record (named by their JSON path).
RAW_COLUMNS = ["event", *[f"data.{name}" for name in _DATA_FIELDS]]

_CHARGE_STATUS = {
    "success": ("sale", "success"),
    "failed": ("sale", "failed"),
    "abandoned": ("sale", "failed"),
    "pending": ("sale", "pending"),
    "ongoing": ("sale", "pending"),
    "processing": ("sale", "pending"),
    "queued": ("sale", "pending"),
    "reversed": ("reversal", "success"),
}
EXPECTS = Expects("Paystack webhook events, one JSON object per line", "ndjson", ("event", "data.amount"))
_REFUND_STATUS = {"processed": "success", "pending": "pending", "processing": "pending", "failed": "failed"}


class PaystackAdapter:
    format_name = "paystack_webhook"
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        position = 0
        for chunk in iter_ndjson_chunks(path, ctx.batch_rows, SCHEMA, expects=EXPECTS, region=ctx.region):
            if chunk.height == 0:
                continue
            flat = _flatten(chunk)
            if position == 0:
                _require_shape(flat, ctx)
            flat = flat.with_columns(source_row=pl.int_range(1, flat.height + 1, dtype=pl.Int64) + position)
            position += flat.height
            event = pl.col("event").str.strip_chars().str.to_lowercase()
            keep = event.str.starts_with("refund.") | (
                event.str.starts_with("charge.") & ~event.str.starts_with("charge.dispute.")
            )
            ignored = flat.height - flat.select(keep.sum()).item()
            frame = _map(flat.filter(keep), ctx)
            yield AdapterChunk(frame=finish(frame), ignored=ignored)
        if position == 0:
            raise rejection("empty_file", "the file holds no webhook events (only blank lines)", EXPECTS, ctx.region)


def _flatten(chunk: pl.DataFrame) -> pl.DataFrame:
    data = pl.col("data")
    return chunk.select(pl.col("event"), *[data.struct.field(name).alias(f"data.{name}") for name in _DATA_FIELDS])


def _require_shape(flat: pl.DataFrame, ctx: ReadContext) -> None:
    """A file of JSON lines without `event` and `data.amount` is not a Paystack webhook log."""
    present = [c for c in flat.columns if flat[c].null_count() < flat.height]
    require_columns(present, EXPECTS, ctx.region)


def _map(flat: pl.DataFrame, ctx: ReadContext) -> pl.DataFrame:
    event = pl.col("event").str.strip_chars().str.to_lowercase()
    is_refund = event.str.starts_with("refund.")
    status_raw = pl.col("data.status").str.strip_chars().str.to_lowercase()
    charge_kind, charge_status = vocabulary(status_raw, _CHARGE_STATUS)
    refund_status = status_raw.replace_strict(_REFUND_STATUS, default=None)
    event_type = pl.when(is_refund).then(pl.lit("refund")).otherwise(charge_kind)
    status = pl.when(is_refund).then(refund_status).otherwise(charge_status)
    time_text = (
        pl.when(is_refund)
        .then(pl.col("data.created_at"))
        .when(charge_kind == "reversal")
        .then(pl.col("data.updated_at"))
        .when(charge_status == "success")
        .then(pl.col("data.paid_at"))
        .otherwise(pl.col("data.created_at"))
    )
    amount = int_string(pl.col("data.amount"))
    fees = pl.col("data.fees")
    kanda_ref = pl.col("data.metadata").str.json_path_match("$.kanda_ref")
    creator, product = reference_parts(kanda_ref, ctx.region.reference_pattern)
    transaction_id = (
        pl.when(is_refund)
        .then(pl.coalesce(pl.col("data.transaction_reference"), pl.col("data.reference")))
        .otherwise(pl.col("data.reference"))
        .str.strip_chars()
    )
    mapped = flat.with_columns(event_type=event_type, status=status).select(
        pl.col("source_row"),
        pl.when(transaction_id != "").then(transaction_id).alias("transaction_id"),
        pl.col("event_type"),
        pl.col("status"),
        creator.alias("creator_id"),
        product.alias("product_id"),
        normalise_email(pl.col("data.customer").str.json_path_match("$.email")).alias("contact"),
        pl.col("data.channel").alias("channel"),
        pl.when(pl.col("event_type") == "sale").then(amount).otherwise(-amount).alias("amount_minor"),
        pl.when(fees.is_null() | (fees.str.strip_chars() == "")).then(0).otherwise(int_string(fees)).alias("fee_minor"),
        pl.col("data.currency").str.strip_chars().str.to_uppercase().alias("currency"),
        utc_from_iso(time_text).alias("occurred_at"),
        raw_record(RAW_COLUMNS),
    )
    return add_buyer_ref(mapped, "contact", ctx.salt)


ADAPTER = register(PaystackAdapter())
