"""Amount and time parsing shared by the adapters: exact minor units, real-world separators, zones with DST."""

from __future__ import annotations

import datetime as dt
import hashlib

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regions.parsing import (
    add_buyer_ref,
    major_to_minor,
    naive_datetime,
    normalise_phone,
    utc_from_epoch,
    utc_from_iso,
    utc_from_local,
)
from regions.rails.bkash.times import bkash_time_to_utc


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
        ("1.000", 0, None),  # XOF: a thousand in a French-locale export, or one franc; never guessed
        ("12.500", 2, None),  # 12.50 or 12,500: three digits after the mark may be a thousands group
        ("5.00", 0, 5),  # zeros beyond the exponent, not shaped like a group, are still exact
        ("5.0000", 2, 500),
        ("1.000", 3, 1_000),  # KWD and other three-decimal currencies: the fraction it has
        ("1,250.000", 2, 125_000),  # grouped already: the three digits are a fraction, zeros, exact
        ("0.000", 0, 0),  # a lone zero before them: no thousand to mean
        ("-12.000", 0, None),  # a sign does not change what the digits may mean
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


@pytest.mark.parametrize("exponent", [4, 5, 6])
def test_large_amounts_in_many_decimal_currencies_are_exact_or_unreadable_never_wrapped(exponent):
    """Four-decimal units (CLF, UYW): 15 integer digits times 10^4 no longer fit int64, and wrapped to a negative
    number of the wrong size."""
    for text in ["922337203685478", "999999999999999", "99,999,999,999,999"]:
        (got,) = parse([text], exponent)
        digits = text.replace(",", "")
        assert got is None or got == int(digits) * 10**exponent, text
    assert parse(["12,345.6789"], 4) == [123_456_789]


def test_epoch_times_out_of_range_are_unreadable_not_wrapped_to_a_plausible_day():
    june = 1_780_272_000  # 2026-06-01 00:00 UTC
    frame = pl.DataFrame({"s": [str(june), str(2**58 + june), "9223372036855", "-5"]})
    seconds = frame.select(utc_from_epoch(pl.col("s"), "s"))["s"].to_list()
    assert seconds == [dt.datetime(2026, 6, 1, tzinfo=dt.UTC), None, None, None]
    millis = pl.DataFrame({"ms": [str(june * 1000), str(2**61 + june * 1000)]})
    assert millis.select(utc_from_epoch(pl.col("ms"), "ms"))["ms"].to_list() == [
        dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        None,
    ]


def test_local_times_across_cairo_dst():
    values = ["2026-04-24 00:30:00", "2026-10-29 23:30:00", "2026-07-01 10:00:00"]
    got = pl.DataFrame({"t": values}).select(utc_from_local(pl.col("t"), "%Y-%m-%d %H:%M:%S", "Africa/Cairo"))
    first, ambiguous, summer = got["t"].to_list()
    assert first is None  # 00:30 does not exist on the night summer time starts: quarantine, do not guess
    # 23:30 happens twice that night (+03:00, then +02:00): either instant is plausible and one is an hour off, so
    # the row is quarantined rather than given the earlier one
    assert ambiguous is None
    assert summer == dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC)  # +03:00 in summer


def test_iso_times_with_z_and_offsets():
    got = pl.DataFrame({"t": ["2025-02-11T10:42:20.000Z", "2025-02-11T10:42:20+01:00", "11/02/2025"]})
    values = got.select(utc_from_iso(pl.col("t")))["t"].to_list()
    assert values == [
        dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=dt.UTC),
        dt.datetime(2025, 2, 11, 9, 42, 20, tzinfo=dt.UTC),
        None,
    ]


MPESA_TIMES = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M:%S"]
MOMO_TIMES = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"]
#: How each time family is read: (name, expression of column "t"); every rail's time goes through one of these.
TIME_READERS = {
    "local, M-Pesa formats (Nairobi)": lambda: utc_from_local(pl.col("t"), MPESA_TIMES, "Africa/Nairobi"),
    "local, MoMo formats with fractions (Accra)": lambda: utc_from_local(pl.col("t"), MOMO_TIMES, "Africa/Accra"),
    "local, compact JazzCash/VNPay (Karachi)": lambda: utc_from_local(pl.col("t"), "%Y%m%d%H%M%S", "Asia/Karachi"),
    "naive UTC, Stripe/Gumroad": lambda: naive_datetime(pl.col("t"), ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]),
    "naive, %T": lambda: naive_datetime(pl.col("t"), ["%d.%m.%Y %T"]),
    "naive, compact with a T": lambda: naive_datetime(pl.col("t"), ["%Y%m%dT%H%M%S"]),
    "ISO with Z or an offset": lambda: utc_from_iso(pl.col("t")),
    "bKash GMT+0600": lambda: bkash_time_to_utc(pl.col("t")),
}


def read_times(reader: str, values: list[str]) -> list[dt.datetime | None]:
    got = pl.DataFrame({"t": values}).select(TIME_READERS[reader]().alias("t"))["t"].to_list()
    return [v if v is None or v.tzinfo is None else v.astimezone(dt.UTC) for v in got]


def nairobi(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC) - dt.timedelta(hours=3)


@pytest.mark.parametrize(
    ("reader", "sixty", "valid", "expected"),
    [
        (
            "local, M-Pesa formats (Nairobi)",
            "2026-12-04 23:59:60",
            "2026-12-04 23:59:59",
            nairobi(2026, 12, 4, 23, 59, 59),
        ),
        ("local, M-Pesa formats (Nairobi)", "2026-12-04 12:32:60", "2026-12-05 00:00:00", nairobi(2026, 12, 5)),
        ("local, M-Pesa formats (Nairobi)", "04/12/2026 23:59:60", "04/12/2026 23:59", nairobi(2026, 12, 4, 23, 59)),
        ("local, M-Pesa formats (Nairobi)", "04-12-2026 23:59:60", "04-12-2026 23:59:00", nairobi(2026, 12, 4, 23, 59)),
        (
            "local, MoMo formats with fractions (Accra)",
            "2026-12-04 23:59:60.500",
            "2026-12-04 23:59:00.500",
            dt.datetime(2026, 12, 4, 23, 59, 0, 500_000, tzinfo=dt.UTC),
        ),
        (
            "local, MoMo formats with fractions (Accra)",
            "2026-12-04 23:59:60",
            "2026-12-04 23:59",
            dt.datetime(2026, 12, 4, 23, 59, tzinfo=dt.UTC),
        ),
        (
            "local, MoMo formats with fractions (Accra)",
            "04/12/2026 23:59:60",
            "04/12/2026 23:59:00",
            dt.datetime(2026, 12, 4, 23, 59, tzinfo=dt.UTC),
        ),
        (
            "local, compact JazzCash/VNPay (Karachi)",
            "20261204235960",
            "20261204235959",
            dt.datetime(2026, 12, 4, 18, 59, 59, tzinfo=dt.UTC),
        ),
        ("naive UTC, Stripe/Gumroad", "2026-12-04 23:59:60", "2026-12-04 23:59", dt.datetime(2026, 12, 4, 23, 59)),
        ("naive, %T", "04.12.2026 23:59:60", "04.12.2026 23:59:00", dt.datetime(2026, 12, 4, 23, 59)),
        ("naive, compact with a T", "20261204T235960", "20261204T000000", dt.datetime(2026, 12, 4)),
        (
            "ISO with Z or an offset",
            "2026-12-04T23:59:60Z",
            "2026-12-04T23:59:00Z",
            dt.datetime(2026, 12, 4, 23, 59, tzinfo=dt.UTC),
        ),
        (
            "ISO with Z or an offset",
            "2026-12-04T23:59:60.000Z",
            "2026-12-05T00:00:00.000Z",
            dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
        ),
        (
            "ISO with Z or an offset",
            "2026-12-04T23:59:60+03:00",
            "2026-12-04T23:59:59+03:00",
            nairobi(2026, 12, 4, 23, 59, 59),
        ),
        (
            "bKash GMT+0600",
            "2026-12-04T23:59:60:000 GMT+0600",
            "2026-12-04T23:59:00:000 GMT+0600",
            dt.datetime(2026, 12, 4, 17, 59, tzinfo=dt.UTC),
        ),
    ],
)
def test_a_second_of_60_is_unreadable_not_the_next_minute(reader, sixty, valid, expected):
    """Polars read second 60 and moved it into the next minute, often across midnight into the next local day; it
    is null now (quarantined as unreadable, like Feb 30 or 24:00:00), and the times around it read as before."""
    assert read_times(reader, [sixty, valid]) == [None, expected]


@pytest.mark.parametrize(
    ("reader", "short"),
    [
        ("local, compact JazzCash/VNPay (Karachi)", "2026120412320"),  # read as 12:32:00 before
        ("local, compact JazzCash/VNPay (Karachi)", "2026120412329"),  # read as 12:32:09
        ("local, compact JazzCash/VNPay (Karachi)", "2026120412 320"),  # chrono skips the space before a number
        ("naive, compact with a T", "20261204T12320"),
    ],
)
def test_a_compact_time_with_a_digit_missing_is_unreadable(reader, short):
    full = "20261204123200" if "JazzCash" in reader else "20261204T123200"
    expected = (
        dt.datetime(2026, 12, 4, 7, 32, tzinfo=dt.UTC) if "JazzCash" in reader else dt.datetime(2026, 12, 4, 12, 32)
    )
    assert read_times(reader, [short, full]) == [None, expected]


@given(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 12, 31)),
    st.sampled_from(["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%Y%m%d%H%M%S", "%d.%m.%Y %H:%M:%S.%f"]),
)
def test_every_real_time_still_reads_as_itself(when, fmt):
    """The checks for second 60 and short compact values never null (or move) a real time, seconds 0 included."""
    for value in (when, when.replace(second=0)):
        text = value.strftime(fmt)
        polars_fmt = fmt.replace(".%f", "%.f")
        expected = value if "%f" in fmt else value.replace(microsecond=0)
        assert pl.DataFrame({"t": [text]}).select(naive_datetime(pl.col("t"), [polars_fmt]))["t"].to_list() == [
            expected
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
