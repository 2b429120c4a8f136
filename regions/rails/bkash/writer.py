"""Render truth as bKash tokenized-checkout execute responses (`bkash_execute`), one JSON object per line.

Dirt added: amounts as bKash sends them ("500.00") and as human-fixed records carry them (thousands-grouped
"5,000.00", Bengali digits "৫০০০.০০"), MSISDNs as `017...`, `88017...` or masked `017****5678`, a
`paymentExecuteTime` in bKash's own `...:000 GMT+0600` form, one error body per chunk (not a payment: counted as
ignored by the adapter), and per-row corruption. Refund/reversal records follow `regions/rails/bkash/spec.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.rails.gumroad.writer import major_text
from regions.synthetic.writers import register

_BENGALI = [chr(0x09E6 + i) for i in range(10)]
_STATUS = {"success": "Completed", "pending": "Initiated", "failed": "Failed"}
_MONEY_BACK = {"refund": "Refunded", "reversal": "Reversed"}


@register("bkash_execute", "jsonl")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for truth in chunks:
            n = truth.height
            error = {"statusCode": "2056", "statusMessage": "Invalid Payment State"}
            handle.write(json.dumps(error) + "\n")
            frame = truth.with_columns(
                _amount_shape=pl.Series(rng.integers(0, 20, n)),
                _phone_shape=pl.Series(rng.integers(0, 10, n)),
            )
            _render(frame, region).write_ndjson(handle)


def _render(frame: pl.DataFrame, region: RegionConfig) -> pl.DataFrame:
    corrupt = pl.col("corruption")
    sale = pl.col("event_type") == "sale"
    exp = region.exponent
    shape = pl.col("_amount_shape")
    plain = major_text(pl.col("amount_minor").abs(), exp)
    amount = (
        pl.when(corrupt == "bad_amount")
        .then(pl.lit("N/A"))
        .when(shape < 3)
        .then(major_text(pl.col("amount_minor").abs(), exp, grouped=True))
        .when(shape == 3)
        .then(plain.str.replace_many([str(d) for d in range(10)], _BENGALI))
        .otherwise(plain)
    )
    state = (
        pl.when(sale)
        .then(pl.col("status").replace_strict(_STATUS, return_dtype=pl.String))
        .otherwise(pl.col("event_type").replace_strict(_MONEY_BACK, default="", return_dtype=pl.String))
    )
    completed_once = (pl.col("status") != "pending") & (pl.col("status") != "failed")
    trx = pl.when(completed_once).then(pl.format("BK{}", pl.col("txn_no") * 7919 + 10**8))
    local = pl.col("buyer_phone").str.slice(2)
    msisdn = (
        pl.when(pl.col("_phone_shape") < 7)
        .then("017" + local)
        .when(pl.col("_phone_shape") < 9)
        .then("88017" + local)
        .otherwise("017****" + local.str.slice(4))
    )
    stamp = pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.strftime("%Y-%m-%dT%H:%M:%S:%3f GMT+0600")
    return frame.select(
        pl.format("TR0011K{}", pl.col("txn_no") + 1_565_154_750_000).alias("paymentID"),
        trx.alias("trxID"),
        state.alias("transactionStatus"),
        amount.alias("amount"),
        pl.lit(region.currency).alias("currency"),
        pl.lit("sale").alias("intent"),
        pl.when(corrupt == "missing_reference")
        .then(pl.lit(""))
        .otherwise(pl.format("{}.{}.{}", "creator_id", "product_id", pl.col("txn_no") % 99_991))
        .alias("merchantInvoiceNumber"),
        pl.when(corrupt == "bad_time")
        .then(pl.lit("2024-13-45T25:61:00:000 GMT+0600"))
        .otherwise(stamp)
        .alias("paymentExecuteTime"),
        msisdn.alias("customerMsisdn"),
        pl.lit("kanda").alias("payerReference"),
        pl.when(pl.col("status") == "failed").then(pl.lit("2023")).otherwise(pl.lit("0000")).alias("statusCode"),
        pl.when(pl.col("status") == "failed")
        .then(pl.lit("Insufficient Balance"))
        .otherwise(pl.lit("Successful"))
        .alias("statusMessage"),
        pl.when(~sale).then(trx).alias("originalTrxID"),
        pl.when(~sale).then(pl.format("RF{}", pl.col("txn_no") * 7919 + 10**8)).alias("refundTrxID"),
    )
