"""Gumroad-style creator platform purchase export (`platform_csv`, Tanzania: amounts in TZS major units).

The shape follows antiwork/gumroad's `purchase_export_service`: `Purchase ID, Item Name, Purchase Date, Purchase Time
(UTC timezone), Sale Price ($), Fees ($), Net Total ($), Refunded?, Partial Refund ($), Fully Refunded?, Disputed?,
Dispute Won?, Country, Payment Type, Buyer Currency, Buyer Total, Buyer Refunded Total`, flags 0/1, then whatever
custom columns the creator added (schema drift: ignored, but kept in `raw_record`). The money headers may say `($)`
(Gumroad's fixed label) or `(TZS)`; both are the seller's currency. A header naming another currency rejects the
file: it was routed to the wrong region.

Row representation (our design, since the platform export shows one row per purchase):
- every row is one event about the purchase named by `Purchase ID` (the transaction id);
- a non-negative `Sale Price` is the sale; a negative one is money going back: `Disputed?=1` with `Dispute
  Won?=0` is a lost dispute, mapped to `reversal`; otherwise (normally `Refunded?=1`) a `refund`. The sign is read
  from the text, so a refund whose amount is unreadable is still a refund (with a null amount, quarantined);
- the optional `Purchase State` column (`successful`, `in_progress`, `failed`) carries pending/failed sales; a file
  without it only holds completed purchases, so every row is `success`;
- `Net Total` is stated by the platform and passed on as `net_minor` so the contract checks it;
- `Purchase Email` (when present) is the buyer contact, hashed into `buyer_ref`.

`source_row` is the 1-based record number after the header, counting ignored rows too (file line = source_row + 1).
The trailing `Totals` row is counted in `ignored`.
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
            totals = pl.col("Purchase ID").str.strip_chars().str.to_lowercase() == "totals"
            ignored = int(frame.select(totals.sum()).item()) + skipped
            data = frame.filter(~totals)
            yield AdapterChunk(frame=self._map(data, unique, ctx), ignored=ignored)

    @staticmethod
    def _map(frame: pl.DataFrame, columns: list[str], ctx: ReadContext) -> pl.DataFrame:
        exponent = ctx.region.exponent
        creator, product = reference_parts(pl.col("Item Name").str.strip_chars(), ctx.region.reference_pattern)
        sale_text = pl.col("Sale Price").str.strip_chars()
        negative = sale_text.str.starts_with("-")

        def flag(name: str) -> pl.Expr:
            """A 0/1 flag column; an absent one (older exports) is all zeros."""
            return pl.col(name).str.strip_chars() == "1" if name in columns else pl.lit(False)

        event_type = (
            pl.when(~negative)
            .then(pl.lit("sale"))
            .when(flag("Disputed?") & ~flag("Dispute Won?"))
            .then(pl.lit("reversal"))
            .otherwise(pl.lit("refund"))
        )
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
        mapped = frame.with_columns(
            transaction_id=pl.col("Purchase ID").str.strip_chars().replace("", None),
            event_type=event_type,
            status=status,
            creator_id=creator,
            product_id=product,
            channel=channel,
            amount_minor=major_to_minor(sale_text, exponent),
            fee_minor=major_to_minor(pl.col("Fees"), exponent),
            net_minor=major_to_minor(pl.col("Net Total"), exponent),
            currency=pl.lit(ctx.region.currency),
            occurred_at=occurred,
            _contact=email,
            raw_record=raw_record(columns),
        )
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


ADAPTER = register(GumroadAdapter())
