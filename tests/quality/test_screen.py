"""The screen passes exactly the rows pandera passes: a row it lets through unjudged must be one pandera accepts."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from quality.boundary import canonicalise, split_by_contract
from quality.screen import passes_contract
from tests.support.builders import KE, WHEN, adapter_rows

#: Every rule of the contract gets values on both sides of it: nulls, empty and over-long text, other regions'
#: codes, malformed ids, wrong signs, out-of-range money, times too early or in the future, a buyer_ref that is not
#: 64 characters long.
row_strategy = st.fixed_dictionaries(
    {
        "transaction_id": st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=6), st.just("x" * 129)),
        "event_type": st.sampled_from(["sale", "refund", "reversal", "chargeback", "bogus", None]),
        "status": st.sampled_from(["success", "failed", "pending", "", None]),
        "creator_id": st.sampled_from(["KE-C0001", "KE-C12", "NG-C0001", "KE-C00011", None]),
        "product_id": st.sampled_from(["KE-P00001", "KE-P1", "NG-P00001", None]),
        "buyer_ref": st.sampled_from([None, "a" * 64, "a" * 63, "b" * 65]),
        "channel": st.sampled_from(["mpesa", None, ""]),
        "amount_minor": st.one_of(
            st.none(), st.integers(-(10**13), 10**13), st.sampled_from([0, 10**12, -(10**12), 10**12 + 1])
        ),
        "fee_minor": st.one_of(st.none(), st.integers(-5, 10**6), st.just(10**12 + 1)),
        "currency": st.sampled_from(["KES", "NGN", "XXX", None]),
        "occurred_at": st.sampled_from(
            [
                WHEN,
                None,
                dt.datetime(2014, 12, 31, 23, 59, tzinfo=dt.UTC),
                dt.datetime(2015, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
            ]
        ),
    }
)


def contract_frame(rows: list[dict]) -> pl.DataFrame:
    return canonicalise(adapter_rows(rows), KE, source="mpesa_statement", source_file="s.csv", batch_id="b1")


@settings(max_examples=150, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=40))
def test_the_screen_agrees_with_pandera_row_by_row(rows):
    frame = contract_frame(rows)
    screened = passes_contract(frame)
    assert screened is not None
    accepted = set(split_by_contract(frame).valid["source_row"].to_list())
    assert frame.filter(screened)["source_row"].to_list() == sorted(accepted)


def test_a_clean_chunk_passes_whole_and_each_broken_rule_is_caught():
    rows = [
        {},
        {"transaction_id": "T2", "amount_minor": -5},
        {"transaction_id": "T3", "currency": "NGN"},
        {"transaction_id": "T4", "occurred_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
        {"transaction_id": "T5", "buyer_ref": "not-a-hash"},
    ]
    assert passes_contract(contract_frame(rows)).to_list() == [True, False, False, False, False]


def test_a_frame_not_shaped_like_the_contract_is_left_to_pandera():
    """An adapter bug (a wrong dtype) is pandera's to report: the screen does not judge such a frame at all."""
    frame = contract_frame([{}]).with_columns(pl.col("amount_minor").cast(pl.Float64))
    assert passes_contract(frame) is None
    assert passes_contract(contract_frame([{}]).drop("local_date")) is None
