"""Amount and time parsing shared by the adapters: exact minor units, real-world separators, zones with DST."""

from __future__ import annotations

import datetime as dt
import hashlib

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regions.parsing import add_buyer_ref, major_to_minor, normalise_phone, utc_from_iso, utc_from_local


def parse(values: list[str], exponent: int, decimal: str = ".") -> list[int | None]:
    return (
        pl.DataFrame({"v": values})
        .select(major_to_minor(pl.col("v"), exponent, decimal=decimal).alias("v"))["v"]
        .to_list()
    )


@pytest.mark.parametrize(
    ("text", "exponent", "expected"),
    [
        ("10,000.00", 2, 1_000_000),
        ("1,00,000", 2, 10_000_000),  # lakh grouping
        ("৫০০.৫০", 2, 50_050),  # Bengali digits
        (" 42 ", 2, 4_200),
        ("-3.5", 2, -350),
        ("7.10", 2, 710),
        ("12.345", 2, None),  # more precision than the currency has
        ("500", 0, 500),  # UGX/XOF: no minor unit
        ("500.50", 0, None),
        ("N/A", 2, None),
        ("", 2, None),
        ("   ", 2, None),  # a blank cell (the empty half of a Paid In / Withdrawn pair), as every blank
        ("\u00a0", 2, None),
        ("184467440737098017.00", 2, None),  # wrapped around int64 to 250084 before: now null, quarantined
        ("184,467,440,737,098,017.00", 2, None),
        ("9999999999999999.99", 2, 999_999_999_999_999_999),  # 18 digits of minor units still fit exactly
        ("99999999999999999.99", 2, None),  # 19 digits: null rather than risked
        ("12,50", 2, None),  # neither a grouping nor this rail's decimal mark: not 1250
        ("1,2,3", 2, None),
        (" - 1 000.5 ", 2, -100_050),  # stray spaces, space grouping
        ("+5", 2, 500),
        ("1\u00a0000.00", 2, 100_000),
    ],
)
def test_major_to_minor(text, exponent, expected):
    assert parse([text], exponent) == [expected]


def test_comma_decimal_separator():
    assert parse(["1.234,56", "12,5"], 2, decimal=",") == [123_456, 1_250]


@given(st.integers(-(10**12), 10**12), st.sampled_from([0, 2, 3]))
def test_major_to_minor_round_trips_any_amount(minor, exponent):
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    text = f"{sign}{whole:,}" + (f".{frac:0{exponent}d}" if exponent else "")
    assert parse([text], exponent) == [minor]


def test_local_times_across_cairo_dst():
    values = ["2026-04-24 00:30:00", "2026-10-29 23:30:00", "2026-07-01 10:00:00"]
    got = pl.DataFrame({"t": values}).select(utc_from_local(pl.col("t"), "%Y-%m-%d %H:%M:%S", "Africa/Cairo"))
    first, ambiguous, summer = got["t"].to_list()
    assert first is None  # 00:30 does not exist on the night summer time starts: quarantine, do not guess
    assert ambiguous == dt.datetime(2026, 10, 29, 20, 30, tzinfo=dt.UTC)  # earlier of the two instants (+03:00)
    assert summer == dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC)  # +03:00 in summer


def test_iso_times_with_z_and_offsets():
    got = pl.DataFrame({"t": ["2025-02-11T10:42:20.000Z", "2025-02-11T10:42:20+01:00", "11/02/2025"]})
    values = got.select(utc_from_iso(pl.col("t")))["t"].to_list()
    assert values == [
        dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=dt.UTC),
        dt.datetime(2025, 2, 11, 9, 42, 20, tzinfo=dt.UTC),
        None,
    ]


def test_phone_normalisation_refuses_masked_and_mangled():
    values = ["0712345678", "+254712345678", "254712345678", "0****393", "2.547E+11"]
    got = pl.DataFrame({"p": values}).select(normalise_phone(pl.col("p"), "254"))["p"].to_list()
    assert got == ["254712345678"] * 3 + [None, None]


@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=50), st.text(min_size=1, max_size=30))
def test_buyer_ref_is_the_salted_sha256_of_the_contact(contacts, salt):
    """The reference stays the exact salted SHA-256 a store already holds for a buyer (any implementation must
    agree with hashlib), so that repeat buyers and duplicates are still recognised; a missing contact has none."""
    frame = add_buyer_ref(pl.DataFrame({"contact": contacts, "n": range(len(contacts))}, strict=False), "contact", salt)
    expected = [None if c is None else hashlib.sha256((salt + c).encode()).hexdigest() for c in contacts]
    assert frame.columns == ["n", "buyer_ref"]
    assert frame["buyer_ref"].to_list() == expected
