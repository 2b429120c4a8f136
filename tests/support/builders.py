"""Hand-written inputs: adapter-shaped rows for the contract, Stripe export lines for Egypt, Paystack events for
Nigeria."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from regions import get_region
from regions.rails.base import ADAPTER_SCHEMA

KE = get_region("KE")
#: The region files kanda ships.
SHIPPED_REGIONS = Path(__file__).resolve().parents[2] / "regions" / "config"
WHEN = dt.datetime(2026, 10, 5, 21, 30, tzinfo=dt.UTC)  # 00:30 on 6 October in Nairobi


def adapter_rows(rows: list[dict]) -> pl.DataFrame:
    base = {
        "transaction_id": "QK1",
        "event_type": "sale",
        "status": "success",
        "creator_id": "KE-C0001",
        "product_id": "KE-P00001",
        "buyer_ref": None,
        "channel": "mpesa",
        "amount_minor": 150_000,
        "fee_minor": 2_250,
        "currency": "KES",
        "occurred_at": WHEN,
    }
    filled = [{**base, "source_row": i + 1, **row} for i, row in enumerate(rows)]
    frame = pl.DataFrame(filled, schema={"source_row": pl.Int64, **ADAPTER_SCHEMA})
    return frame.with_columns(raw_record=pl.struct(pl.col("transaction_id").alias("Receipt No")))


HEADER = (
    "id;Description;Created date (UTC);Amount;Amount Refunded;Currency;Converted Amount;Converted Currency;Fee;"
    "Status;Customer Email;Card Brand;kanda_ref (metadata)\n"
)


def stripe_file(folder: Path, name: str, lines: list[str]) -> Path:
    """A hand-written Stripe export for Egypt (semicolon-delimited, comma decimals)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


def paid(charge: str, when: str, amount: str = "250,00", status: str = "Paid", refunded: str = "0,00") -> str:
    return (
        f"{charge};Payment;{when};{amount};{refunded};egp;{amount};egp;3,75;{status};buyer@mail.example;Visa;"
        "EG-C0002.EG-P00005"
    )


def paystack_event(n: int, *, event: str = "charge.success", **data: object) -> dict:
    """A Paystack webhook document (a successful NGN card charge unless `data` says otherwise)."""
    d: dict[str, object] = {
        "id": 1000 + n,
        "status": "success",
        "reference": f"ps_{n:06d}",
        "amount": 500000,
        "fees": 7500,
        "paid_at": "2025-06-05T10:00:00.000Z",
        "created_at": "2025-06-05T09:59:00.000Z",
        "channel": "card",
        "currency": "NGN",
        "customer": {"email": "buyer@mail.example"},
        "metadata": {"kanda_ref": "NG-C0001.NG-P00001"},
    } | data
    return {"event": event, "data": d}


def region_file(folder: Path, shipped: str, **changes: str) -> Path:
    """A test region QX in `folder` (for `KANDA_REGIONS_DIR`): a shipped region's file with the given keys changed
    (its code, landing, rail, ...), so a test can read one region's files through another region's rail."""
    lines = []
    for line in (SHIPPED_REGIONS / f"{shipped}.yaml").read_text().splitlines():
        key = line.split(":", 1)[0]
        lines.append(f"{key}: {changes[key]}" if key in changes else line)
    folder.mkdir(parents=True)
    (folder / "qx.yaml").write_text("\n".join(lines) + "\n")
    return folder
