"""JazzCash IPN records (PK, `jazzcash_ipn`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from regions import get_region
from regions.rails import get_adapter
from regions.rails.jazzcash.writer import write
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_rejected,
    assert_round_trip,
    read_all,
    side_by_side,
    truth_frame,
    utc,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "jazzcash" / "samples" / "ipn_pk.jsonl"
REGION = get_region("PK")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/jazzcash/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
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
        ('{"event": "charge.success", "data": {"id": 1}}\n', "another rail's feed"),
        ('{"pp_TxnRefNo": "T1", "pp_Amount": "100"}\n{"pp_TxnRefNo": "T2", "pp_Am', "truncated or corrupt"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.jsonl", reason, content=content)


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "ipn.jsonl"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert_lines_accounted(frame, ignored, lines=len(path.read_text(encoding="utf-8").splitlines()), truth=truth)
    assert ignored == 3  # one health ping per chunk
    both = side_by_side(truth, frame)
    assert_round_trip(both)
    assert (both["got_fee_minor"] == 0).all()
