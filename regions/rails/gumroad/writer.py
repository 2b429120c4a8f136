"""Render truth as a Gumroad-style purchase export CSV (`platform_csv`), with the export's own dirt.

Dirt added: a UTF-8 BOM on the first header, some amounts with thousands separators (as after an Excel re-save;
quoted), appended custom columns, a few disputes the seller won (flagged: a failed reversal), and the closing `Totals`
row. Money headers name the region's currency: `($)` is US dollars, a file the rail refuses. Refunds and lost
disputes are rendered as the platform does: on the purchase's own row, by `Refunded?`/`Fully Refunded?` and
`Disputed?` flags, with the positive `Sale Price` (`regions.synthetic.folded`); a refund whose truth row is damaged
shows an unreadable `Partial Refund`. Row representation: `regions/rails/gumroad/spec.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig
from regions.synthetic.folded import BACK, as_exported, fold_money_back
from regions.synthetic.writers import register

_STATE = {"success": "successful", "pending": "in_progress", "failed": "failed"}


def dispute_won(nothing_back: pl.Expr) -> pl.Expr:
    """The purchase lines flagged as a dispute the seller won: one successful purchase in a hundred with nothing
    gone back on it (`nothing_back`), chosen by its number, so that `exported_truth` states the same ones."""
    first_success = (pl.col("event_type") == "sale") & (pl.col("status") == "success") & ~pl.col("is_duplicate")
    return first_success & nothing_back & (pl.col("txn_no") % 100 == 37)


def exported_truth(truth: pl.DataFrame) -> pl.DataFrame:
    """What this export states about `truth` (money going back at its purchase's time), for round-trip checks.

    A full refund and a lost dispute are computed from the line's `Sale Price`; only a refund has a field of its own
    (`Partial Refund`) in which its damage can show. A dispute the seller won is read as a failed reversal of the
    Sale Price, right after its sale, with the line's damage.
    """
    exported = as_exported(truth, own_amount=("refund",), from_sale_amount=("refund", "reversal"))
    went_back = truth.filter(pl.col("event_type").is_in(BACK))["txn_no"].implode()
    lines = exported.with_row_index("_line").with_columns(_then=pl.lit(0))
    won = lines.filter(dispute_won(~pl.col("txn_no").is_in(went_back))).with_columns(
        event_type=pl.lit("reversal"),
        status=pl.lit("failed"),
        amount_minor=-pl.col("amount_minor"),
        fee_minor=pl.lit(0, truth["fee_minor"].dtype),
        _then=pl.lit(1),
    )
    return pl.concat([lines, won]).sort("_line", "_then").drop("_line", "_then")


def major_text(minor: pl.Expr, exponent: int, grouped: pl.Expr | bool = False) -> pl.Expr:
    """Minor units as a major-unit string ("-12500.00"), optionally with comma thousands ("12,500.00")."""
    minor = minor.cast(pl.Int64)
    absolute = minor.abs()
    whole = absolute // (10**exponent)
    plain = whole.cast(pl.String)
    thousands = (
        pl.when(whole >= 1_000_000)
        .then(pl.format("{},{},{}", whole // 1_000_000, _pad3((whole // 1000) % 1000), _pad3(whole % 1000)))
        .when(whole >= 1000)
        .then(pl.format("{},{}", whole // 1000, _pad3(whole % 1000)))
        .otherwise(plain)
    )
    text = pl.when(grouped).then(thousands).otherwise(plain)
    if exponent:
        text = text + "." + (absolute % (10**exponent)).cast(pl.String).str.pad_start(exponent, "0")
    return pl.when(minor < 0).then("-" + text).otherwise(text)


def _flag(cond: pl.Expr) -> pl.Expr:
    return pl.when(cond).then(pl.lit("1")).otherwise(pl.lit("0"))


def _pad3(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.String).str.pad_start(3, "0")


@register("platform_csv", "csv")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    unit = region.currency
    exp = region.exponent
    totals = [0, 0, 0]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff")
        first = True
        for truth in chunks:
            lines = fold_money_back(truth)
            n = lines.height
            frame = lines.with_columns(
                _grouped=pl.Series(rng.random(n) < 0.2),
                _custom=pl.Series(rng.integers(0, 4, n)),
                _won=dispute_won(pl.col("back_kind").is_null()),
            )
            refund = pl.col("back_kind") == "refund"
            bad_refund = refund & (pl.col("back_corruption") == "bad_amount")
            corrupt = pl.col("corruption")
            net = pl.col("amount_minor") - pl.col("fee_minor")
            money = {
                "sale": major_text(pl.col("amount_minor"), exp, pl.col("_grouped")),
                "fees": major_text(pl.col("fee_minor"), exp),
                "net": major_text(net, exp, pl.col("_grouped")),
            }
            rendered = frame.select(
                pl.format("kanda-{}-{}", pl.lit(region.code), pl.col("txn_no"))
                .str.encode("base64")
                .str.strip_chars_end("=")
                .alias("Purchase ID"),
                pl.when(corrupt == "missing_reference")
                .then(pl.lit("Digital product"))
                .otherwise(pl.format("[{}.{}] Product {}", "creator_id", "product_id", "product_id"))
                .alias("Item Name"),
                pl.col("buyer_email").alias("Purchase Email"),
                pl.when(corrupt == "bad_time")
                .then(pl.lit("N/A"))
                .otherwise(pl.col("occurred_at").dt.strftime("%Y-%m-%d"))
                .alias("Purchase Date"),
                # Gumroad's own export writes the whole UTC time here; older ones the time of day (half each)
                pl.when((corrupt.fill_null("") != "bad_time") & (pl.col("txn_no") % 2 == 0))
                .then(pl.col("occurred_at").dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
                .otherwise(pl.col("occurred_at").dt.strftime("%H:%M:%S"))
                .alias("Purchase Time (UTC timezone)"),
                pl.when(corrupt == "bad_amount")
                .then(pl.lit("12,3O0"))
                .otherwise(money["sale"])
                .alias(f"Sale Price ({unit})"),
                money["fees"].alias(f"Fees ({unit})"),
                money["net"].alias(f"Net Total ({unit})"),
                _flag(refund).alias("Refunded?"),
                pl.when(bad_refund)
                .then(pl.lit("1O,000.00"))
                .otherwise(major_text(pl.lit(0), exp))
                .alias(f"Partial Refund ({unit})"),
                _flag(refund & ~bad_refund).alias("Fully Refunded?"),
                _flag((pl.col("back_kind") == "reversal") | pl.col("_won")).alias("Disputed?"),
                _flag(pl.col("_won")).alias("Dispute Won?"),
                pl.lit(region.name).alias("Country"),
                pl.when(pl.col("txn_no") % 5 == 0)
                .then(pl.lit("paypal"))
                .otherwise(pl.lit("card"))
                .alias("Payment Type"),
                pl.lit(region.currency.lower()).alias("Buyer Currency"),
                major_text(pl.col("amount_minor"), exp).alias("Buyer Total"),
                major_text(pl.when(refund).then(pl.col("back_minor")).otherwise(0), exp).alias("Buyer Refunded Total"),
                pl.col("status").replace_strict(_STATE, return_dtype=pl.String).alias("Purchase State"),
                pl.when(pl.col("_custom") == 0)
                .then(pl.lit(""))
                .otherwise(pl.format("fan_{}", pl.col("txn_no") % 997))
                .alias("Discord username"),
                pl.col("_custom")
                .replace_strict({0: "", 1: "Instagram", 2: "a friend, really", 3: "X"}, return_dtype=pl.String)
                .alias("How did you hear about us?"),
            )
            readable = corrupt.is_null() | (corrupt != "bad_amount")
            sums = lines.select(
                pl.col("amount_minor").filter(readable).sum().alias("a"),
                pl.col("fee_minor").sum().alias("f"),
                net.filter(readable).sum().alias("n"),
            ).row(0)
            totals = [t + int(s or 0) for t, s in zip(totals, sums, strict=True)]
            rendered.write_csv(handle, include_header=first)
            first = False
            columns = rendered.columns
        if first:  # no truth at all: still a valid export with its header
            return
        row = pl.DataFrame({c: [""] for c in columns}).with_columns(
            pl.lit("Totals").alias("Purchase ID"),
            major_text(pl.lit(totals[0]), exp).alias(f"Sale Price ({unit})"),
            major_text(pl.lit(totals[1]), exp).alias(f"Fees ({unit})"),
            major_text(pl.lit(totals[2]), exp).alias(f"Net Total ({unit})"),
        )
        row.write_csv(handle, include_header=False)
