"""What the adapter tests share: reading a file into one frame, a ground-truth frame, and the round-trip checks.

Each adapter test keeps what is particular to its format (the sample values, the ignored-line count, how fees
come back, how lines are counted); the checks here are the ones every format must pass the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from quality.boundary import Split, canonicalise, split_by_contract
from regions import RegionConfig
from regions.rails.base import Adapter, FileRejected, ReadContext
from regions.synthetic.core import DirtMix, make_registry, truth_chunks

SALT = "test-salt"

#: Truth columns a clean row must bring back unchanged.
COMPARED = ("amount_minor", "event_type", "status", "creator_id", "product_id")

#: For each kind of damage a writer does, the column that must come back null.
DAMAGE: Mapping[str, str] = {
    "bad_amount": "amount_minor",
    "bad_time": "occurred_at",
    "missing_reference": "creator_id",
}

#: The key one event has in the truth and in an adapter's frame.
EVENT_KEY = ("transaction_id", "event_type", "status")


def utc(*args: int) -> dt.datetime:
    """`datetime(*args)` in UTC."""
    return dt.datetime(*args, tzinfo=dt.UTC)


def read_all(adapter: Adapter, path: Path, region: RegionConfig, batch_rows: int = 500) -> tuple[pl.DataFrame, int]:
    """Read `path` with `adapter`; return every chunk's rows in the order read, and the ignored lines summed."""
    chunks = list(adapter.read(path, ReadContext(region=region, salt=SALT, batch_rows=batch_rows)))
    return pl.concat([c.frame for c in chunks]), sum(c.ignored for c in chunks)


def through_contract(frame: pl.DataFrame, region: RegionConfig) -> Split:
    """An adapter frame through the ingestion boundary (canonicalise, then the contract): loaded and quarantined."""
    canonical = canonicalise(frame, region, source=region.source_format, source_file="test", batch_id="test")
    return split_by_contract(canonical)


def quarantine_rules(split: Split, source_row: int) -> set[tuple[str, str]]:
    """(rule, column) of every reason the row(s) read from line `source_row` were quarantined for."""
    reasons = split.quarantine.filter(pl.col("source_row") == source_row)["reasons"]
    return {(r["rule"], r["column"]) for text in reasons for r in json.loads(text)}


def row(frame: pl.DataFrame, source_row: int) -> dict[str, Any]:
    """The row of `frame` read from line `source_row`, as a dict."""
    return frame.filter(pl.col("source_row") == source_row).row(0, named=True)


def assert_same_but_source_row(copy: Mapping[str, Any], original: Mapping[str, Any]) -> None:
    """A duplicate delivery maps to the identical row: only `source_row` differs."""
    assert {k: v for k, v in copy.items() if k != "source_row"} == {
        k: v for k, v in original.items() if k != "source_row"
    }


def read_written(adapter: Adapter, region: RegionConfig, path: Path, content: str) -> tuple[pl.DataFrame, int]:
    """`path` written with `content`, then read as `read_all` reads it: a hand-written file in one step."""
    path.write_text(content)
    return read_all(adapter, path, region)


def assert_rejected(
    adapter: Adapter, region: RegionConfig, path: Path, reason: str, *, content: str | bytes | None = None
) -> None:
    """Reading `path` must raise `FileRejected` with a reason matching the regex `reason`.

    With `content`, `path` is first written with it (as text for a `str`, as is for `bytes`).
    """
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(FileRejected, match=reason):
        read_all(adapter, path, region)


def assert_no_contact_leaks(frame: pl.DataFrame, contacts: Iterable[str], *, lowercase: bool = False) -> None:
    """No column but `raw_record` holds any of `contacts` (compared lowercased when `lowercase`)."""
    text = pl.all().cast(pl.String)
    visible = frame.drop("raw_record").select(text.str.to_lowercase() if lowercase else text)
    for contact in contacts:
        leaked = visible.select(pl.any_horizontal(pl.all().str.contains(contact, literal=True))).to_series()
        assert not leaked.any(), contact


def truth_frame(
    region: RegionConfig,
    *,
    seed: int,
    registry_seed: int | None = None,
    rows: int = 3000,
    days: int = 3,
    start: dt.date = dt.date(2025, 3, 1),
    dirt_scale: float = 3,
    chunk_rows: int = 250_000,
) -> pl.DataFrame:
    """Ground truth for `region` as one frame: `truth_chunks` with dirt scaled by `dirt_scale`.

    The product registry is `make_registry(registry_seed)`, by default from `seed`.
    """
    registry = make_registry(seed if registry_seed is None else registry_seed)
    chunks = truth_chunks(
        region,
        registry,
        start=start,
        days=days,
        rows=rows,
        seed=seed,
        dirt=DirtMix().scaled(dirt_scale),
        chunk_rows=chunk_rows,
    )
    return pl.concat(chunks)


def assert_lines_accounted(
    frame: pl.DataFrame, ignored: int, *, lines: int, truth: pl.DataFrame, folded: bool = False
) -> None:
    """Every data line is a row or an ignored line, there is one row per truth row, and no line is read twice.

    With `folded` (exports of one row per purchase, `regions.synthetic.folded`) a line may yield a sale and the
    money that went back on it: every line is still read or ignored, each yields at most one event of a type.
    """
    if folded:
        assert frame["source_row"].n_unique() + ignored == lines
        assert frame.height == truth.height
        assert frame.select("source_row", "event_type").is_unique().all()
        return
    assert frame.height + ignored == lines
    assert frame.height == truth.height and frame["source_row"].is_unique().all()


def side_by_side(truth: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Truth and the rows read back, line for line (the writer keeps truth order): read columns prefixed `got_`."""
    return truth.hstack(frame.select(pl.all().name.prefix("got_")))


def match_events(truth: pl.DataFrame, frame: pl.DataFrame, transaction_id: pl.Expr) -> pl.DataFrame:
    """Truth events joined to the rows read back on (transaction id, event type, status); read columns `got_`.

    For formats that do not keep truth order. `transaction_id` computes, from the truth's `txn_no`, the id the
    writer gave the transaction. Every distinct truth event must be found, and no read event may be left over.
    """
    expected = truth.unique(["txn_no", "event_type", "status"], keep="first").with_columns(
        transaction_id=transaction_id
    )
    got = frame.unique(list(EVENT_KEY), keep="first").select(pl.all().name.prefix("got_"))
    both = expected.join(
        got, left_on=list(EVENT_KEY), right_on=[f"got_{k}" for k in EVENT_KEY], how="left", coalesce=False
    )
    assert both["got_source_row"].null_count() == 0 and both.height == got.height
    return both


def assert_round_trip(
    both: pl.DataFrame,
    *,
    compare: Iterable[str] = COMPARED,
    damage: Mapping[str, str] = DAMAGE,
    whole_seconds: bool = False,
) -> None:
    """Check truth against what was read back (`both`, from `side_by_side` or `match_events`).

    Clean rows match the truth in `occurred_at` to the second and in every `compare` column (nulls included);
    with `whole_seconds` the format carries whole seconds, so the time read must itself be whole seconds. Rows
    with each kind of damage exist and have a null in that kind's column. Each truth transaction has one
    transaction id of its own, and buyer references are 64-hex hashes.
    """
    clean = both.filter(pl.col("corruption").is_null())
    got_time = clean["got_occurred_at"] if whole_seconds else clean["got_occurred_at"].dt.truncate("1s")
    assert got_time.eq_missing(clean["occurred_at"].dt.truncate("1s")).all()
    for column in compare:
        assert clean[f"got_{column}"].eq_missing(clean[column]).all(), column
    for kind, column in damage.items():
        damaged = both.filter(pl.col("corruption") == kind)
        assert damaged.height > 0 and damaged[f"got_{column}"].null_count() == damaged.height, kind
    pairs = both.select("txn_no", "got_transaction_id").unique()
    assert pairs.height == both["txn_no"].n_unique() == both["got_transaction_id"].n_unique()
    assert both["got_buyer_ref"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
