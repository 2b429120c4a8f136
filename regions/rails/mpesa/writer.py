"""M-Pesa statement export (CSV), the inverse of `regions.rails.mpesa.reader`.

Sales are Paid In rows with status Completed / Pending / Failed and Details
`Pay Bill Online from <phone> - <NAME> Acc. <creator>.<product>`; a refund is a Withdrawn row "Refund of <receipt>";
a reversal is either a Withdrawn row "Reversal of <receipt>" or the payment listed again with status Reversed
(chosen per payment). Amounts in major units with comma thousands, quoted; times local in the region's zone.

Format dirt: a title preamble before the header, one of two header variants per file (`Withdrawn`/`Balance` and
ISO times, or `Receipt No.`/`Paid Out`/`Balance Confirmed` and DD/MM/YYYY times), repeated page headers and
disclaimer lines every `PAGE_ROWS` records, M-Pesa charge rows (withdrawals the adapter ignores) and masked phones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.synthetic.writers import register

HEADERS = [
    ["Receipt No", "Completion Time", "Details", "Transaction Status", "Paid In", "Withdrawn", "Balance"],
    [
        "Receipt No.",
        "Completion Time",
        "Details",
        "Transaction Status",
        "Paid In",
        "Paid Out",
        "Balance",
        "Balance Confirmed",
    ],
]
TIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"]
PREAMBLE = ["MPESA BUSINESS STATEMENT", "Statement Period: as requested"]
PAGE_ROWS = 250
CHARGE_SHARE = 0.03
DISCLAIMER = "Disclaimer: This statement is issued for information only and is not valid without a stamp"


def receipt(txn_no: pl.Expr) -> pl.Expr:
    """The payment's receipt number, as the adapter reports it in transaction_id."""
    return pl.lit("SK") + txn_no.cast(pl.String).str.zfill(8)


def money(minor: pl.Expr, exponent: int) -> pl.Expr:
    """Major units with comma thousands ("10,000.00"), built with string expressions (no per-row Python)."""
    scale = 10**exponent
    whole = (minor.abs() // scale).cast(pl.String)
    grouped = whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_chars_start(",")
    frac = pl.lit(".") + (minor.abs() % scale).cast(pl.String).str.zfill(exponent) if exponent else pl.lit("")
    return grouped + frac


def _quote(expr: pl.Expr) -> pl.Expr:
    return pl.lit('"') + expr + pl.lit('"')


def _rows(chunk: pl.DataFrame, region: RegionConfig, variant: int, salt: int) -> pl.DataFrame:
    h = ((pl.col("txn_no") + salt) * 2_654_435_761) % 1_000_003 % 1000
    event, status, corruption = pl.col("event_type"), pl.col("status"), pl.col("corruption")
    listed_again = (event == "reversal") & (h % 2 == 0)
    withdrawal = event.is_in(["refund", "reversal"]) & ~listed_again
    phone = pl.col("buyer_phone")
    shown_phone = (
        pl.when(h % 4 == 0)
        .then(pl.lit("0****") + phone.str.slice(-3))
        .when(h % 4 == 1)
        .then(pl.lit(region.calling_code) + phone.str.slice(1))
        .otherwise(phone)
    )
    account = (
        pl.when(corruption == "missing_reference")
        .then(pl.lit(""))
        .otherwise(pl.col("creator_id") + pl.lit(".") + pl.col("product_id"))
    )
    name = pl.lit(pl.Series(["JANE WANJIKU", "JOHN OTIENO", "MERCY ACHIENG", "PETER KAMAU"])).get(h % 4)
    pay_text = pl.lit("Pay Bill Online from ") + shown_phone + pl.lit(" - ") + name + pl.lit(" Acc. ") + account
    details = (
        pl.when(withdrawal)
        .then(
            pl.when(event == "refund").then(pl.lit("Refund of ")).otherwise(pl.lit("Reversal of "))
            + receipt(pl.col("txn_no"))
            + pl.lit(" Acc. ")
            + account
        )
        .otherwise(pay_text)
    )
    own_receipt = (
        pl.when(withdrawal)
        .then(pl.lit("SR") + pl.col("txn_no").cast(pl.String).str.zfill(8))
        .otherwise(receipt(pl.col("txn_no")))
    )
    status_text = (
        pl.when(listed_again)
        .then(pl.lit("Reversed"))
        .otherwise(status.replace_strict({"success": "Completed", "pending": "Pending", "failed": "Failed"}))
    )
    amount = (
        pl.when(corruption == "bad_amount")
        .then(pl.lit("12,3O0.00"))
        .otherwise(money(pl.col("amount_minor"), region.exponent))
    )
    local = pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.strftime(TIME_FORMATS[variant])
    time_text = pl.when(corruption == "bad_time").then(pl.lit("2025-13-45 25:61:00")).otherwise(local)
    balance = (pl.col("txn_no") * 7919 % 5_000_000) * 10**region.exponent
    fields = [
        own_receipt,
        time_text,
        details,
        status_text,
        _quote(pl.when(withdrawal).then(pl.lit("")).otherwise(amount)),
        _quote(pl.when(withdrawal).then(pl.lit("-") + amount).otherwise(pl.lit(""))),
        _quote(money(balance, region.exponent)),
    ]
    if variant == 1:
        fields.append(pl.lit("true"))
    line = pl.concat_str(fields, separator=",")
    return chunk.select(line.alias("line"), pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64).alias("order"))


def _charges(chunk: pl.DataFrame, region: RegionConfig, variant: int, rng: np.random.Generator) -> pl.DataFrame:
    """M-Pesa's own transaction charges: withdrawals that are not sales (the adapter ignores them)."""
    picked = np.flatnonzero(rng.random(chunk.height) < CHARGE_SHARE)
    rows = chunk[picked.tolist()].with_columns(order=pl.Series(picked + 0.5, dtype=pl.Float64))
    local = pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.strftime(TIME_FORMATS[variant])
    fields = [
        pl.lit("SC") + pl.col("txn_no").cast(pl.String).str.zfill(8),
        local,
        pl.lit("Pay Bill Charge"),
        pl.lit("Completed"),
        pl.lit('""'),
        _quote(pl.lit("-") + money(pl.col("fee_minor") + 1, region.exponent)),
        _quote(pl.lit("0.00")),
    ]
    if variant == 1:
        fields.append(pl.lit("true"))
    return rows.select(pl.concat_str(fields, separator=",").alias("line"), pl.col("order"))


@register("mpesa_statement", "csv")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    variant = int(rng.integers(0, len(HEADERS)))
    salt = int(rng.integers(0, 1_000_000))
    header = ",".join(HEADERS[variant])
    records = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff" + "\n".join(PREAMBLE) + "\n" + header + "\n")
        for chunk in chunks:
            lines = pl.concat([_rows(chunk, region, variant, salt), _charges(chunk, region, variant, rng)])
            ordered = lines.sort("order", maintain_order=True)
            number = pl.int_range(1, pl.len() + 1, dtype=pl.Int64) + records
            page_break = pl.lit(f"\n{DISCLAIMER}\nPage ") + (number // PAGE_ROWS + 1).cast(pl.String) + f"\n{header}"
            text = ordered.select(
                pl.when(number % PAGE_ROWS == 0).then(pl.col("line") + page_break).otherwise(pl.col("line"))
            ).to_series()
            records += ordered.height
            handle.write("\n".join(text.to_list()) + "\n")
