"""`fees_stated` answers by the rail that read each event, as it read it, not by the region's current rail.

A region that moves from a rail that states no fees (an M-Pesa statement) to one that does (a Stripe export) must
keep its earlier days' answer, say false on a day that mixes both (part of its charges were never sent), and keep
saying so after a full rebuild; its creators' reports follow their own day's answer. A rail whose reader later
learns to state fees leaves the events it read before (with fee 0) saying false.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.checks.gx_runner import run_suites
from kanda.regional.ingest import ingest_landing
from kanda.regional.models import published_fingerprint
from kanda.regional.store import open_store
from kanda.reports.data import build_reports, readiness
from kanda.settings import Settings
from regions import get_region
from regions.rails import get_adapter
from tests.support.builders import region_file
from tests.support.files import START, make_files

DAY_1, DAY_2, DAY_3 = (START + dt.timedelta(days=n) for n in range(3))


def use_rail(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(folder))


def answers(settings: Settings, table: str) -> dict[dt.date, tuple[list[bool], bool]]:
    """Per local day of QX: the distinct answers of the table's rows, and whether any fee was counted."""
    rows = run_query(
        settings,
        f"SELECT local_date, list(DISTINCT fees_stated ORDER BY fees_stated) AS flags, sum(fees_minor) AS fees"
        f" FROM rollups.{table} WHERE region = 'QX' AND local_date <= DATE '{DAY_3}' GROUP BY 1 ORDER BY 1",
    ).to_pylist()
    return {r["local_date"]: (r["flags"], r["fees"] > 0) for r in rows}


def test_a_region_that_changes_rails_keeps_each_days_own_answer(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    same = {"code": "QX", "name": "Qenya", "landing": "qx"}
    mpesa = region_file(tmp_path / "mpesa", "ke", **same)
    stripe = region_file(tmp_path / "stripe", "eg", **same, currency="KES", zone="Africa/Nairobi", calling_code='"254"')

    use_rail(monkeypatch, mpesa)  # days 1 and 2 from M-Pesa statements: no fees stated
    make_files(settings, regions=["QX"], rows=300, days=2)
    ingest_landing(settings, "QX")
    publish_region(settings, "QX")
    use_rail(monkeypatch, stripe)  # days 2 and 3 from Stripe exports, which state every fee
    make_files(settings, regions=["QX"], rows=300, days=2, start=DAY_2, seed=8)
    ingest_landing(settings, "QX")
    publish_region(settings, "QX")

    with open_store(settings, "QX", read_only=True) as con:
        sources = con.execute("SELECT local_date, list(DISTINCT source ORDER BY source) FROM sale_events GROUP BY 1")
        assert dict(sources.fetchall()) == {
            DAY_1: ["mpesa_statement"],
            DAY_2: ["mpesa_statement", "stripe_payments"],
            DAY_3: ["stripe_payments"],
        }
    expected = {DAY_1: ([False], False), DAY_2: ([False], True), DAY_3: ([True], True)}
    assert answers(settings, "region_daily") == expected
    assert answers(settings, "creator_daily") == expected  # each creator sold through both rails on day 2
    # A product's day says true exactly where every successful event summed came from Stripe.
    with open_store(settings, "QX", read_only=True) as con:
        own = con.execute(
            "SELECT product_id, bool_and(source = 'stripe_payments') FROM sale_events"
            " WHERE local_date = ? AND status = 'success' GROUP BY 1",
            [DAY_2],
        ).fetchall()
        rows = con.execute("SELECT product_id, fees_stated FROM product_daily WHERE local_date = ?", [DAY_2])
        assert dict(rows.fetchall()) == dict(own) and {flag for _, flag in own} == {False, True}

    # A full rebuild (every day sent again) gives the same answers: they are the events', not the config's.
    publish_region(settings, "QX", all_days=True)
    with open_store(settings, "QX") as con:
        con.execute("DELETE FROM model_builds")
    publish_region(settings, "QX", all_days=True)
    assert answers(settings, "region_daily") == expected

    # The creators' reports follow their own day: "not reported" on M-Pesa's day, the fee on Stripe's.
    region = get_region("QX")
    now = dt.datetime.combine(DAY_3 + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    with open_store(settings, "QX", read_only=True) as con:
        for day, stated in ((DAY_1, False), (DAY_3, True)):
            assert readiness(con, region, day, now).ready
            reports = [r for r in build_reports(con, region, day) if r.day.orders]
            assert reports and {r.fees_stated for r in reports} == {stated}


def test_reports_wait_for_a_publish_when_the_rollups_were_built_by_other_models(settings: Settings):
    make_files(settings, regions=["KE"], rows=200, days=1)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    region, now = get_region("KE"), dt.datetime.combine(DAY_3, dt.time(), tzinfo=dt.UTC)
    with open_store(settings, "KE") as con:
        assert readiness(con, region, DAY_1, now).ready
        # as after an upgrade of kanda: published by other models
        con.execute("UPDATE published_models SET fingerprint = 'older-models'")
        state = readiness(con, region, DAY_1, now)
        assert (state.ready, state.reason) == (False, "not_published") and "kanda publish -r KE" in state.message
    publish_region(settings, "KE")
    with open_store(settings, "KE", read_only=True) as con:
        assert readiness(con, region, DAY_1, now).ready
        assert con.execute("SELECT fingerprint FROM published_models").fetchall() == [(published_fingerprint(con),)]


def test_a_region_file_that_changes_rail_publishes_every_day_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A day without money answers `fees_stated` by the region's rail: a new rail changes such days' rows, which
    no new batch touches. The build and the publish are by other region settings then: every day is rebuilt and
    sent again, where "up to date" left the centre saying what the old rail would."""
    same = {"code": "QX", "name": "Qenya", "landing": "qx"}
    mpesa = region_file(tmp_path / "mpesa", "ke", **same)
    stripe = region_file(tmp_path / "stripe", "eg", **same, currency="KES", zone="Africa/Nairobi", calling_code='"254"')
    use_rail(monkeypatch, mpesa)
    make_files(settings, regions=["QX"], rows=300, days=2)
    ingest_landing(settings, "QX")
    first = publish_region(settings, "QX")
    assert not publish_region(settings, "QX").published  # nothing changed: up to date

    use_rail(monkeypatch, stripe)
    from kanda.checks.verify import verify

    (rows,) = [r for r in verify(settings, ["QX"]) if r.name == "central_rows"]
    assert not rows.passed and "other models or region settings" in rows.message, rows.message
    moved = publish_region(settings, "QX")
    assert moved.published and moved.whole_region and moved.days == first.days
    assert not publish_region(settings, "QX").published  # once
    assert next(r for r in verify(settings, ["QX"]) if r.name == "central_rows").passed


def test_a_rail_that_learns_to_state_fees_leaves_its_earlier_events_saying_false(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    make_files(settings, regions=["KE"], rows=200, days=1)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    # as if a later kanda read M-Pesa's charges as the payments' fees
    monkeypatch.setattr(get_adapter("mpesa_statement"), "states_fees", True)
    make_files(settings, regions=["KE"], rows=200, days=1, start=DAY_2, seed=8)
    ingest_landing(settings, "KE")
    with open_store(settings, "KE") as con:
        con.execute("DELETE FROM model_builds")  # a full rebuild: every day recomputed from the events
    publish_region(settings, "KE", all_days=True)

    flags = run_query(
        settings,
        "SELECT local_date, list(DISTINCT fees_stated) AS flags FROM rollups.region_daily"
        f" WHERE region = 'KE' AND local_date <= DATE '{DAY_2}' GROUP BY 1 ORDER BY 1",
    ).to_pylist()
    assert [(r["local_date"], r["flags"]) for r in flags] == [(DAY_1, [False]), (DAY_2, [True])]


def test_the_fees_check_holds_each_event_to_what_its_own_batch_stated(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """The stored-events suite asks "no fee where the rail stated none" of each event's batch, as the rollups do,
    not of the rail's answer now."""
    make_files(settings, regions=["EG", "KE"], rows=200, days=1)
    for code in ("EG", "KE"):
        ingest_landing(settings, code)
    # As if a later kanda stopped reading Stripe's fees and started reading M-Pesa's: Stripe's earlier fees were
    # still sent by the rail, and an earlier M-Pesa event with a fee still has one the rail never sent.
    monkeypatch.setattr(get_adapter("stripe_payments"), "states_fees", False)
    monkeypatch.setattr(get_adapter("mpesa_statement"), "states_fees", True)
    with open_store(settings, "KE") as con:
        con.execute(
            "UPDATE sale_events SET fee_minor = 10, net_minor = amount_minor - 10 WHERE event_id ="
            " (SELECT min(event_id) FROM sale_events WHERE event_type = 'sale' AND status = 'success')"
        )
    with open_store(settings, "EG", read_only=True) as con:  # Stripe's batch stated its fees, and has some
        stated = "SELECT (SELECT bool_and(fees_stated) FROM batch_rails), (SELECT sum(fee_minor) > 0 FROM sale_events)"
        assert con.execute(stated).fetchall() == [(True, True)]

    results = {r.region: r for r in run_suites(settings, ["EG", "KE"], [DAY_1], central=False, docs=False)[0]}
    assert results["EG"].success, results["EG"].failures
    assert [tuple(f["columns"]) for f in results["KE"].failures] == [("fee_minor", "expected_fee")]
    assert results["KE"].failures[0]["unexpected_count"] == 1


def test_a_build_with_no_record_of_the_last_one_publishes_every_day(settings: Settings):
    """A store upgrade clears the record of the last build (`model_builds`); a batch loaded since may restate an
    earlier day (a late reversal), which only that record could tell. Every day goes out again, not only the new
    batch's days, so the centre cannot keep an earlier day's old figures."""
    make_files(settings, regions=["KE"], rows=300, days=2)
    ingest_landing(settings, "KE")
    first = publish_region(settings, "KE")
    make_files(settings, regions=["KE"], rows=300, days=1, start=DAY_3, seed=8)
    ingest_landing(settings, "KE")
    with open_store(settings, "KE") as con:
        con.execute("DELETE FROM model_builds")  # as `kanda/regional/upgrades.py` does
    again = publish_region(settings, "KE")
    assert set(first.days) < set(again.days) and again.whole_region


def test_verify_compares_the_centre_row_by_row_not_only_by_totals(settings: Settings):
    """A day's flag or rate, or money moved between two days, leaves every total of `reconciliation` the same:
    the row-by-row comparison names the table and the days, and a republish of every day settles it."""
    from kanda.checks.verify import verify

    make_files(settings, regions=["KE"], rows=300, days=2)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    checks = {r.name: r for r in verify(settings, ["KE"])}
    assert checks["central_rows"].passed and checks["reconciliation"].passed, checks["central_rows"].message
    with open_store(settings, "KE") as con:
        con.execute(
            "UPDATE region_daily SET fees_stated = NOT fees_stated, payment_failure_rate = 0.5 WHERE local_date = ?",
            [DAY_2],
        )
    checks = {r.name: r for r in verify(settings, ["KE"])}
    assert checks["reconciliation"].passed  # the totals cannot see it
    rows = checks["central_rows"]
    assert not rows.passed
    assert "region_daily: 1 regional row(s) not in the centre and 1 central row(s) not in the store" in rows.message
    assert str(DAY_2) in rows.message and "--all-days" in rows.message
    publish_region(settings, "KE", all_days=True)
    assert next(r for r in verify(settings, ["KE"]) if r.name == "central_rows").passed
