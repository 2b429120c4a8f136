"""`kanda verify` recomputes every payment figure of the rollups from the events: channel_daily's per day and
channel, region_daily's failed payments and rates per day.

Only the payments summed per day used to be compared, so a channel's payments or failed payments miscounted, a
failed count wrong in region_daily, or a channel's row on the wrong day published a plausible wrong figure that
verify passed. The store here is ingested from files of a region in Africa/Cairo (summer time ends at midnight on
29 October 2026) whose rail names several channels, with refunds, reversals, a won dispute, failed and pending
payments, and payments whose events disagree on their channel: all of it must pass, and each tampered figure fail.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.checks import store_checks as checks
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from tests.support.files import make_files

#: A region in Cairo's zone whose rail (a Stripe-like CSV) names each row's channel.
CAIRO_YAML = r"""code: XE
name: Cairo channels
currency: EGP
zone: Africa/Cairo
locale: ar_EG
language: en
calling_code: "20"
landing: xe
file_glob: "*.csv"
reference:
  pattern: '^(?P<creator_id>XE-C\d{4})\.(?P<product_id>XE-P\d{5})$'
quarantine_rate: {warn: 0.5, error: 0.9}
rail:
  format: csv
  vocabulary:
    of: Status
    map:
      paid: [sale, success]
      pending: [sale, pending]
      failed: [sale, failed]
      refunded: [refund, success]
      disputed: [reversal, success]
      dispute won: [reversal, failed]
  amount: {unit: major}
  time: {formats: ["%Y-%m-%d %H:%M:%S"], zone: utc}
  fields:
    transaction_id: id
    amount: {case: {of: "@event_type", when: {sale: Amount}, default: Amount Refunded}}
    fee: Fee
    currency: Currency
    occurred_at: created
    reference: kanda_ref (metadata)
    buyer: {of: Customer Email, kind: email}
    channel: Channel
"""

#: Hand-written payments around the end of summer time (21:00 UTC on 29 October: 00:00 became 23:00 in Cairo):
#: (id, status, amount, refunded, channel, UTC time).
PAYMENTS = [
    ("XP1", "pending", "500.00", "0.00", "wallet", "2026-10-29 21:30:00"),  # 23:30 on the 29th (+02:00)
    ("XP1", "paid", "500.00", "0.00", "bank", "2026-10-29 22:30:00"),  # 00:30 on the 30th: first seen the 29th
    ("XP2", "pending", "400.00", "0.00", "wallet", "2026-10-28 20:30:00"),  # 23:30 on the 28th (+03:00), pending
    ("XP3", "failed", "300.00", "0.00", "", "2026-10-30 22:10:00"),  # 00:10 on the 31st, channel unknown
    ("XP4", "paid", "800.00", "0.00", "bank", "2026-10-30 10:00:00"),
    ("XP4", "disputed", "0.00", "800.00", "bank", "2026-10-30 10:00:00"),
    ("XP4", "dispute won", "0.00", "800.00", "bank", "2026-10-30 10:00:00"),  # the reversal is void
    ("XP5", "paid", "900.00", "0.00", "wallet", "2026-10-29 20:30:00"),  # 23:30 on the 29th (+03:00)
    ("XP5", "disputed", "0.00", "900.00", "wallet", "2026-10-31 09:00:00"),  # reversed
    ("XP6", "paid", "700.00", "0.00", "card", "2026-10-28 12:00:00"),
    ("XP6", "refunded", "0.00", "200.00", "card", "2026-10-30 12:00:00"),  # partly refunded, not reversed
    ("XP7", "failed", "600.00", "0.00", "card", "2026-10-29 08:00:00"),
    ("XP7", "paid", "600.00", "0.00", "wallet", "2026-10-29 08:05:00"),  # the retry succeeded, by wallet
    ("XP8", "paid", "650.00", "0.00", "bank", "2026-10-29 09:00:00"),
    ("XP8", "failed", "650.00", "0.00", "bank", "2026-10-29 09:30:00"),  # failed after it succeeded: failed
]
#: A later file: payments its events change (XP2's pending attempt succeeds by card two days on, XP6 is disputed).
LATER = [
    ("XP2", "paid", "400.00", "0.00", "card", "2026-10-30 23:30:00"),  # 01:30 on the 31st (+02:00)
    ("XP6", "disputed", "0.00", "500.00", "card", "2026-10-31 08:00:00"),
]
#: A count in a message (1,234).
N = r"[\d,]+"
CHANNELS = ["card", "wallet", "bank", ""]  # "" is a row whose rail named no channel: 'unknown'


def cairo_store(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XE's store, built from a generated file (channels varied row by row) and the hand-written payments, and
    published; then a later file with events that change earlier payments, built incrementally and published."""
    folder = tmp_path / "regions"
    folder.mkdir()
    (folder / "xe.yaml").write_text(CAIRO_YAML)
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(folder))
    (generated,) = make_files(settings, regions=["XE"], rows=300, days=4, start=dt.date(2026, 10, 28))
    rows = pl.read_csv(generated.path, infer_schema_length=0)
    rows = rows.with_columns(
        pl.Series("Channel", [CHANNELS[i % len(CHANNELS)] for i in range(rows.height)], dtype=pl.String)
    )
    reference, email = rows["kanda_ref (metadata)"][0], rows["Customer Email"][0]

    def written(payments: list[tuple[str, ...]]) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "id": txn,
                    "Status": status,
                    "Amount": amount,
                    "Amount Refunded": refunded,
                    "Fee": "0.00",
                    "Currency": "EGP",
                    "created": when,
                    "kanda_ref (metadata)": reference,
                    "Customer Email": email,
                    "Channel": channel,
                }
                for txn, status, amount, refunded, channel, when in payments
            ]
        ).select(rows.columns)

    pl.concat([rows, written(PAYMENTS)]).write_csv(generated.path)
    assert ingest_landing(settings, "XE").files[0].loaded
    publish_region(settings, "XE")  # builds every day
    written(LATER).write_csv(generated.path.with_name("later.csv"))
    assert ingest_landing(settings, "XE").files[0].loaded == len(LATER)
    publish_region(settings, "XE")  # builds only the days the later events changed


def test_a_store_with_every_kind_of_payment_across_summer_times_end_passes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cairo_store(settings, tmp_path, monkeypatch)
    with open_store(settings, "XE", read_only=True) as con:
        kinds = {row for row in con.execute("SELECT DISTINCT event_type, status FROM sale_events").fetchall()}
        channels = {row[0] for row in con.execute("SELECT DISTINCT channel FROM channel_daily").fetchall()}
        days = con.execute(
            "SELECT transaction_id, min(local_date)::VARCHAR FROM sale_events WHERE transaction_id IN ('XP1', 'XP3')"
            " GROUP BY ALL ORDER BY 1"
        ).fetchall()
        figures = con.execute(
            "SELECT sum(payments), sum(failed_payments), sum(successful_payments), sum(reversed_payments)"
            " FROM channel_daily"
        ).fetchall()[0]
    # not vacuous: every status of a sale, money back of every kind, four channels, days set by Cairo's two offsets
    assert {("sale", "success"), ("sale", "failed"), ("sale", "pending"), ("refund", "success")} <= kinds
    assert {("reversal", "success"), ("reversal", "failed")} <= kinds
    assert {"card", "wallet", "bank", "unknown"} <= channels
    assert days == [("XP1", "2026-10-29"), ("XP3", "2026-10-31")]
    assert all(figure > 0 for figure in figures)

    results = verify(settings, ["XE"])
    (check,) = [r for r in results if r.name == "rollups_match_events"]
    assert check.passed, check.message
    assert [r.message for r in results if not r.passed and r.severity == "error"] == []


def more_payments_on_one_channel(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE channel_daily SET payments = payments + 1 WHERE local_date = '2026-10-29' AND channel = 'bank'")
    return "channel_daily", rf"2026-10-29 bank: payments {N} where the events say {N}(,|;|\.)"


def a_payment_moved_between_two_channels(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The day's payments stay as they were: summed over channels, as verify compared them, nothing differs."""
    for channel, change in (("bank", 1), ("card", -1)):
        con.execute(
            "UPDATE channel_daily SET payments = payments + ? WHERE local_date = '2026-10-29' AND channel = ?",
            [change, channel],
        )
    return (
        "channel_daily",
        rf"on 2 row\(s\): 2026-10-29 bank: payments {N} where .*; 2026-10-29 card: payments {N} where",
    )


def one_failed_payment_fewer_on_a_channel(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(
        "UPDATE channel_daily SET failed_payments = failed_payments - 1 WHERE local_date = '2026-10-29'"
        " AND channel = 'bank'"
    )
    return "channel_daily", rf"2026-10-29 bank: failed_payments {N} where the events say {N}"


def one_failed_payment_more_in_the_region(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE region_daily SET failed_payments = failed_payments + 1 WHERE local_date = '2026-10-30'")
    return "region_daily", rf"2026-10-30: failed_payments {N} where the events say {N}"


def a_channels_row_moved_to_the_next_day(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(
        "UPDATE channel_daily SET local_date = local_date + 1 WHERE local_date = '2026-10-30' AND channel = 'wallet'"
    )
    return "channel_daily", rf"2026-10-30 wallet: payments 0 where the events say {N}"


def a_channels_row_moved_past_the_last_day(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(
        "UPDATE channel_daily SET local_date = local_date + 1 WHERE local_date = '2026-10-31' AND channel = 'bank'"
    )
    return "channel_daily", rf"2026-11-01 bank: payments {N} where the events say 0,"  # a day without events


def another_currency(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE channel_daily SET currency = 'USD' WHERE local_date = '2026-10-29' AND channel = 'card'")
    return "channel_daily", r"2026-10-29 card: currency USD where the region's is EGP\."


def a_row_of_zeros_on_a_day_without_events(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(
        "INSERT INTO channel_daily BY NAME SELECT 'XE' AS region, DATE '2026-11-05' AS local_date, 'card' AS channel,"
        " 'EGP' AS currency, 0 AS payments, 0 AS failed_payments, 0 AS successful_payments, 0 AS reversed_payments,"
        " 0.0 AS payment_failure_rate, 0.0 AS reversal_rate"
    )
    return "channel_daily", r"2026-11-05 card: a row where the events have no payment\."


@pytest.mark.parametrize(
    "tamper",
    [
        more_payments_on_one_channel,
        a_payment_moved_between_two_channels,
        one_failed_payment_fewer_on_a_channel,
        one_failed_payment_more_in_the_region,
        a_channels_row_moved_to_the_next_day,
        a_channels_row_moved_past_the_last_day,
        another_currency,
        a_row_of_zeros_on_a_day_without_events,
    ],
)
def test_a_payment_figure_unlike_the_events_is_named_by_verify(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper
):
    cairo_store(settings, tmp_path, monkeypatch)
    with open_store(settings, "XE") as con:
        assert checks.rollups_match_events(con, get_region("XE")).passed
        table, named = tamper(con)

    verified = CliRunner().invoke(app, ["verify", "--region", "XE"])
    assert verified.exit_code == 1, verified.output
    (check,) = [r for r in verify(settings, ["XE"]) if r.name == "rollups_match_events"]
    assert not check.passed and check.severity == "error"
    assert check.message.startswith(f"XE: {table}'s payment figures differ from the events on "), check.message
    assert re.search(named, check.message), check.message
    assert "kanda publish --region XE --rebuild" in check.message
