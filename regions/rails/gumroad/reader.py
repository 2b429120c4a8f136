"""Gumroad-style creator platform purchase export (`platform_csv`, Tanzania: amounts in TZS major units).

The shape follows antiwork/gumroad's `purchase_export_service`: `Purchase ID, Item Name, Purchase Date, Purchase Time
(UTC timezone), Sale Price ($), Fees ($), Net Total ($), Refunded?, Partial Refund ($), Fully Refunded?, Disputed?,
Dispute Won?, Country, Payment Type, Buyer Currency, Buyer Total, Buyer Refunded Total`, flags 0/1, then whatever
custom columns the creator added (schema drift: ignored, but kept in `raw_record`). The money headers may say `($)`
(Gumroad's fixed label) or `(TZS)`; both are the seller's currency. A header naming another currency rejects the
file: it was routed to the wrong region.

Row representation. The export has one row per purchase, showing its state when the export was made: a refunded
purchase keeps its positive `Sale Price` and is flagged, as antiwork/gumroad writes it:
- every row is the sale of the purchase named by `Purchase ID` (the transaction id), with `Sale Price`, `Fees` and
  the stated `Net Total` (passed on as `net_minor`, so the contract checks it). The optional `Purchase State` column
  (`successful`, `in_progress`, `failed`) carries pending/failed sales; without it every row is `success`. A
  negative `Sale Price` is not how the platform writes a refund: it stays a negative sale and is quarantined.
- a refunded purchase (`Refunded?`=1, `Fully Refunded?`=1 or a non-zero `Partial Refund`) adds a `refund` event
  on the same transaction: the whole `Sale Price` when `Fully Refunded?`=1 (or when `Refunded?`=1 gives no partial
  amount), else minus `Partial Refund`. An unreadable `Partial Refund` gives a refund with a null amount, which is
  quarantined while the sale itself loads.
- a dispute the seller lost (`Disputed?`=1, `Dispute Won?`=0: the card network took the money) adds a `reversal`
  (kanda's existing event type for chargebacks) of what was still with the seller: `Sale Price` minus any refund.
  A won dispute gave the money back, so it adds nothing.
- refund and reversal events carry no fee (the purchase's fee sits on the sale) and are `success` when the purchase
  was; flags on a purchase that never succeeded contradict themselves, so those events get no status (quarantined).
- **which day**: the export has no refund or dispute date, only the purchase's `Purchase Date`/`Purchase Time`, so
  money going back is booked at the purchase's own time and lands on the purchase's local day. That is the only
  date the file states; a guessed later day would be invented. Because an event's identity is (transaction,
  event type, status), a later export showing the same purchase refunded adds the refund once and repeats nothing.
- `Purchase Email` (when present) is the buyer contact, hashed into `buyer_ref`.

`source_row` is the 1-based record number after the header, counting ignored rows too (file line = source_row + 1);
a purchase's sale and its refund or reversal share the row's number. Only the export's own closing Totals line
(`Purchase ID` "Totals" and no purchase date: it holds sums) is counted in `ignored`; a row whose id happens to be
"Totals" but which has a date is a purchase like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions import RegionConfig
from regions.parsing import (
    add_buyer_ref,
    check_file,
    detect_encoding,
    finish,
    iter_csv_chunks,
    major_to_minor,
    normalise_email,
    raw_record,
    read_header,
    reference_parts,
    rejection,
    require_columns,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

FORMAT = "platform_csv"
_MONEY_SUFFIX = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>\$|[A-Za-z]{3})\)$")
REQUIRED = ["Purchase ID", "Item Name", "Purchase Date", "Purchase Time", "Sale Price", "Fees", "Net Total"]
EXPECTS = Expects("a Gumroad-style purchase export CSV", "csv", tuple(REQUIRED))
_STATES = {"successful": "success", "in_progress": "pending", "pending": "pending", "failed": "failed"}


def canonical_header(header: list[str], currency: str, region: RegionConfig | None = None) -> list[str]:
    """Header names without their money unit, so `Sale Price ($)` and `Sale Price (TZS)` read the same.

    `Purchase Time (UTC timezone)` also becomes `Purchase Time`. A money unit naming a currency other than the
    region's rejects the file, because its amounts would be booked in the wrong currency.
    """
    names: list[str] = []
    for raw in header:
        name = raw.strip()
        if name.startswith("Purchase Time"):
            name = "Purchase Time"
        match = _MONEY_SUFFIX.match(name)
        if match:
            unit = match["unit"]
            if unit != "$" and unit.upper() != currency:
                # the unit is three letters matched by a pattern, so naming it quotes nothing but a currency code
                problem = (
                    f"the money columns are in {unit.upper()}, but this region's exports are in {currency}: "
                    "the file belongs to another region"
                )
                raise rejection("wrong_currency", problem, EXPECTS, region)
            name = match["name"]
        names.append(name)
    return names


class GumroadAdapter:
    format_name = FORMAT
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        encoding = detect_encoding(path)
        raw_names = read_header(path, encoding)
        names = canonical_header(raw_names, ctx.region.currency, ctx.region)
        require_columns(names, EXPECTS, ctx.region, found=raw_names)
        # Custom columns may repeat a standard name; keep the first occurrence, suffix the rest.
        unique = [n if n not in names[:i] else f"{n} #{i}" for i, n in enumerate(names)]
        offset = 0
        for chunk, skipped in iter_csv_chunks(
            path,
            ctx.batch_rows,
            column_names=unique,
            skip_rows=1,
            encoding=encoding,
            expects=EXPECTS,
            region=ctx.region,
        ):
            frame = chunk.with_row_index("source_row", offset=offset + 1).with_columns(
                pl.col("source_row").cast(pl.Int64)
            )
            offset += chunk.height
            totals = _totals_line()
            ignored = int(frame.select(totals.sum()).item()) + skipped
            data = frame.filter(~totals)
            yield AdapterChunk(frame=self._map(data, unique, ctx), ignored=ignored)

    @staticmethod
    def _map(frame: pl.DataFrame, columns: list[str], ctx: ReadContext) -> pl.DataFrame:
        exponent = ctx.region.exponent
        creator, product = reference_parts(pl.col("Item Name").str.strip_chars(), ctx.region.reference_pattern)
        if "Purchase State" in columns:
            status = (
                pl.col("Purchase State")
                .str.strip_chars()
                .str.to_lowercase()
                .replace_strict(_STATES, default=None, return_dtype=pl.String)
            )
        else:
            status = pl.lit("success")
        stamp = pl.col("Purchase Date").str.strip_chars() + " " + pl.col("Purchase Time").str.strip_chars()
        occurred = stamp.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").dt.replace_time_zone("UTC")
        email = normalise_email(pl.col("Purchase Email")) if "Purchase Email" in columns else pl.lit(None, pl.String)
        channel = (
            pl.col("Payment Type").str.strip_chars().str.to_lowercase().replace("", None)
            if "Payment Type" in columns
            else pl.lit(None, pl.String)
        )
        sales = frame.with_columns(
            transaction_id=pl.col("Purchase ID").str.strip_chars().replace("", None),
            event_type=pl.lit("sale"),
            status=status,
            creator_id=creator,
            product_id=product,
            channel=channel,
            amount_minor=major_to_minor(pl.col("Sale Price"), exponent),
            fee_minor=major_to_minor(pl.col("Fees"), exponent),
            net_minor=major_to_minor(pl.col("Net Total"), exponent),
            currency=pl.lit(ctx.region.currency),
            occurred_at=occurred,
            _contact=email,
            raw_record=raw_record(columns),
            _order=pl.lit(0, pl.Int8),
        )
        sales = sales.with_columns(_money_back(columns, exponent))
        back = pl.when(pl.col("status") == "success").then(pl.lit("success")).otherwise(pl.lit(None, pl.String))
        refunds = sales.filter(pl.col("_refunded")).with_columns(
            event_type=pl.lit("refund"), status=back, amount_minor=-pl.col("_refund_minor"), _order=pl.lit(1, pl.Int8)
        )
        refunded_part = pl.when(pl.col("_refunded")).then(pl.col("_refund_minor")).otherwise(0)
        disputes = sales.filter(pl.col("_lost_dispute")).with_columns(
            event_type=pl.lit("reversal"),
            status=back,
            amount_minor=-(pl.col("amount_minor") - refunded_part),
            _order=pl.lit(2, pl.Int8),
        )
        money_back = pl.concat([refunds, disputes]).with_columns(fee_minor=pl.lit(0, pl.Int64))
        mapped = _with_money_back(sales, money_back.with_columns(net_minor=pl.col("amount_minor")))
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


def _with_money_back(sales: pl.DataFrame, money_back: pl.DataFrame) -> pl.DataFrame:
    """Each line's sale followed by the money that went back on it, in file order (usually there is none)."""
    if money_back.is_empty():
        return sales
    return pl.concat([sales, money_back]).sort("source_row", "_order", maintain_order=True)


def _totals_line() -> pl.Expr:
    """The export's closing Totals line: `Purchase ID` "Totals" and no purchase date (it holds sums, not a sale)."""
    named = pl.col("Purchase ID").str.strip_chars().str.to_lowercase() == "totals"
    return named & (pl.col("Purchase Date").str.strip_chars().fill_null("") == "")


def _money_back(columns: list[str], exponent: int) -> list[pl.Expr]:
    """`_refunded`, `_refund_minor` (positive) and `_lost_dispute` from the row's refund and dispute columns."""

    def flag(name: str) -> pl.Expr:
        """A 0/1 flag column; an absent one (older exports) is all zeros."""
        return pl.col(name).str.strip_chars() == "1" if name in columns else pl.lit(False)

    if "Partial Refund" in columns:
        partial_text = pl.col("Partial Refund").str.strip_chars().fill_null("")
        partial = major_to_minor(partial_text, exponent)
        # Unreadable text counts as a partial refund of unknown size (quarantined), never as "no refund".
        partial_given = (partial_text != "") & (partial.is_null() | (partial != 0))
    else:
        partial, partial_given = pl.lit(None, pl.Int64), pl.lit(False)
    full = flag("Fully Refunded?") | (flag("Refunded?") & ~partial_given)
    return [
        (full | partial_given).alias("_refunded"),
        pl.when(full).then(pl.col("amount_minor")).otherwise(partial).alias("_refund_minor"),
        (flag("Disputed?") & ~flag("Dispute Won?")).alias("_lost_dispute"),
    ]


ADAPTER = register(GumroadAdapter())
