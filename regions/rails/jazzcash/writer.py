"""Render truth as JazzCash IPN records (`jazzcash_ipn`), one JSON object per line.

Dirt added: buyer phones in every shape seen in the wild (`0301...`, `+92 301...`, `92301...`, masked
`0301****567`), both IPN success codes ("121", "000"), several failure and pending codes, a listener health-ping
line per chunk (not a payment: the adapter counts it as ignored), and per-row corruption (an unparseable
`pp_Amount`, an impossible `pp_TxnDateTime`, an empty `pp_BillReference`). The vocabulary for refunds and
pending codes is described in `regions/rails/jazzcash/spec.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from regions import RegionConfig
from regions.synthetic.writers import register

_TYPES = {"refund": "REFUND", "reversal": "REVERSAL"}
_FAILURES = [
    ("199", "Transaction declined by the issuer."),
    ("999", "Transaction failed."),
    ("110", "Insufficient balance in the wallet."),
]


@register("jazzcash_ipn", "jsonl")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for index, truth in enumerate(chunks):
            n = truth.height
            ping = {"event": "listener_health", "ok": True, "chunk": index}
            handle.write(json.dumps(ping) + "\n")
            frame = truth.with_columns(
                _channel=pl.Series(rng.integers(0, 10, n)),
                _phone_shape=pl.Series(rng.integers(0, 10, n)),
                _fail=pl.Series(rng.integers(0, len(_FAILURES), n)),
            )
            _render(frame, region).write_ndjson(handle)


def _render(frame: pl.DataFrame, region: RegionConfig) -> pl.DataFrame:
    corrupt = pl.col("corruption")
    sale = pl.col("event_type") == "sale"
    otc = pl.col("_channel") == 9
    txn_type = (
        pl.when(~sale)
        .then(pl.col("event_type").replace_strict(_TYPES, default="", return_dtype=pl.String))
        .when(pl.col("_channel") < 7)
        .then(pl.lit("MWALLET"))
        .when(~otc)
        .then(pl.lit("MPAY"))
        .otherwise(pl.lit("OTC"))
    )
    status = pl.col("status")
    fail_code = pl.col("_fail").replace_strict({i: c for i, (c, _) in enumerate(_FAILURES)}, return_dtype=pl.String)
    fail_text = pl.col("_fail").replace_strict({i: m for i, (_, m) in enumerate(_FAILURES)}, return_dtype=pl.String)
    code = (
        pl.when(status == "failed")
        .then(fail_code)
        .when(status == "pending")
        .then(pl.when(otc).then(pl.lit("124")).otherwise(pl.lit("157")))
        .when(pl.col("txn_no") % 4 == 0)
        .then(pl.lit("000"))
        .otherwise(pl.lit("121"))
    )
    message = (
        pl.when(status == "failed")
        .then(fail_text)
        .when(status == "pending")
        .then(pl.lit("Transaction is pending."))
        .otherwise(pl.lit("Thank you for Using JazzCash, your transaction was successful."))
    )
    local = pl.col("buyer_phone").str.slice(2)  # 8 digits
    phone = (
        pl.when(pl.col("_phone_shape") < 6)
        .then("030" + local)
        .when(pl.col("_phone_shape") == 6)
        .then("+92 30" + local)
        .when(pl.col("_phone_shape") == 7)
        .then("9230" + local)
        .otherwise("030" + local.str.slice(0, 2) + "****" + local.str.slice(5))
    )
    rendered = frame.select(
        pl.lit("1.1").alias("pp_Version"),
        txn_type.alias("pp_TxnType"),
        pl.format("T{}", pl.col("txn_no") + 20240000000000).alias("pp_TxnRefNo"),
        pl.when(corrupt == "bad_amount")
        .then(pl.lit("12,3O0"))
        .otherwise(pl.col("amount_minor").abs().cast(pl.String))
        .alias("pp_Amount"),
        pl.lit(region.currency).alias("pp_TxnCurrency"),
        pl.when(corrupt == "bad_time")
        .then(pl.lit("20241345256100"))
        .otherwise(pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.strftime("%Y%m%d%H%M%S"))
        .alias("pp_TxnDateTime"),
        pl.when(corrupt == "missing_reference")
        .then(pl.lit(""))
        .otherwise(pl.format("{}.{}", "creator_id", "product_id"))
        .alias("pp_BillReference"),
        pl.format("Kanda order {}", "txn_no").alias("pp_Description"),
        code.alias("pp_ResponseCode"),
        message.alias("pp_ResponseMessage"),
        (pl.col("txn_no") * 7919 % 1_000_000_000_000)
        .cast(pl.String)
        .str.pad_start(12, "0")
        .alias("pp_RetreivalReferenceNo"),
        phone.alias("ppmpf_1"),
        pl.lit("").alias("ppmpf_2"),
        pl.lit("").alias("ppmpf_3"),
        pl.lit("").alias("ppmpf_4"),
        pl.lit("").alias("ppmpf_5"),
    )
    # A plausible secure hash: SHA-256 over the sorted field values (JazzCash uses HMAC-SHA256 with the merchant's
    # integrity salt; the adapter never verifies it). DuckDB hashes the whole column at once.
    with duckdb.connect() as con:
        hashed = con.sql(
            "SELECT upper(sha256(concat_ws('&', pp_Amount, pp_BillReference, pp_TxnDateTime, pp_TxnRefNo))) AS h "
            "FROM rendered"
        ).pl()
    return rendered.with_columns(pp_SecureHash=hashed["h"])
