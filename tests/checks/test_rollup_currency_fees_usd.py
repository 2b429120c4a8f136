"""`kanda verify` checks what the money rollups' rows say besides their sums against the store's events: their
currency against the region's, `fees_stated` against the rails that read their events, and `net_usd_minor` and
`fx_date` recomputed from the events at the rates of the seed file.

They were taken as built (USD compared only across the rollups), so a row in another currency, one saying its fees
are stated where they were not, or a rate every rollup took alike published a plausible wrong figure that verify
passed. Stores here: Egypt's (Stripe, which states fees) and Kenya's (M-Pesa statements, which do not) from
generated files, with hand-written days without money movement and a day before the first rate of the seed; and a
region that moved from M-Pesa to Stripe, with a day of both. All of it must pass, and each tampered column fail,
named with its row and both figures.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import warehouse_models
from kanda.central.publish import publish_region
from kanda.checks import money_terms, usd_figures
from kanda.checks import store_checks as checks
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.models import run_models
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from tests.support.builders import paid, region_file, stripe_file
from tests.support.files import START, make_files
from tests.support.steward_files import MPESA_HEADER, mpesa_line

#: A count in a message (1,234; -56).
N = r"-?[\d,]+"
#: Days of Egypt's hand-written file: one with only a failed payment, one with only a quarantined row (no money
#: moved on either), and a Wednesday of 2024 (the Monday rate of the 8th applies).
FAILED_ONLY, QUARANTINED_ONLY, WEDNESDAY = "2026-10-09", "2026-10-10", "2024-01-10"


def differences(con: duckdb.DuckDBPyConnection, code: str) -> list[str]:
    """What the new comparisons say of every money rollup of a store (nothing, for a store as built)."""
    region = get_region(code)
    found = []
    for name, keys in checks.MONEY_KEYS.items():
        found += [
            money_terms.currency_differs(con, name, keys, region, 3),
            money_terms.fees_stated_differs(con, name, keys, region, 3),
            usd_figures.usd_differs(con, name, keys, 3),
        ]
    return [problem for problem in found if problem]


def egypt_store(settings: Settings, tmp_path: Path) -> None:
    """EG's store from a generated file and a hand-written one (see the days above), published."""
    make_files(settings, regions=["EG"], rows=300)
    assert ingest_landing(settings, "EG").files
    path = stripe_file(
        tmp_path / "in",
        "eg-days.csv",
        [
            paid("ch_failed", f"{FAILED_ONLY} 09:00:00", status="Failed"),
            paid("ch_bad", f"{QUARANTINED_ONLY} 09:00:00", amount="25O,00"),  # an unreadable amount
            paid("ch_wed", f"{WEDNESDAY} 10:00:00", amount="1.234,55", refunded="99,99", status="Refunded"),
        ],
    )
    (result,) = ingest_files(settings, "EG", [path]).files
    assert (result.loaded, result.quarantined) >= (2, 1), result
    publish_region(settings, "EG")


def test_egypts_store_with_days_without_money_passes(settings: Settings, tmp_path: Path):
    egypt_store(settings, tmp_path)
    with open_store(settings, "EG", read_only=True) as con:
        quiet = con.execute(
            "SELECT local_date::VARCHAR, net_usd_minor, fx_date, fees_stated FROM region_daily"
            " WHERE local_date IN (?, ?) ORDER BY 1",
            [FAILED_ONLY, QUARANTINED_ONLY],
        ).fetchall()
        wednesday = con.execute(
            "SELECT fx_date::VARCHAR, net_usd_minor <> 0 FROM region_daily WHERE local_date = ?", [WEDNESDAY]
        ).fetchall()
        flags = con.execute("SELECT list(DISTINCT fees_stated), sum(fees_minor) > 0 FROM creator_daily").fetchone()
        assert differences(con, "EG") == []
    # not vacuous: days without money (0 in USD, no rate date, the current rail's answer), a day on an older rate
    assert quiet == [(FAILED_ONLY, 0, None, True), (QUARANTINED_ONLY, 0, None, True)]
    assert wednesday == [("2024-01-08", True)]
    assert flags == ([True], True)

    results = verify(settings, ["EG"])
    (check,) = [r for r in results if r.name == "rollups_match_events"]
    assert check.passed, check.message
    assert [r.message for r in results if not r.passed and r.severity == "error"] == []


def test_kenyas_store_with_a_day_before_the_first_rate_differs_only_by_its_missing_rate(
    settings: Settings, tmp_path: Path
):
    """M-Pesa states no fees: every row says false. A day before the seed's first rate (2024-01-01) has no USD
    figure, which verify reports as missing, and nothing else: the recount agrees that it has none."""
    make_files(settings, regions=["KE"], rows=300)
    assert ingest_landing(settings, "KE").files
    path = tmp_path / "ke-old.csv"
    lines = [
        mpesa_line("SKE0000001", "2023-12-30 09:00:00", "1,000.00"),  # before the first rate
        mpesa_line("SKE0000002", "2026-10-05 25:61:00", "2,000.00"),  # an unreadable time: on the day it arrived
    ]
    path.write_text(MPESA_HEADER + "".join(x + "\n" for x in lines), encoding="utf-8")
    (result,) = ingest_files(settings, "KE", [path]).files
    assert (result.loaded, result.quarantined) == (1, 1), result
    publish_region(settings, "KE")
    with open_store(settings, "KE", read_only=True) as con:
        old = con.execute(
            "SELECT net_minor, net_usd_minor, fx_date FROM region_daily WHERE local_date = '2023-12-30'"
        ).fetchall()
        arrived = con.execute(
            "SELECT net_usd_minor, fees_stated FROM region_daily WHERE orders = 0 AND rows_quarantined > 0"
        ).fetchall()
        flags = con.execute("SELECT list(DISTINCT fees_stated), sum(fees_minor) FROM creator_daily").fetchone()
        assert differences(con, "KE") == []
    assert old == [(100_000, None, None)]
    assert arrived and set(arrived) == {(0, False)}
    assert flags == ([False], 0)

    (check,) = [r for r in verify(settings, ["KE"]) if r.name == "rollups_match_events"]
    assert not check.passed
    assert check.message.startswith("KE: 1 creator-days have no USD rate on or before their date"), check.message
    assert "differ" not in check.message and "currency" not in check.message, check.message


def test_a_rates_seed_with_a_gap_converts_a_day_nine_days_on_and_not_one_twenty_days_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A seed no one updated for weeks: a rate over 14 days older than the day converts nothing, in the recount as
    in the models, and a rate 9 days old still converts, at that rate."""
    seed = tmp_path / "fx_rates.csv"
    rates = warehouse_models.seed("fx_rates").read_text().splitlines()
    kept = [r for r in rates if not (r.startswith("EGP,") and "2024-01-02" <= r.split(",")[1] <= "2024-02-28")]
    seed.write_text("\n".join(kept) + "\n")
    monkeypatch.setattr(warehouse_models, "seed", lambda name: seed)
    make_files(settings, regions=["EG"], rows=20)
    path = stripe_file(
        tmp_path / "in", "fx.csv", [paid("ch_9d", "2024-01-10 10:00:00"), paid("ch_20d", "2024-01-21 10:00:00")]
    )
    ingest_files(settings, "EG", [path])
    publish_region(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        got = con.execute(
            "SELECT local_date::VARCHAR, fx_date::VARCHAR, net_usd_minor IS NOT NULL FROM region_daily"
            " WHERE local_date IN ('2024-01-10', '2024-01-21') ORDER BY 1"
        ).fetchall()
        assert differences(con, "EG") == []
    assert got == [("2024-01-10", "2024-01-01", True), ("2024-01-21", None, False)]


def test_a_region_that_moved_from_a_rail_without_fees_to_one_with_them_passes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """Days of M-Pesa say false, of Stripe true, a day of both false, each by the rail that read its events."""
    same = {"code": "QX", "name": "Qenya", "landing": "qx"}
    mpesa = region_file(tmp_path / "mpesa", "ke", **same)
    stripe = region_file(tmp_path / "stripe", "eg", **same, currency="KES", zone="Africa/Nairobi", calling_code='"254"')
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(mpesa))
    make_files(settings, regions=["QX"], rows=300, days=2)
    ingest_landing(settings, "QX")
    publish_region(settings, "QX")
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(stripe))
    make_files(settings, regions=["QX"], rows=300, days=2, start=START + dt.timedelta(days=1), seed=8)
    ingest_landing(settings, "QX")
    publish_region(settings, "QX")

    with open_store(settings, "QX", read_only=True) as con:
        flags = con.execute(
            "SELECT local_date - ?::DATE, fees_stated FROM region_daily WHERE orders > 0 ORDER BY 1", [START]
        ).fetchall()
        both = START + dt.timedelta(days=1)  # a day of both rails: a product of Stripe's alone says true
        products = con.execute("SELECT list(DISTINCT fees_stated) FROM product_daily WHERE local_date = ?", [both])
        assert sorted(products.fetchone()[0]) == [False, True]
        assert differences(con, "QX") == []
    assert flags == [(0, False), (1, False), (2, True)]
    (check,) = [r for r in verify(settings, ["QX"]) if r.name == "rollups_match_events"]
    assert check.passed, check.message


# Tampered rollups: each returns the table named and the row it names.


def another_currency(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE region_daily SET currency = 'USD' WHERE local_date = '2026-10-05'")
    return "region_daily", r"region_daily's currency is not the region's on 1 row\(s\): 2026-10-05: currency USD where"


def fees_said_not_stated(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE region_daily SET fees_stated = false WHERE local_date = '2026-10-06'")
    return "region_daily", r"on 1 row\(s\): 2026-10-06: fees_stated false where its events' rails say true"


def fees_unknown_on_a_day_without_money(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(f"UPDATE region_daily SET fees_stated = NULL WHERE local_date = '{QUARANTINED_ONLY}'")
    return (
        "region_daily",
        rf"{QUARANTINED_ONLY}: fees_stated null where the region's current rail \(\w+\) says true on a day without",
    )


def a_creators_fees_said_not_stated(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE creator_daily SET fees_stated = false WHERE local_date = ?", [WEDNESDAY])
    return "creator_daily", rf"{WEDNESDAY} EG-C0002: fees_stated false where its events' rails say true"


def a_cent_more_in_usd(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute("UPDATE region_daily SET net_usd_minor = net_usd_minor + 1 WHERE local_date = '2026-10-05'")
    return "region_daily", rf"2026-10-05: net_usd_minor {N} where the events at the seed's rates say {N}(;|\.)"


def usd_on_a_day_without_money(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(f"UPDATE region_daily SET net_usd_minor = 7 WHERE local_date = '{FAILED_ONLY}'")
    return "region_daily", rf"{FAILED_ONLY}: net_usd_minor 7 where the events at the seed's rates say 0"


def another_rate_date(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    con.execute(f"UPDATE region_daily SET fx_date = DATE '2024-01-01' WHERE local_date = '{WEDNESDAY}'")
    return "region_daily", rf"{WEDNESDAY}: fx_date 2024-01-01 where the seed's rate for the day is of 2024-01-08"


def a_rate_every_rollup_took_alike(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The store's rates edited and the models run: the three rollups agree with one another, not with the seed."""
    con.execute("UPDATE fx_rates SET usd_per_unit = usd_per_unit * 2 WHERE currency = 'EGP'")
    run_models(con)
    return "region_daily", rf"2026-10-05: net_usd_minor {N} where the events at the seed's rates say {N}"


@pytest.mark.parametrize(
    "tamper",
    [
        another_currency,
        fees_said_not_stated,
        fees_unknown_on_a_day_without_money,
        a_creators_fees_said_not_stated,
        a_cent_more_in_usd,
        usd_on_a_day_without_money,
        another_rate_date,
        a_rate_every_rollup_took_alike,
    ],
)
def test_a_rollup_column_unlike_the_events_is_named_by_verify(settings: Settings, tmp_path: Path, tamper):
    egypt_store(settings, tmp_path)
    with open_store(settings, "EG") as con:
        assert checks.rollups_match_events(con, get_region("EG")).passed
        table, named = tamper(con)

    verified = CliRunner().invoke(app, ["verify", "--region", "EG"])
    assert verified.exit_code == 1, verified.output
    (check,) = [r for r in verify(settings, ["EG"]) if r.name == "rollups_match_events"]
    assert not check.passed and check.severity == "error"
    assert check.message.startswith("EG: ") and f"{table}'s " in check.message, check.message
    assert re.search(named, check.message), check.message
    assert "kanda publish --region EG --rebuild" in check.message

    # an edited rollup, or store rates unlike the seed, is mended by the repair the message names
    assert CliRunner().invoke(app, ["publish", "--region", "EG", "--rebuild"]).exit_code == 0
    assert [r.message for r in verify(settings, ["EG"]) if not r.passed and r.severity == "error"] == []


def test_many_differing_rows_are_named_three_at_a_time_and_the_rest_counted(settings: Settings, tmp_path: Path):
    """Every day of a rollup in another currency: the message names the first three days in order, with what
    they say, and counts the rest, so an operator sees how far the damage goes without a wall of text."""
    egypt_store(settings, tmp_path)
    with open_store(settings, "EG") as con:
        con.execute("UPDATE region_daily SET currency = 'USD'")
        days = [d for (d,) in con.execute("SELECT local_date::VARCHAR FROM region_daily ORDER BY 1").fetchall()]
    assert len(days) > 4

    (check,) = [r for r in verify(settings, ["EG"]) if r.name == "rollups_match_events"]
    named = "; ".join(f"{day}: currency USD where the region's is EGP" for day in days[:3])
    expected = f"region_daily's currency is not the region's on {len(days)} row(s): {named} (and {len(days) - 3} more)"
    assert expected in check.message, check.message
