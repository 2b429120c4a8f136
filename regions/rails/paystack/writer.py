"""Paystack webhook log (NDJSON): one event document per line, as our webhook receiver appends deliveries.

Rendering (the inverse of `regions/rails/paystack/spec.yaml`): sales become `charge.success` / `charge.failed` /
`charge.pending` with `data.status` success / failed / pending, reversals `charge.reversed` with status reversed,
refunds `refund.processed` carrying the refunded payment's `transaction_reference` and the amount as a string, as
Paystack's refund payload does. Amounts and fees in kobo. Per-payment choices (reference, ids, channel, which dirt a
line gets) are derived from the payment number, so a duplicate delivery is byte-identical to the original.

Format dirt: amounts sometimes numeric strings, `metadata` sometimes a JSON-encoded string, extra metadata keys,
emails in upper case or with spaces, phones null or local form, and unrelated events (`transfer.success`,
`customeridentification.success`) interleaved; the adapter counts those as ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.synthetic.writers import register

_ISO = "%Y-%m-%dT%H:%M:%S%.3fZ"
_CHANNELS = ["card", "card", "bank", "ussd", "bank_transfer", "mobile_money"]
#: Share of lines that are unrelated events (payouts, KYC callbacks) inserted between the sales.
OTHER_EVENT_SHARE = 0.01


def _q(expr: pl.Expr) -> pl.Expr:
    """A JSON string literal, or `null`. Values here are generated and never contain quotes or backslashes."""
    return pl.when(expr.is_null()).then(pl.lit("null")).otherwise(pl.lit('"') + expr + pl.lit('"'))


def _obj(fields: list[tuple[str, pl.Expr]]) -> pl.Expr:
    parts: list[pl.Expr] = []
    for index, (name, value) in enumerate(fields):
        parts += [pl.lit(("{" if index == 0 else ",") + f'"{name}":'), value]
    return pl.concat_str([*parts, pl.lit("}")])


def _lines(chunk: pl.DataFrame, region: RegionConfig, salt: int) -> pl.DataFrame:
    h = ((pl.col("txn_no") + salt) * 2_654_435_761) % 1_000_003 % 1000
    event, status, corruption = pl.col("event_type"), pl.col("status"), pl.col("corruption")
    t = pl.col("occurred_at")
    sale_ok = (event == "sale") & (status == "success")
    reversal, refund = event == "reversal", event == "refund"
    paid = pl.when(sale_ok).then(t).when(reversal).then(t - pl.duration(hours=6))
    created = pl.when(sale_ok | reversal).then(paid - pl.duration(seconds=5 + h % 80)).otherwise(t).dt.strftime(_ISO)
    bad_time = pl.lit("31/02/2025 25:61")
    time_field = (
        pl.when(sale_ok).then(pl.lit("paid")).when(reversal).then(pl.lit("updated")).otherwise(pl.lit("created"))
    )
    damaged = corruption == "bad_time"

    def stamp(expr: pl.Expr, name: str) -> pl.Expr:
        return _q(pl.when(damaged & (time_field == name)).then(bad_time).otherwise(expr))

    amount = pl.col("amount_minor").abs().cast(pl.String)
    amount_text = (
        pl.when(corruption == "bad_amount")
        .then(pl.when(h % 2 == 0).then(pl.lit('"N/A"')).otherwise(pl.lit('"12,3O0"')))
        .when(refund | (h % 10 == 3))
        .then(pl.lit('"') + amount + pl.lit('"'))
        .otherwise(amount)
    )
    kanda_ref = (
        pl.when(corruption == "missing_reference")
        .then(pl.lit(""))
        .otherwise(pl.col("creator_id") + pl.lit(".") + pl.col("product_id"))
    )
    metadata = (
        pl.when(h % 10 == 7)
        .then(pl.lit('"{\\"kanda_ref\\":\\"') + kanda_ref + pl.lit('\\"}"'))
        .when(h % 10 == 8)
        .then(_obj([("kanda_ref", _q(kanda_ref)), ("custom_fields", pl.lit("[]"))]))
        .otherwise(_obj([("kanda_ref", _q(kanda_ref)), ("referrer", _q(pl.lit("https://kanda.example/checkout")))]))
    )
    email = (
        pl.when(h % 25 == 1)
        .then(pl.col("buyer_email").str.to_uppercase())
        .when(h % 25 == 2)
        .then(pl.lit(" ") + pl.col("buyer_email") + pl.lit(" "))
        .otherwise(pl.col("buyer_email"))
    )
    customer = _obj(
        [
            ("id", (pl.col("txn_no") % 50_000 + 100_000).cast(pl.String)),
            ("email", _q(email)),
            ("phone", _q(pl.when(h % 3 == 0).then(pl.col("buyer_phone")))),
        ]
    )
    reference = pl.lit("T") + pl.col("txn_no").cast(pl.String).str.zfill(12)
    channel = pl.lit(pl.Series(_CHANNELS)).get(pl.col("txn_no") % len(_CHANNELS))
    event_name = (
        pl.when(refund)
        .then(pl.lit("refund.processed"))
        .when(reversal)
        .then(pl.lit("charge.reversed"))
        .otherwise(pl.lit("charge.") + status)
    )
    data_status = pl.when(refund).then(pl.lit("processed")).when(reversal).then(pl.lit("reversed")).otherwise(status)
    gateway = status.replace_strict({"success": "Successful", "failed": "Declined", "pending": "Pending"}, default=None)
    charge = _obj(
        [
            ("id", (pl.col("txn_no") + 4_100_000_000).cast(pl.String)),
            ("domain", _q(pl.lit("live"))),
            ("status", _q(data_status)),
            ("reference", _q(reference)),
            ("amount", amount_text),
            ("gateway_response", _q(pl.when(reversal).then(pl.lit("Reversed")).otherwise(gateway))),
            ("paid_at", stamp(paid.dt.strftime(_ISO), "paid")),
            ("created_at", stamp(created, "created")),
            ("updated_at", stamp(pl.when(reversal).then(t.dt.strftime(_ISO)), "updated")),
            ("channel", _q(channel)),
            ("currency", _q(pl.lit(region.currency))),
            ("fees", pl.col("fee_minor").cast(pl.String)),
            ("customer", customer),
            ("metadata", metadata),
        ]
    )
    refund_data = _obj(
        [
            ("id", (pl.col("txn_no") + 9_000_000).cast(pl.String)),
            ("status", _q(data_status)),
            ("transaction_reference", _q(reference)),
            ("amount", amount_text),
            ("currency", _q(pl.lit(region.currency))),
            ("created_at", stamp(created, "created")),
            ("customer", customer),
            ("metadata", metadata),
        ]
    )
    data = pl.when(refund).then(refund_data).otherwise(charge)
    line = pl.concat_str([pl.lit('{"event":'), _q(event_name), pl.lit(',"data":'), data, pl.lit("}")])
    return chunk.select(line.alias("line"), pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64).alias("order"))


def _other_events(n_rows: int, rng: np.random.Generator, region: RegionConfig) -> pl.DataFrame:
    """Unrelated events a webhook endpoint also receives (payouts, KYC callbacks); the adapter ignores them."""
    count = int(rng.binomial(n_rows, OTHER_EVENT_SHARE))
    frame = pl.DataFrame(
        {
            "id": rng.integers(1_000_000, 9_999_999, count).astype(str),
            "kind": rng.integers(0, 2, count),
            "amount": rng.integers(10_000, 5_000_000, count).astype(str),
            "order": rng.integers(0, max(n_rows, 1), count) + 0.5,
        },
        schema={"id": pl.String, "kind": pl.Int64, "amount": pl.String, "order": pl.Float64},
    )
    i = pl.col("id")
    transfer = _obj(
        [
            ("id", i),
            ("amount", pl.col("amount")),
            ("currency", _q(pl.lit(region.currency))),
            ("reference", _q(pl.lit("payout_") + i)),
            ("status", _q(pl.lit("success"))),
        ]
    )
    kyc = _obj([("customer_id", _q(i)), ("customer_code", _q(pl.lit("CUS_") + i))])
    line = (
        pl.when(pl.col("kind") == 0)
        .then(pl.lit('{"event":"transfer.success","data":') + transfer + pl.lit("}"))
        .otherwise(pl.lit('{"event":"customeridentification.success","data":') + kyc + pl.lit("}"))
    )
    return frame.select(line.alias("line"), pl.col("order"))


@register("paystack_webhook", "ndjson")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    salt = int(rng.integers(0, 1_000_000))
    with path.open("wb") as handle:
        for chunk in chunks:
            lines = pl.concat([_lines(chunk, region, salt), _other_events(chunk.height, rng, region)])
            text = "\n".join(lines.sort("order", maintain_order=True)["line"].to_list())
            handle.write(text.encode() + b"\n")
