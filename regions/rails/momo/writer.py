"""MTN MoMo merchant portal export (XLSX), the inverse of `regions/rails/momo/spec.yaml`.

Sales are PAYMENT rows (SUCCESSFUL / PENDING / FAILED), refunds REFUND rows and reversals REVERSAL rows with their
own Transaction Id and the payment's id in `Reference Transaction Id`. Amounts are major-unit text ("1000",
"1,000.50"), the Date an Excel date cell in local time, `External Id` the checkout reference
`<creator>.<product>.<nonce>`.

XLSX is a small-file rail: cells are values of different types, so rows are written one at a time through
xlsxwriter's constant-memory mode (one row buffered), after the chunk's text is built with polars expressions. A
sheet holds `SHEET_ROWS` data rows; the rest continues on a new sheet with its own header, as the portal does.

Format dirt: some amounts are number cells, some dates text cells in DD/MM/YYYY, payer MSISDNs in local or
international form, TRANSFER rows (payouts the adapter ignores) and a Totals row at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter

from regions import RegionConfig
from regions.synthetic.writers import register

HEADER = [
    "Date",
    "Transaction Id",
    "Type",
    "Status",
    "Reason",
    "Amount",
    "Fee",
    "Currency",
    "External Id",
    "Payer Party Id",
    "Payer Message",
    "Reference Transaction Id",
]
#: Data rows per sheet: Excel's 1,048,576 rows less the header.
SHEET_ROWS = 1_048_575
TRANSFER_SHARE = 0.01


def payment_id(txn_no: pl.Expr) -> pl.Expr:
    """MoMo's financialTransactionId of the payment, as the adapter reports it in transaction_id."""
    return (txn_no + 3_600_000_000).cast(pl.String)


def money(minor: pl.Expr, exponent: int) -> pl.Expr:
    """Major units, comma thousands, decimals only when there are any ("1000", "1,000.50")."""
    scale = 10**exponent
    whole = (minor.abs() // scale).cast(pl.String)
    grouped = whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_chars_start(",")
    frac = (minor.abs() % scale).cast(pl.String).str.zfill(exponent)
    return pl.when(minor.abs() % scale == 0).then(grouped).otherwise(grouped + pl.lit(".") + frac)


def _render(chunk: pl.DataFrame, region: RegionConfig, salt: int) -> pl.DataFrame:
    h = ((pl.col("txn_no") + salt) * 2_654_435_761) % 1_000_003 % 1000
    event, status, corruption = pl.col("event_type"), pl.col("status"), pl.col("corruption")
    sale = event == "sale"
    local = pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.replace_time_zone(None).dt.truncate("1s")
    date_text = (
        pl.when(corruption == "bad_time")
        .then(pl.lit("31/02/2025 25:00"))
        .when(h % 10 == 4)
        .then(local.dt.strftime("%d/%m/%Y %H:%M:%S"))
    )
    amount_text = (
        pl.when(corruption == "bad_amount")
        .then(pl.lit("1,O00.00"))
        .otherwise(money(pl.col("amount_minor"), region.exponent))
    )
    # Whole amounts are sometimes number cells rather than text (a re-saved export).
    amount_number = pl.when((corruption.is_null()) & (h % 10 == 6) & (pl.col("amount_minor") % 100 == 0)).then(
        pl.col("amount_minor").abs() // 10**region.exponent
    )
    external = (
        pl.when(corruption == "missing_reference")
        .then(pl.lit(""))
        .otherwise(
            pl.col("creator_id") + pl.lit(".") + pl.col("product_id") + pl.lit(".") + pl.col("txn_no").cast(pl.String)
        )
    )
    phone = pl.col("buyer_phone")
    payer = pl.when(h % 3 == 0).then(phone).otherwise(pl.lit(region.calling_code) + phone.str.slice(1))
    own_id = (
        pl.when(sale).then(payment_id(pl.col("txn_no"))).otherwise((pl.col("txn_no") + 7_200_000_000).cast(pl.String))
    )
    return chunk.select(
        local.alias("date"),
        date_text.alias("date_text"),
        own_id.alias("txn"),
        event.replace_strict({"sale": "PAYMENT", "refund": "REFUND", "reversal": "REVERSAL"}).alias("type"),
        status.replace_strict({"success": "SUCCESSFUL", "pending": "PENDING", "failed": "FAILED"}).alias("status"),
        pl.when(status == "failed").then(pl.lit("PAYER_LIMIT_REACHED")).otherwise(pl.lit("")).alias("reason"),
        amount_text.alias("amount"),
        amount_number.alias("amount_number"),
        money(pl.col("fee_minor"), region.exponent).alias("fee"),
        pl.lit(region.currency).alias("currency"),
        external.alias("external_id"),
        payer.alias("payer"),
        pl.lit("kanda checkout").alias("message"),
        pl.when(sale).then(pl.lit("")).otherwise(payment_id(pl.col("txn_no"))).alias("ref_txn"),
        pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64).alias("order"),
    )


def _transfers(height: int, rng: np.random.Generator, region: RegionConfig) -> pl.DataFrame:
    """Payouts to the merchant's bank: rows on the export that are not sales (the adapter ignores them)."""
    count = int(rng.binomial(height, TRANSFER_SHARE))
    amounts = rng.integers(100, 50_000, count) * 10**region.exponent
    return pl.DataFrame(
        {
            "date": [dt.datetime(2025, 1, 1, 23, 59, 59)] * count,
            "txn": [str(9_000_000_000 + int(a) % 999_983) for a in amounts],
            "type": ["TRANSFER"] * count,
            "status": ["SUCCESSFUL"] * count,
            "amount": pl.Series(amounts, dtype=pl.Int64),
            "order": rng.integers(0, max(height, 1), count) + 0.5,
        }
    ).with_columns(amount=money(pl.col("amount"), region.exponent), currency=pl.lit(region.currency))


class _SheetWriter:
    """Row-at-a-time writer that starts a new sheet (with its header) when a sheet is full."""

    def __init__(self, path: Path) -> None:
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.date_format = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.sheet = None
        self.row = SHEET_ROWS + 1

    def write(self, record: dict) -> None:
        if self.row > SHEET_ROWS:
            self.sheet = self.book.add_worksheet(f"Transactions {len(self.book.worksheets()) + 1}")
            self.sheet.write_row(0, 0, HEADER)
            self.row = 1
        sheet, row = self.sheet, self.row
        assert sheet is not None
        if record.get("date_text") is not None:
            sheet.write_string(row, 0, record["date_text"])
        elif record.get("date") is not None:
            sheet.write_datetime(row, 0, record["date"], self.date_format)
        else:
            sheet.write_string(row, 0, "Total")
        values = [record.get(k) or "" for k in ("txn", "type", "status", "reason", "amount", "fee", "currency")]
        values += [record.get(k) or "" for k in ("external_id", "payer", "message", "ref_txn")]
        sheet.write_row(row, 1, [str(v) for v in values])  # text cells: write_row would not guess, but be explicit
        if record.get("amount_number") is not None:
            sheet.write_number(row, 5, record["amount_number"])
        self.row += 1

    def close(self) -> None:
        self.book.close()


@register("momo_export", "xlsx")
def write(path: Path, chunks: Iterator[pl.DataFrame], region: RegionConfig, rng: np.random.Generator) -> None:
    salt = int(rng.integers(0, 1_000_000))
    out = _SheetWriter(path)
    total = 0
    try:
        for chunk in chunks:
            rendered = pl.concat([_render(chunk, region, salt), _transfers(chunk.height, rng, region)], how="diagonal")
            for record in rendered.sort("order", maintain_order=True).iter_rows(named=True):
                out.write(record)
            total += int(chunk.filter(pl.col("status") == "success")["amount_minor"].sum())
        totals = pl.select(money(pl.lit(total, pl.Int64), region.exponent)).item()
        out.write({"amount": totals, "currency": region.currency})
    finally:
        out.close()
