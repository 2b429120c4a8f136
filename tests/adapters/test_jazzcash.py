"""JazzCash IPN records (PK, `jazzcash_ipn`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kanda.synthetic.core import DirtMix, make_registry, truth_chunks
from kanda.synthetic.writers.jazzcash import write
from regions import get_region
from regions.adapters.base import FileRejected, ReadContext
from regions.adapters.jazzcash import ADAPTER

SAMPLE = Path(__file__).parents[1] / "samples" / "jazzcash" / "ipn_pk.jsonl"
REGION = get_region("PK")
CTX = ReadContext(REGION, salt="test-salt", batch_rows=500)


def read_all(path: Path, ctx: ReadContext = CTX) -> tuple[pl.DataFrame, int]:
    chunks = list(ADAPTER.read(path, ctx))
    return pl.concat([c.frame for c in chunks]).sort("source_row"), sum(c.ignored for c in chunks)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(SAMPLE)
    assert ignored == 1  # the listener health ping; the blank line is not a record
    assert frame["source_row"].to_list() == [1, 2, *range(4, 14)]
    assert frame["amount_minor"].to_list() == [
        150000,
        150000,
        2500050,
        2500050,
        99900,
        50000,
        -150000,
        -2500050,
        None,
        70000,
        70000,
        70000,
    ]
    assert frame["event_type"].to_list() == ["sale"] * 6 + ["refund", "reversal"] + ["sale"] * 4
    assert frame["status"].to_list() == [
        "success",
        "success",
        "pending",
        "success",
        "failed",
        "failed",
        "success",
        "success",
        "success",
        "success",
        "pending",
        None,
    ]
    # Asia/Karachi is UTC+5 all year.
    assert frame["occurred_at"].to_list() == [
        utc(2024, 3, 1, 5, 15),
        utc(2024, 3, 1, 5, 15),
        utc(2024, 3, 1, 23),
        utc(2024, 3, 2, 0, 15),
        utc(2024, 3, 2, 4, 9, 9),
        utc(2024, 3, 2, 5),
        utc(2024, 3, 2, 19, 5),
        utc(2024, 3, 3, 7),
        utc(2024, 3, 3, 6, 11, 11),
        None,
        utc(2024, 3, 3, 8, 13, 13),
        utc(2024, 3, 3, 9, 14, 14),
    ]
    assert frame["creator_id"].to_list() == [
        "PK-C0001",
        "PK-C0001",
        "PK-C0002",
        "PK-C0002",
        "PK-C0003",
        "PK-C0003",
        "PK-C0001",
        "PK-C0002",
        "PK-C0004",
        "PK-C0004",
        None,
        "PK-C0005",
    ]
    assert frame["product_id"][2] == "PK-P00006"
    assert frame["transaction_id"].to_list()[:4] == ["T20240301101500"] * 2 + ["T20240301230000"] * 2
    assert frame["transaction_id"][6] == "T20240301101500" and frame["transaction_id"][7] == "T20240301230000"
    assert frame["channel"].to_list()[:6] == ["mwallet", "mwallet", "otc", "otc", "mpay", "mwallet"]
    assert frame["channel"][6] is None
    assert set(frame["fee_minor"]) == {0} and set(frame["currency"]) == {"PKR"}
    refs = frame["buyer_ref"]
    assert refs[4] is None and refs[10] is None  # masked and Excel-mangled phones
    assert refs[0] == refs[6] and refs[2] == refs[3] == refs[7]  # +92 300..., 92300... are one buyer
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv()
    assert "3011234567" not in plain and "3001234567" not in plain
    assert frame["raw_record"].struct.field("ppmpf_1")[0] == "03011234567"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ('{"event": "charge.success", "data": {"id": 1}}\n', "not a JazzCash IPN file"),
        ('{"pp_TxnRefNo": "T1", "pp_Amount": "100"}\n{"pp_TxnRefNo": "T2", "pp_Am', "truncated or corrupt"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(FileRejected, match=reason):
        read_all(path)


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = pl.concat(
        truth_chunks(
            REGION,
            make_registry(7),
            start=dt.date(2024, 3, 1),
            days=3,
            rows=3000,
            seed=11,
            dirt=DirtMix().scaled(3),
            chunk_rows=1200,
        )
    )
    path = tmp_path / "ipn.jsonl"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(path)
    data_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert frame.height + ignored == data_lines
    assert frame.height == truth.height and ignored == 3  # one health ping per chunk
    both = truth.hstack(frame.select(pl.all().name.prefix("got_")))
    _assert_round_trip(both)
    assert (both["got_fee_minor"] == 0).all()


def _assert_round_trip(both: pl.DataFrame) -> None:
    clean = both.filter(pl.col("corruption").is_null())
    assert clean["got_occurred_at"].dt.truncate("1s").eq_missing(clean["occurred_at"].dt.truncate("1s")).all()
    for column in ("amount_minor", "event_type", "status", "creator_id", "product_id"):
        assert clean[f"got_{column}"].eq_missing(clean[column]).all(), column
    damage = {"bad_amount": "got_amount_minor", "bad_time": "got_occurred_at", "missing_reference": "got_creator_id"}
    for kind, column in damage.items():
        damaged = both.filter(pl.col("corruption") == kind)
        assert damaged.height > 0 and damaged[column].null_count() == damaged.height
    pairs = both.select("txn_no", "got_transaction_id").unique()
    assert pairs.height == both["txn_no"].n_unique() == both["got_transaction_id"].n_unique()
    assert both["got_buyer_ref"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
