"""Stripe payments CSV export (`stripe_payments`, Egypt), amounts in EGP major units.

This account's locale writes a **comma decimal separator** and "." thousands ("1.234,50"), so the export is
**semicolon-delimited** (the usual convention for comma-decimal CSV; our design). A comma-delimited file is
accepted too and then read with "." decimals, as Stripe writes it in an English locale: the delimiter decides.

Columns: `id` (the charge id, `ch_...`: the transaction id), `Created date (UTC)` (older exports: `Created
(UTC)`), `Amount`, `Amount Refunded`, `Currency`, `Converted Amount`, `Fee`, `Status`, `Customer Email` (the buyer
contact, hashed), `kanda_ref (metadata)` ("<creator>.<product>"); other columns (Description, Converted Currency,
card details, further metadata) may come and go. Times are UTC wall times "YYYY-MM-DD HH:MM:SS" and are *not*
shifted: Africa/Cairo's DST matters only for `local_date`, which is derived downstream.

Row representation: Stripe's export has one row per charge, showing the charge as it stood when exported. A
refunded charge keeps its positive `Amount` and states the money returned in `Amount Refunded`; so each row yields:
- the sale: `Status` Paid/Succeeded, Refunded, Partially Refunded or Disputed (all charges that succeeded) ->
  sale/success, Pending -> sale/pending, Failed/Canceled/Blocked -> sale/failed, anything else a null status
  (quarantined). Its amount is `Amount` and its fee `Fee`, which is Stripe's fee for the charge, counted once.
- a refund, when `Amount Refunded` is not zero (partial or full) or `Status` says Refunded: minus `Amount
  Refunded`, fee 0. An unreadable `Amount Refunded` gives a refund with a null amount (quarantined) beside a
  loaded sale; a Refunded status with nothing refunded gives a zero refund, which the contract quarantines.
- a reversal (kanda's event type for a chargeback), when `Status` is Disputed (a dispute lost: the card network
  took the money back): minus what was still with the seller, `Amount` - `Amount Refunded`, fee 0.
- refunds and reversals are `success` when the charge succeeded; on a pending or failed charge they contradict
  the row and get no status (quarantined).
- **which day**: the export has no refund date, only the charge's `Created date`, so the refund is booked at that
  time, on the charge's local day; a later date would be a guess. Event identity (charge id, event type, status)
  makes a charge exported again after a further refund add the refund once and repeat nothing; a row repeating the
  charge with a later `Created date` and Status Refunded (as older hand-made files did) books the refund then.
No net is stated, so net = amount - fee.

`source_row` is the 1-based record number after the header. Nothing is ignored: a Stripe export has no non-data
rows (blank lines are skipped by the CSV reader).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    detect_encoding,
    finish,
    iter_csv_chunks,
    major_to_minor,
    naive_datetime,
    normalise_email,
    raw_record,
    read_header,
    reference_parts,
    require_columns,
    vocabulary,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

FORMAT = "stripe_payments"
CREATED = ("Created date (UTC)", "Created (UTC)")
REQUIRED = ["id", "Amount", "Amount Refunded", "Currency", "Fee", "Status", "kanda_ref (metadata)"]
EXPECTS = Expects(
    "a Stripe payments CSV export (semicolon-separated, or comma-separated in an English locale)",
    "csv",
    (REQUIRED[0], CREATED[0], *REQUIRED[1:]),
    delimiter=";",
)
#: Status (lower-cased) -> (event_type, status)
VOCABULARY: dict[str, tuple[str, str]] = {
    "paid": ("sale", "success"),
    "succeeded": ("sale", "success"),
    "pending": ("sale", "pending"),
    "failed": ("sale", "failed"),
    "canceled": ("sale", "failed"),
    "blocked": ("sale", "failed"),
    # A refunded or disputed charge succeeded first: the row is its sale; the money back is derived beside it.
    "refunded": ("sale", "success"),
    "partially refunded": ("sale", "success"),
    "disputed": ("sale", "success"),
}
_REFUNDED = ("refunded", "partially refunded")


def sniff_delimiter(path: Path, encoding: str) -> str:
    """ ";" when the header splits on semicolons (comma-decimal locale), else ","."""
    semicolon = read_header(path, encoding, ";")
    return ";" if len(semicolon) > 1 else ","


class StripeAdapter:
    format_name = FORMAT
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        encoding = detect_encoding(path)
        delimiter = sniff_delimiter(path, encoding)
        names = read_header(path, encoding, delimiter)
        # either name of the creation time satisfies the requirement; the reason names the current one
        matched = [CREATED[0] if n in CREATED else n for n in names]
        require_columns(matched, EXPECTS, ctx.region, found=names)
        created = next(c for c in CREATED if c in names)
        decimal = "," if delimiter == ";" else "."
        offset = 0
        for chunk, skipped in iter_csv_chunks(
            path,
            ctx.batch_rows,
            delimiter=delimiter,
            column_names=names,
            skip_rows=1,
            encoding=encoding,
            expects=EXPECTS,
            region=ctx.region,
        ):
            frame = chunk.with_row_index("source_row", offset=offset + 1).with_columns(
                pl.col("source_row").cast(pl.Int64)
            )
            offset += chunk.height
            yield AdapterChunk(frame=self._map(frame, names, created, decimal, ctx), ignored=skipped)

    @staticmethod
    def _map(frame: pl.DataFrame, names: list[str], created: str, decimal: str, ctx: ReadContext) -> pl.DataFrame:
        exp = ctx.region.exponent
        state = pl.col("Status").str.strip_chars().str.to_lowercase()
        _, charge_status = vocabulary(state, VOCABULARY, default_event="sale")
        returned_text = pl.col("Amount Refunded").str.strip_chars().fill_null("")
        returned = major_to_minor(returned_text, exp, decimal=decimal).abs()
        creator, product = reference_parts(
            pl.col("kanda_ref (metadata)").str.strip_chars(), ctx.region.reference_pattern
        )
        text = pl.col(created).str.strip_chars()
        occurred = naive_datetime(text, ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]).dt.replace_time_zone("UTC")
        email = normalise_email(pl.col("Customer Email")) if "Customer Email" in names else pl.lit(None, pl.String)
        sales = frame.with_columns(
            transaction_id=pl.col("id").str.strip_chars().replace("", None),
            event_type=pl.lit("sale"),
            status=charge_status,
            creator_id=creator,
            product_id=product,
            channel=pl.lit("card"),
            amount_minor=major_to_minor(pl.col("Amount"), exp, decimal=decimal),
            fee_minor=major_to_minor(pl.col("Fee"), exp, decimal=decimal),
            currency=pl.col("Currency").str.strip_chars().str.to_uppercase(),
            occurred_at=occurred,
            _contact=email,
            raw_record=raw_record(names),
            _returned=returned,
            # Unreadable text is a refund of unknown size (quarantined), never "nothing refunded".
            _refunded=state.is_in(_REFUNDED) | ((returned_text != "") & (returned.is_null() | (returned != 0))),
            _disputed=state == "disputed",
            _order=pl.lit(0, pl.Int8),
        )
        back = pl.when(pl.col("status") == "success").then(pl.lit("success")).otherwise(pl.lit(None, pl.String))
        refunds = sales.filter(pl.col("_refunded")).with_columns(
            event_type=pl.lit("refund"), status=back, amount_minor=-pl.col("_returned"), _order=pl.lit(1, pl.Int8)
        )
        reversals = sales.filter(pl.col("_disputed")).with_columns(
            event_type=pl.lit("reversal"),
            status=back,
            amount_minor=-(pl.col("amount_minor") - pl.col("_returned")),
            _order=pl.lit(2, pl.Int8),
        )
        money_back = pl.concat([refunds, reversals]).with_columns(fee_minor=pl.lit(0, pl.Int64))
        mapped = _with_money_back(sales, money_back)
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


def _with_money_back(sales: pl.DataFrame, money_back: pl.DataFrame) -> pl.DataFrame:
    """Each row's sale followed by the money that went back on it, in file order (usually there is none)."""
    if money_back.is_empty():
        return sales
    return pl.concat([sales, money_back]).sort("source_row", "_order", maintain_order=True)


ADAPTER = register(StripeAdapter())
