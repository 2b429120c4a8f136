"""A brand-new region from nothing but YAML and a file: ingested, quarantined with reasons, built and published.

No Python is added for Rwanda or Uganda: the region files (with their rail specs inline) are written by the test
into a folder named by `KANDA_REGIONS_DIR`, the landing files are a hand-written sample and a generated file.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from kanda.central.query import run_query
from kanda.flow import run_region
from kanda.settings import Settings
from regions import get_region
from tests.regions.spec_regions import write_regions
from tests.support.files import make_files


@pytest.fixture
def spec_settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    write_regions(tmp_path / "regions", monkeypatch)
    return settings


def test_a_region_defined_only_in_yaml_is_ingested_and_published(spec_settings: Settings) -> None:
    settings = spec_settings
    files = make_files(settings, regions=["RW"], rows=900)
    landing = settings.landing("RW")
    assert files[0].path.parent == landing
    sample = landing / "rw_sample.csv"
    sample.write_text(
        "ACME MOBILE MONEY - MERCHANT STATEMENT\n"
        "Txn Id,Status,Amount,Fee,Transaction Date,Description,From\n"
        'S1,Completed,"15,000",225,05/10/2026 12:00:00,Payment REF RW-C0001/RW-P00001,0788000001\n'
        "S2,Completed,15000,0,05/10/2026 12:05:00,Payment without a reference,0788000002\n"
        "S3,Completed,15.5,0,05/10/2026 12:10:00,Payment REF RW-C0001/RW-P00001,0788000003\n"
        "S4,Cash Out,4000,0,05/10/2026 12:15:00,Agent withdrawal,\n"
        "S5,Completed,9000,0,05/10/2026 12:20:00,Payment REF RW-C0999/RW-P00001,0788000005\n"
        "Totals,,43500,225,,,\n"
    )
    run = run_region(settings, "RW")

    results = {f.file: f for f in run.ingest.files}
    assert all(f.status == "loaded" for f in results.values()), [f.reason for f in results.values()]
    got = results["rw_sample.csv"]
    # title line, Cash Out row and Totals row are ignored; S2 and S3 quarantined; S5 held (creator not onboarded)
    assert (got.rows_in, got.loaded, got.quarantined, got.ignored) == (4, 1, 3, 3)
    generated = results[files[0].path.name]
    assert generated.loaded > 700 and generated.quarantined > 0

    with duckdb.connect(str(settings.store_path("RW")), read_only=True) as con:
        loaded = con.execute(
            "SELECT amount_minor, fee_minor, currency, occurred_at::VARCHAR FROM sale_events WHERE source_file = ?",
            ["rw_sample.csv"],
        ).fetchall()
        quarantined = con.execute(
            "SELECT source_row, reasons, hold FROM quarantine WHERE source_file = ? ORDER BY source_row",
            ["rw_sample.csv"],
        ).fetchall()
    assert loaded == [(15_000, 225, "RWF", "2026-10-05 10:00:00+00")]  # RWF exponent 0; Kigali is UTC+2
    rules = {row: ({r["rule"] for r in json.loads(reasons)}, hold) for row, reasons, hold in quarantined}
    assert rules[2][0] == {"missing_or_unreadable"} and rules[3][0] == {"missing_or_unreadable"}
    assert rules[5] == ({"unknown_creator"}, "unknown_creator")

    assert run.publish is not None and run.publish.published
    central = run_query(
        settings, "select region, sum(net_minor) as net, sum(orders) as orders from rollups.region_daily group by 1"
    ).to_pylist()
    with duckdb.connect(str(settings.store_path("RW")), read_only=True) as con:
        regional = con.execute("SELECT sum(net_minor), sum(orders) FROM region_daily").fetchall()[0]
    assert [(r["region"], r["net"], r["orders"]) for r in central] == [("RW", *regional)]
    assert regional[0] > 0


def test_a_stripe_style_x100_region_publishes_exact_zero_decimal_money(spec_settings: Settings) -> None:
    settings = spec_settings
    landing = settings.landing("UG")
    landing.mkdir(parents=True, exist_ok=True)
    make_files(settings, regions=["UG"], rows=300)
    (landing / "ug_sample.csv").write_text(
        "id,Status,Amount,Amount Refunded,Fee,Currency,Created (UTC),kanda_ref (metadata),Customer Email\n"
        "ch_s1,Paid,5000000,0,75000,ugx,2026-10-05 09:00:00,UG-C0001.UG-P00001,x@y.example\n"
        "ch_s1,Refunded,5000000,5000000,0,ugx,2026-10-05 11:00:00,UG-C0001.UG-P00001,x@y.example\n"
        "ch_s2,Paid,2000000,0,30000,ugx,2026-10-05 12:00:00,UG-C0001.UG-P00001,x@y.example\n"
    )
    run = run_region(settings, "UG")
    assert run.publish is not None and run.publish.published
    assert get_region("UG").exponent == 0
    with duckdb.connect(str(settings.store_path("UG")), read_only=True) as con:
        amounts = con.execute(
            "SELECT transaction_id, event_type, amount_minor, fee_minor, net_minor FROM sale_events"
            " WHERE source_file = 'ug_sample.csv' ORDER BY ALL"
        ).fetchall()
    # UGX 50,000 sent as 5000000 (x100, declared in the spec): stored as 50000, not 5000000 and not 500.
    assert amounts == [
        ("ch_s1", "refund", -50_000, 0, -50_000),
        ("ch_s1", "sale", 50_000, 750, 49_250),
        ("ch_s2", "sale", 20_000, 300, 19_700),
    ]
    day = run_query(
        settings,
        "select sum(gross_minor) as gross, sum(refunds_minor) as refunds from rollups.region_daily"
        " where region = 'UG' and local_date = DATE '2026-10-05'",
    ).to_pylist()[0]
    with duckdb.connect(str(settings.store_path("UG")), read_only=True) as con:
        regional = con.execute(
            "SELECT sum(gross_minor), sum(refunds_minor) FROM region_daily WHERE local_date = DATE '2026-10-05'"
        ).fetchall()[0]
    assert (day["gross"], day["refunds"]) == regional
