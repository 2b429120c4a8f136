"""The ground truth behind synthetic files: a creator registry, a product catalogue and a stream of sale events.

Format writers (`regions.synthetic.writers`) render the truth in each rail's native format, adding that format's own
dirt. The truth is generated in chunks with numpy, deterministic by (seed, region, chunk), so tens of millions of
rows stream to disk without ever being held in memory, and a test can know exactly what a file should yield.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig, all_regions

#: Typical product price range per currency, in major units.
PRICE_RANGE: dict[str, tuple[int, int]] = {
    "NGN": (1_500, 60_000),
    "GHS": (20, 600),
    "KES": (200, 8_000),
    "TZS": (5_000, 150_000),
    "PKR": (500, 20_000),
    "BDT": (200, 6_000),
    "EGP": (100, 3_000),
    # Zero-decimal currencies (ISO 4217 exponent 0): whole francs and dong, priced as local creators price them.
    "XOF": (1_000, 30_000),
    "XAF": (1_000, 30_000),
    "VND": (50_000, 1_500_000),
    "GMD": (100, 3_000),
    "MWK": (2_000, 60_000),
    "ZMW": (30, 900),
    "ETB": (100, 4_000),
    "INR": (99, 5_000),
    "ZAR": (30, 900),
}
#: For a currency not listed (a region added from a spec): a price range that is plausible in most currencies.
DEFAULT_PRICE_RANGE = (500, 20_000)
FEE_BASIS_POINTS = 150  # 1.5 %

#: The corruption kinds a truth row can carry; each writer renders them in its own format's way.
CORRUPTIONS = ("bad_amount", "bad_time", "missing_reference")


@dataclass(frozen=True)
class DirtMix:
    """Share of each kind of dirt, per sale row. Defaults are roughly what public threads report for real feeds."""

    duplicate: float = 0.02
    corrupt: float = 0.01
    unknown_creator: float = 0.005
    pending_first: float = 0.03
    failed: float = 0.05
    refund: float = 0.01
    reversal: float = 0.005

    @classmethod
    def clean(cls) -> DirtMix:
        return cls(0, 0, 0, 0, 0, 0, 0)

    def scaled(self, factor: float) -> DirtMix:
        return DirtMix(*(min(1.0, getattr(self, f) * factor) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class Registry:
    creators: pl.DataFrame
    products: pl.DataFrame

    def for_region(self, region: str) -> Registry:
        return Registry(
            self.creators.filter(pl.col("region") == region), self.products.filter(pl.col("region") == region)
        )

    def write(self, folder: Path, regions: Iterable[str] | None = None) -> None:
        """The registry files; with `regions`, only those regions' records are replaced and every other region's
        records are kept as they are (an operator's own creators included)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("creators.csv", self.creators), ("products.csv", self.products)):
            path = folder / name
            if regions is None or not path.exists():
                frame = frame if regions is None else frame.filter(pl.col("region").is_in(list(regions)))
                frame.write_csv(path)
                continue
            chosen = set(regions)
            # utf-8-sig: a registry saved by a spreadsheet starts with a BOM, which would rename its first column
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                kept = [r for r in reader if (r.get("region") or "").strip().upper() not in chosen]
                existing = list(reader.fieldnames or [])
            new = frame.filter(pl.col("region").is_in(sorted(chosen)))
            # every column either side has (an operator's own, such as display_name, included), the file's order first
            columns = existing + [c for c in new.columns if c not in existing]
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept)
            writer.writerows(new.cast(pl.String).iter_rows(named=True))
            path.write_text(buffer.getvalue(), encoding="utf-8")


_FIRST = ["Amina", "Chidi", "Kwame", "Wanjiru", "Neema", "Ayesha", "Rahim", "Mona", "Tunde", "Akosua", "Baraka"]
_LAST = ["Okafor", "Mensah", "Otieno", "Mushi", "Khan", "Hossain", "Hassan", "Adeyemi", "Boateng", "Mwangi"]


def make_registry(seed: int, creators_per_region: int = 12, products_per_creator: int = 4) -> Registry:
    """Creators and their products for every configured region, deterministic by seed."""
    creators, products = [], []
    for index, region in enumerate(all_regions().values()):
        rng = np.random.default_rng([seed, index, 0])
        low, high = PRICE_RANGE.get(region.currency, DEFAULT_PRICE_RANGE)
        scale = 10**region.exponent
        for c in range(1, creators_per_region + 1):
            creator_id = f"{region.code}-C{c:04d}"
            first, last = _FIRST[rng.integers(len(_FIRST))], _LAST[rng.integers(len(_LAST))]
            creators.append(
                {
                    "creator_id": creator_id,
                    "region": region.code,
                    "name": f"{first} {last}",
                    "email": f"{first.lower()}.{last.lower()}{c}@creators.example",
                    "language": region.language,
                    "locale": region.locale,
                    "currency": region.currency,
                }
            )
            for p in range(products_per_creator):
                number = (c - 1) * products_per_creator + p + 1
                price = int(rng.integers(low, high)) // 50 * 50 or low
                products.append(
                    {
                        "product_id": f"{region.code}-P{number:05d}",
                        "creator_id": creator_id,
                        "region": region.code,
                        "title": f"{_TITLES[(number * 7 + index) % len(_TITLES)]} #{number}",
                        "price_minor": price * scale,
                        "currency": region.currency,
                    }
                )
    return Registry(pl.DataFrame(creators), pl.DataFrame(products))


_TITLES = [
    "Afrobeats drum kit",
    "Lightroom presets",
    "Swahili for beginners",
    "Ebook: cooking jollof",
    "Notion planner",
    "Photography course",
    "Beat pack vol.",
    "Poster bundle",
    "Coding bootcamp notes",
]

TRUTH_SCHEMA = {
    "txn_no": pl.Int64,
    "event_type": pl.String,
    "status": pl.String,
    "creator_id": pl.String,
    "product_id": pl.String,
    "buyer_email": pl.String,
    "buyer_phone": pl.String,
    "amount_minor": pl.Int64,
    "fee_minor": pl.Int64,
    "occurred_at": pl.Datetime("us", "UTC"),
    "corruption": pl.String,
    "is_duplicate": pl.Boolean,
    "unknown_creator": pl.Boolean,
}


def truth_chunks(
    region: RegionConfig,
    registry: Registry,
    *,
    start: dt.date,
    days: int,
    rows: int,
    seed: int,
    dirt: DirtMix = DirtMix(),
    chunk_rows: int = 250_000,
    txn_offset: int = 0,
) -> Iterator[pl.DataFrame]:
    """Sale events for one region in time order within each chunk, about `rows` rows in all.

    Each truth row is one line the rail would deliver: sales (some failed, some pending then successful), later
    refunds and reversals of earlier sales (negative amounts), and exact duplicate deliveries (`is_duplicate`).
    `corruption` names the damage a writer must do to that row; `unknown_creator` rows carry a creator id that is
    absent from the registry (a creator who is not onboarded yet).
    """
    products = registry.for_region(region.code).products
    if products.is_empty():
        raise ValueError(f"registry has no products for region {region.code}")
    product_ids = products["product_id"].to_numpy()
    creator_of = products["creator_id"].to_numpy()
    prices = products["price_minor"].to_numpy()
    local_start = dt.datetime.combine(start, dt.time(), tzinfo=region.tz).astimezone(dt.UTC)
    span_us = days * 86_400_000_000
    region_index = list(all_regions()).index(region.code)
    written, chunk_index = 0, 0
    while written < rows:
        n = min(chunk_rows, rows - written)
        rng = np.random.default_rng([seed, region_index, chunk_index + 1])
        yield _truth_chunk(
            rng, n, txn_offset + written, product_ids, creator_of, prices, local_start, span_us, dirt, region
        )
        written += n
        chunk_index += 1


def _truth_chunk(rng, n, offset, product_ids, creator_of, prices, local_start, span_us, dirt, region):
    # Sales first; extra event rows (pending-first, refunds, reversals, duplicates) replace sale rows so that the
    # chunk keeps exactly n lines.
    pick = rng.integers(0, len(product_ids), n)
    # Busier in local afternoons/evenings: a triangular draw over each day.
    day = rng.integers(0, max(1, span_us // 86_400_000_000), n)
    hour_us = (rng.triangular(0, 15, 24, n) * 3_600_000_000).astype(np.int64)
    offsets = np.minimum(day * 86_400_000_000 + hour_us, span_us - 1)
    txn = offset + np.arange(n, dtype=np.int64) + 1
    status = np.where(rng.random(n) < dirt.failed, "failed", "success").astype(object)
    event = np.full(n, "sale", dtype=object)
    amount = prices[pick].astype(np.int64)
    creators = creator_of[pick].astype(object)
    products = product_ids[pick].astype(object)
    occurred = offsets.copy()

    roll = rng.random(n)
    cuts = np.cumsum([dirt.duplicate, dirt.pending_first, dirt.refund, dirt.reversal])
    is_dup = roll < cuts[0]
    pending = (roll >= cuts[0]) & (roll < cuts[1])
    refund = (roll >= cuts[1]) & (roll < cuts[2])
    reversal = (roll >= cuts[2]) & (roll < cuts[3])
    # Each special row refers back to the row before it, which must be a plain sale (never another special row).
    prev_special = np.concatenate([[True], (roll < cuts[3])[:-1]])
    is_dup, pending, refund, reversal = (m & ~prev_special for m in (is_dup, pending, refund, reversal))
    ref = np.maximum(np.arange(n) - 1, 0)
    for mask, kind in ((is_dup, None), (pending, "pending"), (refund, "refund"), (reversal, "reversal")):
        idx = np.flatnonzero(mask)
        src = ref[idx]
        txn[idx], creators[idx], products[idx] = txn[src], creators[src], products[src]
        if kind is None:  # an exact redelivery of the previous line
            event[idx], status[idx], amount[idx], occurred[idx] = event[src], status[src], amount[src], occurred[src]
        elif kind == "pending":  # the previous sale arrives first as pending, then succeeds
            event[idx], status[idx], amount[idx] = "sale", "pending", amount[src]
            occurred[idx] = np.maximum(occurred[src] - 60_000_000, 0)
            status[src] = "success"
        else:  # a refund or reversal of the previous (successful) sale, hours later
            status[src] = "success"
            event[idx], status[idx], amount[idx] = kind, "success", -amount[src]
            occurred[idx] = np.minimum(occurred[src] + rng.integers(1, 48, len(idx)) * 3_600_000_000, span_us - 1)
    fee = np.where(event == "sale", (np.abs(amount) * FEE_BASIS_POINTS + 5_000) // 10_000, 0)
    # Failed sales carry no fee; neither does money going back.
    fee = np.where(status == "failed", 0, fee)
    unknown = (rng.random(n) < dirt.unknown_creator) & (event == "sale") & ~is_dup
    creators = np.where(unknown, f"{region.code}-C9" + np.char.zfill((txn % 1000).astype(str), 3), creators)
    corrupt = (rng.random(n) < dirt.corrupt) & ~is_dup & ~unknown
    corruption = np.where(corrupt, np.array(CORRUPTIONS, dtype=object)[rng.integers(0, len(CORRUPTIONS), n)], None)
    buyer = rng.integers(1, 10_000_000, n)
    email = np.char.add(np.char.add("buyer", buyer.astype(str)), "@mail.example")
    phone = np.char.add("07", np.char.zfill((buyer % 100_000_000).astype(str), 8))
    start_us = int(local_start.timestamp() * 1_000_000)
    frame = pl.DataFrame(
        {
            "txn_no": txn,
            "event_type": event.astype(str),
            "status": status.astype(str),
            "creator_id": creators.astype(str),
            "product_id": products.astype(str),
            "buyer_email": email,
            "buyer_phone": phone,
            "amount_minor": amount,
            "fee_minor": fee.astype(np.int64),
            "occurred_at": occurred + start_us,
            "corruption": pl.Series(corruption.tolist(), dtype=pl.String),
            "is_duplicate": is_dup,
            "unknown_creator": unknown,
        }
    )
    return frame.with_columns(pl.col("occurred_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")).cast(
        TRUTH_SCHEMA  # type: ignore[arg-type]
    )
