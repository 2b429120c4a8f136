"""Rollup rules a user relies on: the USD rate used for a day, local days across DST, quarantine thresholds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from kanda.checks import store_checks as checks
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.models import build_models, run_models
from kanda.regional.store import open_store
from kanda.settings import Settings, load_settings
from quality.boundary import canonicalise
from regions import get_region
from regions.synthetic.core import DirtMix
from tests.support.builders import adapter_rows, paid, stripe_file
from tests.support.files import make_files


def test_usd_uses_the_latest_rate_on_or_before_the_day_and_none_before_the_first(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=20)
    path = stripe_file(
        tmp_path / "in",
        "fx.csv",
        [
            paid("ch_old", "2023-12-30 10:00:00"),  # before the first rate in the FX seed (2024-01-01)
            paid("ch_wed", "2024-01-10 10:00:00"),  # a Wednesday: the Monday rate of 2024-01-08 applies
        ],
    )
    ingest_files(settings, "EG", [path])
    with open_store(settings, "EG") as con:
        build_models(con)
        rows = dict(
            con.execute(
                "SELECT local_date::VARCHAR, fx_date::VARCHAR FROM creator_daily"
                " WHERE local_date IN ('2023-12-30', '2024-01-10')"
            ).fetchall()
        )
        usd = con.execute("SELECT net_usd_minor FROM creator_daily WHERE local_date = '2023-12-30'").fetchall()
        result = checks.rollups_match_events(con, get_region("EG"))
    assert rows == {"2023-12-30": None, "2024-01-10": "2024-01-08"}
    assert usd == [(None,)]
    assert not result.passed and "no USD rate on or before their date" in result.message
    assert "EGP on 2023-12-30 (no rate on or before 2023-12-30)" in result.message  # the currency and day named


def test_the_demo_summary_says_no_usd_rate_rather_than_a_partial_or_zero_total(settings: Settings, tmp_path: Path):
    """SQL's sum skips the days without a rate: the demo's table showed the rest as the region's USD net (or
    US$0.00 with no rate at all), a plausible figure too small. It says there is no rate, as the API does."""
    from kanda.central.publish import publish_region
    from kanda.central.query import run_query
    from kanda.demo import DemoSummary, RegionSummary, _add_totals

    path = stripe_file(
        tmp_path / "in", "fx.csv", [paid("ch_old", "2023-12-30 10:00:00"), paid("ch_wed", "2024-01-10 10:00:00")]
    )
    make_files(settings, regions=["EG"], rows=20)
    ingest_files(settings, "EG", [path])
    publish_region(settings, "EG")
    summary = DemoSummary()
    summary.regions = [RegionSummary(region="EG")]
    _add_totals(settings, summary)
    (shown,) = summary.regions
    (net,) = run_query(settings, "SELECT sum(net_minor) AS net FROM rollups.creator_daily").to_pylist()
    assert shown.net_usd == "no USD rate"
    assert str(Decimal(net["net"]).scaleb(-2)) in shown.net_local  # exact, in the region's own locale


def test_a_rate_over_two_weeks_old_converts_nothing(settings: Settings, tmp_path: Path):
    """The rates table is weekly. A day whose latest rate is over 14 days old (a rates file no one updated) gets
    no USD figure, which verify reports, rather than a stale rate's plausible one; 9 days old still converts."""
    make_files(settings, regions=["EG"], rows=20)
    path = stripe_file(
        tmp_path / "in",
        "fx.csv",
        [paid("ch_9d", "2024-01-10 10:00:00"), paid("ch_20d", "2024-01-21 10:00:00")],
    )
    ingest_files(settings, "EG", [path])
    with open_store(settings, "EG") as con:
        build_models(con)  # loads the seed rates; then the rates a file no one updated would have
        con.execute("DELETE FROM fx_rates WHERE currency = 'EGP' AND rate_date BETWEEN '2024-01-02' AND '2024-02-28'")
        run_models(con)
        got = con.execute(
            "SELECT local_date::VARCHAR, fx_date::VARCHAR, net_usd_minor IS NOT NULL FROM creator_daily"
            " WHERE local_date IN ('2024-01-10', '2024-01-21') ORDER BY 1"
        ).fetchall()
        result = checks.rollups_match_events(con, get_region("EG"))
    assert got == [("2024-01-10", "2024-01-01", True), ("2024-01-21", None, False)]
    assert not result.passed and "over 14 days older" in result.message
    assert "EGP on 2024-01-21 (the latest rate on or before 2024-01-21 is of 2024-01-01)" in result.message


def test_egypts_local_day_follows_summer_time():
    cairo = get_region("EG")
    frame = adapter_rows(
        [
            {
                "transaction_id": "W",
                "currency": "EGP",
                "creator_id": "EG-C0001",
                "product_id": "EG-P00001",
                "occurred_at": dt.datetime(2026, 1, 15, 21, 30, tzinfo=dt.UTC),
            },  # 23:30 in Cairo (UTC+2)
            {
                "transaction_id": "S",
                "currency": "EGP",
                "creator_id": "EG-C0001",
                "product_id": "EG-P00001",
                "occurred_at": dt.datetime(2026, 7, 15, 21, 30, tzinfo=dt.UTC),
            },  # 00:30 next day (UTC+3)
        ]
    )
    days = canonicalise(frame, cairo, source="s", source_file="f", batch_id="b")["local_date"].to_list()
    assert days == [dt.date(2026, 1, 15), dt.date(2026, 7, 16)]


def test_quarantine_rate_warns_and_errors_at_the_region_thresholds(tmp_path: Path):
    region = get_region("NG")  # warn at 2 %, error at 10 %
    verdicts = []
    for name, dirt in (("clean", DirtMix.clean()), ("some", DirtMix(corrupt=0.05)), ("bad", DirtMix(corrupt=0.3))):
        home = load_settings(tmp_path / name)  # a fresh installation per case
        make_files(home, regions=["NG"], rows=1_000, dirt=dirt)
        ingest_landing(home, "NG")
        with open_store(home, "NG", read_only=True) as con:
            result = checks.quarantine_rate(con, region)
        verdicts.append((result.passed, result.severity))
    assert verdicts == [(True, "warn"), (False, "warn"), (False, "error")]


def test_a_dirty_file_fails_the_rate_of_the_run_that_loaded_it_whatever_the_history(tmp_path: Path):
    """In Dagster the check judged the store's lifetime rate: a file with a third of its rows quarantined, onto a
    long clean history, passed at under 2 %. Judged since the run started, it fails at ERROR."""
    region = get_region("NG")
    home = load_settings(tmp_path / "home")
    make_files(home, regions=["NG"], rows=20_000, dirt=DirtMix.clean())
    ingest_landing(home, "NG")
    since = dt.datetime.now(dt.UTC)
    make_files(home, regions=["NG"], rows=300, dirt=DirtMix(corrupt=0.3), start=dt.date(2025, 6, 1))
    ingest_landing(home, "NG")
    with open_store(home, "NG", read_only=True) as con:
        lifetime = checks.quarantine_rate(con, region)
        this_run = checks.quarantine_rate(con, region, since=since)
        later = checks.quarantine_rate(con, region, since=dt.datetime.now(dt.UTC))
    assert lifetime.passed and lifetime.metadata["rate"] < 0.02
    assert (this_run.passed, this_run.severity) == (False, "error") and "this run's rows" in this_run.message
    assert this_run.metadata["lifetime_rate"] == lifetime.metadata["rate"]
    assert later.passed and "no file loaded in this run" in later.message


def test_region_daily_rates(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=20)
    day = "2026-10-05"
    lines = [
        paid("ch_a", f"{day} 10:00:00"),
        paid("ch_b", f"{day} 11:00:00"),
        paid("ch_c", f"{day} 12:00:00", status="Failed"),
        paid("ch_d", f"{day} 13:00:00"),
        paid("ch_d", f"{day} 18:00:00", status="Disputed"),  # lost dispute: a reversal
    ]
    ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "rates.csv", lines)])
    with open_store(settings, "EG") as con:
        build_models(con)
        row = con.sql(
            "SELECT payments, failed_payments, payment_failure_rate, reversal_rate FROM region_daily"
            f" WHERE local_date = '{day}'"
        ).pl()
    assert row.to_dicts() == [
        {"payments": 4, "failed_payments": 1, "payment_failure_rate": 0.25, "reversal_rate": 1 / 3}
    ]


def test_channel_daily_sums_to_region_daily_and_names_a_missing_channel_unknown(settings: Settings):
    (tanzania,) = make_files(settings, regions=["TZ"], rows=300, days=2)
    lines = tanzania.path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    # Gumroad exports leave Payment Type empty for some sales: those payments count under 'unknown'
    blanked = [line.replace(",Tanzania,card,", ",Tanzania,,") if 0 < i <= 20 else line for i, line in enumerate(lines)]
    tanzania.path.write_text("".join(blanked), encoding="utf-8-sig")
    ingest_landing(settings, "TZ")
    with open_store(settings, "TZ") as con:
        build_models(con)
        by_channel = con.sql(
            "SELECT region, local_date, sum(payments) AS payments, sum(failed_payments) AS failed_payments,"
            " sum(reversed_payments) / nullif(sum(successful_payments), 0) AS reversal_rate"
            " FROM channel_daily GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        by_region = con.sql(
            "SELECT region, local_date, payments, failed_payments, reversal_rate FROM region_daily"
            " WHERE payments > 0 ORDER BY ALL"
        ).fetchall()
        channels = {row[0] for row in con.execute("SELECT DISTINCT channel FROM channel_daily").fetchall()}
        checked = checks.rollups_match_events(con, get_region("TZ"))
    assert [row[:4] for row in by_channel] == [row[:4] for row in by_region]
    assert [row[4] or 0.0 for row in by_channel] == pytest.approx([row[4] for row in by_region])
    assert {"unknown", "card", "paypal"} <= channels and None not in channels
    assert checked.passed, checked.message


def test_channel_daily_rates(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=20)
    day = "2026-10-05"
    lines = [
        paid("ch_a", f"{day} 10:00:00"),
        paid("ch_b", f"{day} 11:00:00", status="Failed"),
        paid("ch_c", f"{day} 12:00:00"),
        paid("ch_c", f"{day} 18:00:00", status="Disputed"),  # lost dispute: a reversal
    ]
    ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "channels.csv", lines)])
    with open_store(settings, "EG") as con:
        build_models(con)
        rows = con.sql(
            "SELECT channel, currency, payments, failed_payments, successful_payments, reversed_payments,"
            f" payment_failure_rate, reversal_rate FROM channel_daily WHERE local_date = '{day}'"
        ).pl()
    assert rows.to_dicts() == [
        {
            "channel": "card",
            "currency": "EGP",
            "payments": 3,
            "failed_payments": 1,
            "successful_payments": 2,
            "reversed_payments": 1,
            "payment_failure_rate": 1 / 3,
            "reversal_rate": 0.5,
        }
    ]


def test_a_payment_counts_under_the_channel_of_its_latest_event(settings: Settings, tmp_path: Path):
    """A pending attempt by card, then the success by bank transfer: the payment is the transfer's, in a full build
    and in an incremental one alike (any of its channels, whichever the scan met first, made the two differ)."""
    import json

    from regions.synthetic.core import make_registry
    from tests.support.builders import paystack_event

    make_registry(seed=11).write(settings.registry_dir)
    pending = paystack_event(
        1, event="charge.pending", status="pending", channel="card", metadata={"kanda_ref": "NG-C0005.NG-P00017"}
    )
    success = paystack_event(
        1, channel="bank_transfer", paid_at="2025-06-05T10:05:00.000Z", metadata={"kanda_ref": "NG-C0005.NG-P00017"}
    )
    for name, event in (("a_pending.ndjson", pending), ("b_success.ndjson", success)):
        path = tmp_path / name
        path.write_text(json.dumps(event) + "\n")
        ingest_files(settings, "NG", [path])
        with open_store(settings, "NG") as con:
            build_models(con, full_refresh=False)  # the first build full, the second incremental
    with open_store(settings, "NG") as con:
        incremental = con.execute("SELECT channel, payments FROM channel_daily ORDER BY ALL").fetchall()
        build_models(con, full_refresh=True)
        full = con.execute("SELECT channel, payments FROM channel_daily ORDER BY ALL").fetchall()
    assert incremental == full == [("bank_transfer", 1)]


def test_a_payment_reported_failed_after_it_succeeded_is_flagged_by_verify(settings: Settings, tmp_path: Path):
    """Its success moved money and stays counted, while its latest status counts it failed: `kanda verify` warns
    and names it, rather than leaving two figures that disagree unremarked."""
    import json

    from kanda.central.publish import publish_region
    from kanda.checks.verify import verify
    from regions.synthetic.core import make_registry
    from tests.support.builders import paystack_event

    make_registry(seed=11).write(settings.registry_dir)
    ref = {"metadata": {"kanda_ref": "NG-C0005.NG-P00017"}}
    success = paystack_event(1, **ref)
    failed = paystack_event(1, event="charge.failed", status="failed", created_at="2025-06-05T11:00:00.000Z", **ref)
    path = tmp_path / "webhooks.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in (success, failed)))
    ingest_files(settings, "NG", [path])
    publish_region(settings, "NG")
    (check,) = [r for r in verify(settings, ["NG"]) if r.name == "failed_after_success"]
    assert (check.passed, check.severity) == (False, "warn")
    assert check.metadata == {"payments": 1, "examples": ["ps_000001"]}
