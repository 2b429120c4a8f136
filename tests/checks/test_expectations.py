"""Great Expectations suites on stored days and published rollups: as Dagster asset checks, from the CLI, and in
Data Docs that work offline.

GX is slow to import, so the data is small: one or two regions, two local days. Each suite is one validation over
every region and day asked for, whose verdict is split back per region and day: a failure must be told to the
region and day it is in, never to its neighbours in the same validation.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.checks import gx_runner
from kanda.checks.gx_runner import data_docs_dir, latest_results
from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.regional.ledger import record_upgrade
from kanda.regional.store import open_store
from kanda.settings import Settings
from pipelines.expectations import central_rollups_expectations, sale_events_expectations
from pipelines.jobs import REGION_FLOW_ASSETS
from pipelines.resources import KandaSettings
from quality.expectations import ROLLUP_SUITES, SALE_EVENTS_SUITE
from tests.support.files import START, make_files

DAYS = [START, START + dt.timedelta(days=1)]
# Anything a page would fetch by itself: scripts, stylesheets, images, fonts. Plain links may point anywhere.
REMOTE_FETCH = re.compile(r"<(script|link|img)[^>]+(src|href)=\"https?://", re.IGNORECASE)


def test_asset_checks_pass_on_clean_data_and_data_docs_work_offline(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    make_files(settings, regions=["KE"], rows=300, days=2)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*REGION_FLOW_ASSETS, sale_events_expectations, central_rollups_expectations],
            partition_key="KE",
            resources={"kanda": KandaSettings(home=str(settings.home))},
            instance=instance,
        )
    assert result.success
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # the GX checks, and the flow's own check that no file of the run was rejected
    assert set(verdicts) == {"sale_events_expectations", "central_rollups_expectations", "no_rejected_files"}
    for verdict in verdicts.values():
        assert verdict.passed, verdict.description
    days = verdicts["sale_events_expectations"].metadata["results"].value
    assert [(d["local_date"], d["success"]) for d in days] == [(d.isoformat(), True) for d in DAYS]
    central = verdicts["central_rollups_expectations"].metadata["results"].value
    assert {r["suite"] for r in central} == set(ROLLUP_SUITES.values())

    index = Path(verdicts["sale_events_expectations"].metadata["data_docs_index"].value)
    assert index == data_docs_dir(settings) / "index.html"
    text = index.read_text()
    for suite in (SALE_EVENTS_SUITE, *ROLLUP_SUITES.values()):
        assert suite in text
    for page in data_docs_dir(settings).rglob("*.html"):
        assert not REMOTE_FETCH.search(page.read_text()), f"{page} fetches from the internet"
    assert (data_docs_dir(settings) / "static" / "vendor" / "jquery-3.7.1.min.js").exists()

    # What the steward quality page reads: the newest result per suite and day, each with its Data Docs page.
    latest = latest_results(settings, "ke")
    assert [(r["suite"], r["local_date"]) for r in latest] == [
        *((suite, None) for suite in sorted(ROLLUP_SUITES.values())),
        (SALE_EVENTS_SUITE, DAYS[1].isoformat()),
        (SALE_EVENTS_SUITE, DAYS[0].isoformat()),
    ]
    for row in latest:
        assert row["success"] and row["evaluated"] >= 10 and row["unsuccessful"] == 0 and row["rows"] > 0
        assert (data_docs_dir(settings) / row["docs_path"]).exists(), row["docs_path"]
    assert latest_results(settings, "NG") == []

    # Both days were judged in one validation: one page for both.
    assert latest[-1]["docs_path"] == latest[-2]["docs_path"]

    # Old results are pruned with their pages, so the index does not grow without end; but not a page that a day's
    # newest result still points at.
    monkeypatch.setattr(gx_runner, "KEEP_RESULTS", 1)
    first = latest[-1]["docs_path"]
    (again,) = gx_runner.run_region_suites(settings, "KE", [DAYS[0]])
    gx_runner.build_data_docs(settings, [again])
    runs = data_docs_dir(settings) / "validations" / SALE_EVENTS_SUITE / "KE"
    assert sorted(p.name for p in runs.iterdir()) == sorted([first.split("/")[3], again.docs_path.split("/")[3]])
    newest = {r["local_date"]: r["docs_path"] for r in latest_results(settings, "KE")}
    assert (newest[DAYS[0].isoformat()], newest[DAYS[1].isoformat()]) == (again.docs_path, first)
    both = gx_runner.run_region_suites(settings, "KE")
    gx_runner.build_data_docs(settings, both)
    assert [p.name for p in runs.iterdir()] == [both[0].docs_path.split("/")[3]]


def test_a_broken_store_fails_with_the_rule_the_rows_and_the_page(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    make_files(settings, regions=["KE", "GH"], rows=300, days=2)
    for code in ("KE", "GH"):
        ingest_landing(settings, code)
    with open_store(settings, "KE") as con:
        # A fee larger than its sale (net left as it was), a sale in another region's currency, and one of a product
        # id with Ghana's shape (a valid id, but not of a Kenyan product).
        # And a buyer's e-mail address as a channel (stored before the contract held channels to a word's shape).
        sale, other, product, channel = con.execute(
            "SELECT event_id FROM sale_events WHERE event_type = 'sale' AND status = 'success' AND local_date = ?"
            " ORDER BY 1 LIMIT 4",
            [DAYS[1]],
        ).fetchall()
        con.execute("UPDATE sale_events SET fee_minor = amount_minor + 500 WHERE event_id = ?", [sale[0]])
        con.execute("UPDATE sale_events SET currency = 'NGN' WHERE event_id = ?", [other[0]])
        con.execute("UPDATE sale_events SET product_id = 'GH-P00001' WHERE event_id = ?", [product[0]])
        con.execute("UPDATE sale_events SET channel = 'jane.doe@example.com' WHERE event_id = ?", [channel[0]])
    for code in ("KE", "GH"):
        publish_region(settings, code)

    run = CliRunner().invoke(app, ["expectations", "--region", "KE", "--region", "GH", "--json"])
    assert run.exit_code == 1, run.output
    report = json.loads(run.stdout)
    results = {(r["region"], r["suite"], r["local_date"]): r for r in report["results"]}
    # The untouched day, and Ghana (judged in the same validations), pass.
    assert results[("KE", SALE_EVENTS_SUITE, DAYS[0].isoformat())]["success"]
    ghana = [r for r in report["results"] if r["region"] == "GH"]
    assert len(ghana) == len(DAYS) + len(ROLLUP_SUITES) and all(r["success"] for r in ghana)
    assert all(r["rows"] > 0 for r in report["results"])

    broken = results[("KE", SALE_EVENTS_SUITE, DAYS[1].isoformat())]
    assert not broken["success"]
    failing = {tuple(f["columns"]): f for f in broken["failures"]}
    # The fee also breaks the rail's word: M-Pesa states no fees, so none of its events has one.
    assert set(failing) == {
        ("abs_amount", "fee_minor"),
        ("net_minor", "amount_minus_fee"),
        ("fee_minor", "expected_fee"),
        ("currency", "expected_currency"),
        ("region_product_id",),
        ("channel_well_formed",),
    }
    assert failing[("channel_well_formed",)]["examples"] == [False]  # the address itself never reaches Data Docs
    assert "jane.doe" not in (data_docs_dir(settings) / broken["docs_path"]).read_text()
    assert broken["unsuccessful"] == len(failing)
    assert all(f["unexpected_count"] == 1 for f in failing.values())
    assert failing[("currency", "expected_currency")]["examples"] == [["NGN", "KES"]]
    assert failing[("region_product_id",)]["examples"] == ["KE|GH-P00001"]
    assert (
        "expect_column_pair_values_to_be_equal on currency, expected_currency: 1 row(s), e.g. [['NGN', 'KES']]"
        in failing[("currency", "expected_currency")]["summary"]
    )

    # The wrong fee and currency reached the centre: its creator rollup no longer adds up and mixes currencies.
    rollup = results[("KE", ROLLUP_SUITES["creator_daily"], None)]
    assert not rollup["success"]
    assert {tuple(f["columns"]) for f in rollup["failures"]} >= {
        ("net_minor", "expected_net"),
        ("currency", "expected_currency"),
    }
    products = results[("KE", ROLLUP_SUITES["product_daily"], None)]
    assert ("region_product_id",) in {tuple(f["columns"]) for f in products["failures"]}

    page = data_docs_dir(settings) / broken["docs_path"]
    assert Path(report["data_docs"]) == data_docs_dir(settings) / "index.html"
    assert "Failed" in page.read_text() and "fee_minor" in page.read_text()

    # Past MAX_BATCH_ROWS the regions are validated in several frames: the same verdicts, one page per frame.
    monkeypatch.setattr(gx_runner, "MAX_BATCH_ROWS", 1)
    split, _ = gx_runner.run_suites(settings, ["KE", "GH"], central=False, docs=False)
    assert len({r.docs_path for r in split}) == 2
    assert [(r.region, r.local_date, r.success, r.unsuccessful, r.rows) for r in split] == [
        (r["region"], r["local_date"], r["success"], r["unsuccessful"], r["rows"])
        for r in report["results"]
        if r["suite"] == SALE_EVENTS_SUITE
    ]


def test_the_cli_on_an_empty_installation_says_there_is_nothing_to_validate(settings: Settings):
    run = CliRunner().invoke(app, ["expectations", "--region", "KE"])
    assert run.exit_code == 0, run.output
    assert "nothing to validate" in run.output
    assert CliRunner().invoke(app, ["expectations", "--region", "XX"]).exit_code == 2
    assert CliRunner().invoke(app, ["expectations", "--date", "5 Oct"]).exit_code == 2


def test_the_days_validated_by_default_follow_the_latest_file_past_a_store_upgrades_ledger_row(settings: Settings):
    """A late file's days are validated beside the newest ones. A store upgrade that restates batches' money adds a
    ledger row of its own that loaded nothing; the late file is still the latest batch whose days are checked."""
    make_files(settings, regions=["KE"], rows=200, days=3)
    ingest_landing(settings, "KE")
    late = START - dt.timedelta(days=40)
    make_files(settings, regions=["KE"], rows=50, days=1, start=late, seed=9)
    ingest_landing(settings, "KE")
    with open_store(settings, "KE") as con:
        assert late in gx_runner.default_days(con, last=3)
        record_upgrade(con, "some_upgrade", [])
        assert con.execute("SELECT kind FROM ledger ORDER BY seq DESC LIMIT 1").fetchall() == [("upgrade",)]
        assert late in gx_runner.default_days(con, last=3)
