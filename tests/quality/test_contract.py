"""The canonical contract and the boundary: bad rows leave with every reason, good rows pass untouched."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from quality.boundary import canonicalise, hold_unknown_creators, split_by_contract
from tests.support.builders import KE, WHEN, adapter_rows  # noqa: F401


def boundary(rows: list[dict]):
    frame = canonicalise(adapter_rows(rows), KE, source="mpesa_statement", source_file="s.csv", batch_id="b1")
    return split_by_contract(frame)


def reasons(split) -> dict[int, list[dict]]:
    return {row["source_row"]: json.loads(row["reasons"]) for row in split.quarantine.iter_rows(named=True)}


def test_valid_row_passes_with_local_date_and_event_id():
    split = boundary([{}])
    assert split.quarantine.is_empty()
    row = split.valid.row(0, named=True)
    assert row["local_date"] == dt.date(2026, 10, 6)  # Nairobi's day, not UTC's
    assert row["event_id"] == "QK1:sale:success"
    assert row["net_minor"] == 147_750


def test_each_broken_rule_is_named_with_column_and_value():
    split = boundary(
        [
            {"transaction_id": "ok"},
            {"transaction_id": "T2", "amount_minor": None},
            {"transaction_id": "T3", "event_type": "refund", "amount_minor": 500},
            {"transaction_id": "T4", "currency": "NGN"},
            {"transaction_id": "T5", "creator_id": "NG-C0001"},
            {"transaction_id": "T6", "status": "maybe"},
            {"transaction_id": "T7", "occurred_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
            {"transaction_id": "T8", "amount_minor": 5_000, "fee_minor": 5_001, "net_minor": -1},
        ]
    )
    assert split.valid["transaction_id"].to_list() == ["ok"]
    found = reasons(split)
    # the amount is named once; the net derived from it is not listed again as a second failure
    assert [(r["rule"], r["column"]) for r in found[2]] == [("missing_or_unreadable", "amount_minor")]
    assert {
        "rule": "amount_sign_matches_event_type",
        "column": "amount_minor",
        "value": "500",
        "severity": "error",
    } in found[3]
    assert {"rule": "currency_is_region_currency", "column": "currency", "value": "NGN", "severity": "error"} in found[
        4
    ]
    assert ("creator_in_region", "creator_id", "NG-C0001") in {(r["rule"], r["column"], r["value"]) for r in found[5]}
    assert any(r["column"] == "status" and r["value"] == "maybe" for r in found[6])
    assert any(r["rule"] == "not_in_future" for r in found[7])
    # a fee above the sale it was charged on (a unit or column error), named on the fee
    assert [(r["rule"], r["column"], r["value"]) for r in found[8]] == [("fee_within_amount", "fee_minor", "5001")]


def test_quarantine_keeps_raw_record_and_parsed_fields():
    split = boundary([{"transaction_id": "T9", "amount_minor": None}])
    row = split.quarantine.row(0, named=True)
    assert json.loads(row["raw_record"]) == {"Receipt No": "T9"}
    assert json.loads(row["parsed"])["transaction_id"] == "T9"


def test_unknown_creator_is_held_not_rejected():
    split = boundary([{"creator_id": "KE-C0001"}, {"transaction_id": "T2", "creator_id": "KE-C0999"}])
    held = hold_unknown_creators(split.valid, pl.Series(["KE-C0001"]))
    assert held.valid["creator_id"].to_list() == ["KE-C0001"]
    row = held.quarantine.row(0, named=True)
    assert row["hold"] == "unknown_creator"
    assert json.loads(row["reasons"])[0]["rule"] == "unknown_creator"


row_strategy = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["sale", "refund", "reversal", "chargeback", "bogus"]),
        "status": st.sampled_from(["success", "failed", "pending", ""]),
        "amount_minor": st.one_of(st.none(), st.integers(-(10**13), 10**13)),
        "fee_minor": st.one_of(st.none(), st.integers(-5, 10**6)),
        "currency": st.sampled_from(["KES", "NGN", "KES"]),
        "creator_id": st.sampled_from(["KE-C0001", "KE-C12", "NG-C0001", None]),
        "transaction_id": st.one_of(st.none(), st.text(min_size=0, max_size=5)),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=30))
def test_boundary_never_loses_or_doubles_a_row(rows):
    split = boundary(rows)
    assert split.valid.height + split.quarantine.height == len(rows)
    valid_rows = set(split.valid["source_row"].to_list())
    flagged_rows = set(split.quarantine["source_row"].to_list())
    assert not valid_rows & flagged_rows
    assert valid_rows | flagged_rows == set(range(1, len(rows) + 1))
    for row in split.quarantine.iter_rows(named=True):
        assert json.loads(row["reasons"]), "a quarantined row must say why"
