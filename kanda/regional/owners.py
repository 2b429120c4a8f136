"""Money going back that names its payment but not whose it was takes the creator and product of the payment's sale.

Several rails name the payment a refund or reversal undoes but not the checkout reference the sale carried: M-Pesa's
org portal books "Pay Utility Reversal" with the undone receipt in Linked Transaction ID and no `Acc.`, and
Paystack's refund events carry `transaction_reference` but no `metadata`. Such a row was quarantined for its
creator and product, and a steward typed in what kanda already held: the sale's. The owner is taken only where it is
certain, that is where the payment's sales (stored, staged in the same batch, or among the rows judged with it)
name exactly one creator and one product; otherwise the row is left as it came and quarantined as before. A reference
that names only one of the two is left alone too: it is a broken reference, not a missing one.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

#: The event types that undo a payment's sale.
MONEY_BACK = ("refund", "reversal")

#: The (transaction_id, creator_id, product_id) of given payments' sales outside the frame: a row per distinct pair.
OwnersOf = Callable[[pl.Series], pl.DataFrame]
#: The same from the store and a batch's staged events (a relation over them, None while nothing is staged).
StoredOwners = Callable[[pl.Series, str | None], pl.DataFrame]


def with_payment_owners(frame: pl.DataFrame, owners_of: OwnersOf) -> pl.DataFrame:
    """`frame` with the creator and product of each ownerless refund or reversal filled from its payment's sale."""
    ownerless = (
        pl.col("event_type").is_in(MONEY_BACK)
        & pl.col("creator_id").is_null()
        & pl.col("product_id").is_null()
        & pl.col("transaction_id").is_not_null()
    )
    wanted = frame.select(ownerless.fill_null(False).alias("wanted"))["wanted"]
    if not wanted.any():
        return frame
    payments = frame.filter(wanted)["transaction_id"].unique()
    in_frame = frame.filter(
        (pl.col("event_type") == "sale")
        & pl.col("transaction_id").is_in(payments.implode())
        & pl.col("creator_id").is_not_null()
        & pl.col("product_id").is_not_null()
    ).select("transaction_id", "creator_id", "product_id")
    candidates = pl.concat([in_frame, owners_of(payments).select(in_frame.columns)]).unique()
    certain = candidates.filter(pl.len().over("transaction_id") == 1)
    if certain.is_empty():
        return frame
    payment = pl.col("transaction_id")
    return frame.with_columns(
        [
            pl.when(wanted)
            .then(payment.replace_strict(certain["transaction_id"], certain[column], default=None))
            .otherwise(pl.col(column))
            .alias(column)
            for column in ("creator_id", "product_id")
        ]
    )


def stored_owners(con: duckdb.DuckDBPyConnection) -> StoredOwners:
    """Owners of payments from the store's sales and from a batch's staged sales (a relation, or None before any)."""

    def owners_of(payments: pl.Series, staged: str | None) -> pl.DataFrame:
        sales = (
            "SELECT DISTINCT transaction_id, creator_id, product_id FROM {} WHERE event_type = 'sale'"
            " AND transaction_id IN (SELECT unnest($payments::VARCHAR[]))"
        )
        sql = sales.format("sale_events")
        if staged is not None:
            sql += " UNION " + sales.format(staged)
        return con.sql(sql, params={"payments": payments.to_list()}).pl()

    return owners_of
