"""Stripe payments CSV export (`stripe_payments`, Egypt), amounts in EGP major units.

This account's locale writes a **comma decimal separator** and "." thousands ("1.234,50"), so the export is
**semicolon-delimited** (the usual convention for comma-decimal CSV; our design). A comma-delimited file is
accepted too and then read with "." decimals, as Stripe writes it in an English locale: the delimiter decides.

Columns: `id` (the charge id, `ch_...`: the transaction id), `Created date (UTC)` (older exports: `Created
(UTC)`), `Amount`, `Amount Refunded`, `Currency`, `Converted Amount`, `Fee`, `Status`, `Customer Email` (the buyer
contact, hashed), `kanda_ref (metadata)` ("<creator>.<product>"); other columns (Description, Converted Currency,
card details, further metadata) may come and go. Times are UTC wall times "YYYY-MM-DD HH:MM:SS" and are *not*
shifted: Africa/Cairo's DST matters only for `local_date`, which is derived downstream.

Row representation (Stripe's export has one row per charge; ours has one row per event, our design):
- `Status` Paid -> sale/success, Pending -> sale/pending, Failed/Canceled/Blocked -> sale/failed; the amount
  is `Amount`.
- `Status` Refunded (also "Partially Refunded") -> refund/success, a row repeating the charge `id`, with `Created
  date` the time of the refund and `Amount Refunded` the money returned (negated here).
- `Status` Disputed (a dispute lost: the card network took the money back) -> reversal/success, amount from
  `Amount Refunded` as for refunds.
- any other status is null (quarantined). `Fee` is Stripe's fee (0 on refunds and failures); no net is stated.

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
    "refunded": ("refund", "success"),
    "partially refunded": ("refund", "success"),
    "disputed": ("reversal", "success"),
}


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
        event_type, status = vocabulary(state, VOCABULARY, default_event="sale")
        charged = major_to_minor(pl.col("Amount"), exp, decimal=decimal)
        returned = major_to_minor(pl.col("Amount Refunded"), exp, decimal=decimal)
        creator, product = reference_parts(
            pl.col("kanda_ref (metadata)").str.strip_chars(), ctx.region.reference_pattern
        )
        text = pl.col(created).str.strip_chars()
        occurred = naive_datetime(text, ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]).dt.replace_time_zone("UTC")
        email = normalise_email(pl.col("Customer Email")) if "Customer Email" in names else pl.lit(None, pl.String)
        mapped = frame.with_columns(
            transaction_id=pl.col("id").str.strip_chars().replace("", None),
            event_type=event_type,
            status=status,
            creator_id=creator,
            product_id=product,
            channel=pl.lit("card"),
            amount_minor=pl.when(event_type == "sale").then(charged).otherwise(-returned.abs()),
            fee_minor=major_to_minor(pl.col("Fee"), exp, decimal=decimal),
            currency=pl.col("Currency").str.strip_chars().str.to_uppercase(),
            occurred_at=occurred,
            _contact=email,
            raw_record=raw_record(names),
        )
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


ADAPTER = register(StripeAdapter())
