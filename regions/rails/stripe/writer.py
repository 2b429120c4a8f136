"""Render truth as a Stripe payments CSV export (`stripe_payments`) in a comma-decimal locale.

The file is semicolon-delimited with "," decimals and "." thousands (some amounts grouped, "1.234,50"), the
created-time header is `Created date (UTC)` or, as in older exports, `Created (UTC)` (chosen per file), buyer
emails carry stray case and spaces. Refunds and lost disputes are rendered as Stripe does: on the charge's own row
(`regions.synthetic.folded`), with its positive `Amount`, `Amount Refunded` and Status Refunded or Disputed. Each
row's corruption is rendered in the field the adapter reads (`Amount` for the sale, `Amount Refunded` for a
refund). Row representation: `regions/rails/stripe/spec.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.rails.gumroad.writer import major_text
from regions.synthetic.folded import as_exported, fold_money_back
from regions.synthetic.writers import register

_STATUS = {"success": "Paid", "pending": "Pending", "failed": "Failed"}
_MONEY_BACK = {"refund": "Refunded", "reversal": "Disputed"}


def exported_truth(truth: pl.DataFrame) -> pl.DataFrame:
    """What this export states about `truth` (money going back at its charge's time), for round-trip checks.

    A refund has its own field (`Amount Refunded`); a reversal is computed from the charge's `Amount`.
    """
    return as_exported(truth, own_amount=("refund",), from_sale_amount=("reversal",))


def comma_decimal(minor: pl.Expr, exponent: int, grouped: pl.Expr | bool = False) -> pl.Expr:
    """Minor units as "1.234,50" / "1234,50": the dot-decimal rendering with the two separators swapped."""
    return major_text(minor, exponent, grouped).str.replace_many([",", "."], [".", ","])


@register("stripe_payments", "csv")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    created = "Created date (UTC)" if rng.random() < 0.5 else "Created (UTC)"
    with path.open("w", encoding="utf-8", newline="") as handle:
        for index, truth in enumerate(chunks):
            lines = fold_money_back(truth)
            frame = lines.with_columns(
                _grouped=pl.Series(rng.random(lines.height) < 0.3),
                _email_shape=pl.Series(rng.integers(0, 10, lines.height)),
            )
            _render(frame, region, created).write_csv(handle, separator=";", include_header=index == 0)


def _render(frame: pl.DataFrame, region: RegionConfig, created: str) -> pl.DataFrame:
    exp = region.exponent
    corrupt = pl.col("corruption")
    refund = pl.col("back_kind") == "refund"
    gross = comma_decimal(pl.col("amount_minor"), exp, pl.col("_grouped"))
    returned = comma_decimal(pl.col("back_minor"), exp, pl.col("_grouped"))
    zero = comma_decimal(pl.lit(0), exp)
    email = pl.col("buyer_email")
    return frame.select(
        pl.format("ch_3Kanda{}", pl.col("txn_no").cast(pl.String).str.pad_start(10, "0")).alias("id"),
        pl.format("Payment for {}", "product_id").alias("Description"),
        pl.when(corrupt == "bad_time")
        .then(pl.lit("N/A"))
        .otherwise(pl.col("occurred_at").dt.strftime("%Y-%m-%d %H:%M:%S"))
        .alias(created),
        pl.when(corrupt == "bad_amount").then(pl.lit("12.3O0,00")).otherwise(gross).alias("Amount"),
        pl.when(refund & (pl.col("back_corruption") == "bad_amount"))
        .then(pl.lit("N/A"))
        .when(refund)
        .then(returned)
        .otherwise(zero)
        .alias("Amount Refunded"),
        pl.lit(region.currency.lower()).alias("Currency"),
        gross.alias("Converted Amount"),
        pl.lit(region.currency.lower()).alias("Converted Currency"),
        comma_decimal(pl.col("fee_minor"), exp).alias("Fee"),
        pl.when(pl.col("back_kind").is_not_null())
        .then(pl.col("back_kind").replace_strict(_MONEY_BACK, return_dtype=pl.String))
        .otherwise(pl.col("status").replace_strict(_STATUS, return_dtype=pl.String))
        .alias("Status"),
        pl.when(pl.col("_email_shape") == 0)
        .then(pl.format(" {} ", email.str.to_uppercase()))
        .otherwise(email)
        .alias("Customer Email"),
        pl.lit("card").alias("Payment Method Type"),
        pl.when(corrupt == "missing_reference")
        .then(pl.lit(""))
        .otherwise(pl.format("{}.{}", "creator_id", "product_id"))
        .alias("kanda_ref (metadata)"),
    )
