"""Money going back folded onto its purchase's line, for exports that show one row per purchase (Gumroad, Stripe).

The truth (`regions.synthetic.core`) lists a refund or reversal as its own event, hours after the sale. Exports of
one row per purchase cannot say that: the purchase's row carries flags or an `Amount Refunded` instead, and no
refund date. `fold_money_back` gives a writer the lines such an export has; `as_exported` gives a test the truth as
that export can state it, which is what a reader must bring back.
"""

from __future__ import annotations

import polars as pl

BACK = ("refund", "reversal")

#: Damage that sits on the purchase's line and so also spoils the money going back read from that line.
_SHARED_DAMAGE = ("bad_time", "missing_reference")


def fold_money_back(truth: pl.DataFrame) -> pl.DataFrame:
    """The export's lines: truth without refund/reversal rows, each folded onto its sale's line.

    Adds `back_kind` (refund, reversal or null), `back_minor` (the positive amount returned) and `back_corruption`
    (the folded row's own damage). The truth keeps a refund in the same chunk as its sale (it is the next row), so
    folding works chunk by chunk.
    """
    is_back = pl.col("event_type").is_in(BACK)
    folded = truth.filter(is_back).select(
        "txn_no",
        pl.col("event_type").alias("back_kind"),
        (-pl.col("amount_minor")).alias("back_minor"),
        pl.col("corruption").alias("back_corruption"),
    )
    lines = truth.filter(~is_back).join(folded, on="txn_no", how="left", maintain_order="left")
    target = (pl.col("event_type") == "sale") & (pl.col("status") == "success") & ~pl.col("is_duplicate")
    lines = lines.with_columns(
        [pl.when(target).then(pl.col(c)).alias(c) for c in ("back_kind", "back_minor", "back_corruption")]
    )
    if lines["back_kind"].count() != folded.height:
        raise ValueError("a refund or reversal without its successful sale in the same chunk cannot be folded")
    return lines


def as_exported(truth: pl.DataFrame, *, own_amount: tuple[str, ...], from_sale_amount: tuple[str, ...]) -> pl.DataFrame:
    """The truth as a one-row-per-purchase export states it: money going back at its purchase's time and line.

    A refund or reversal takes its sale's time, creator, product and buyer (they are read from the same line), and
    its damage becomes what the line shows: its own unreadable amount when the export has a field of its own for
    it (`own_amount` kinds), else the sale line's damage where that spoils it too (time and reference always, the
    sale's amount for `from_sale_amount` kinds, whose amount is computed from the sale price).
    """
    sale = (
        truth.filter((pl.col("event_type") == "sale") & (pl.col("status") == "success") & ~pl.col("is_duplicate"))
        .unique("txn_no", keep="first", maintain_order=True)
        .select(
            "txn_no",
            *[
                pl.col(c).alias(f"_sale_{c}")
                for c in ("occurred_at", "creator_id", "product_id", "buyer_email", "buyer_phone", "corruption")
            ],
            pl.col("unknown_creator").alias("_sale_unknown_creator"),
        )
    )
    joined = truth.join(sale, on="txn_no", how="left", maintain_order="left")
    back = pl.col("event_type").is_in(BACK)
    kind, own, line = pl.col("event_type"), pl.col("corruption"), pl.col("_sale_corruption")
    damage = (
        pl.when((own == "bad_amount") & kind.is_in(own_amount))
        .then(own)
        .when(line.is_in(_SHARED_DAMAGE) | ((line == "bad_amount") & kind.is_in(from_sale_amount)))
        .then(line)
        .otherwise(pl.lit(None, pl.String))
    )
    copied = ("occurred_at", "creator_id", "product_id", "buyer_email", "buyer_phone", "unknown_creator")
    return joined.with_columns(
        *[pl.when(back).then(pl.col(f"_sale_{c}")).otherwise(pl.col(c)).alias(c) for c in copied],
        corruption=pl.when(back).then(damage).otherwise(own),
    ).select(truth.columns)
