"""Trust: a ledger rewritten with its own hash functions is caught by the heads anchored centrally, and a lost or
corrupt central data file is reported by `kanda verify` (not a crash) and repaired by `kanda publish --rebuild`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from pyiceberg.expressions import EqualTo
from typer.testing import CliRunner

from kanda.central.catalog import NAMESPACE, latest_publication, open_catalog, publication_rows
from kanda.central.publish import HistoryNotInStore, publish_region
from kanda.central.query import run_query
from kanda.checks.verify import reconcile_region, verify
from kanda.cli import app
from kanda.regional import ledger
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from tests.support.files import START, make_files


def failures(settings: Settings, regions: list[str] | None = None) -> dict[str, str]:
    return {r.name: r.message for r in verify(settings, regions) if not r.passed and r.severity == "error"}


def rechain(con: duckdb.DuckDBPyConnection) -> None:
    """What someone who can write the store does after editing it: restate each batch's money as its events hold
    it and recompute every link with the ledger's own functions, so the chain is internally perfect again."""
    rows = con.execute(
        "SELECT seq, batch_id, region, kind, file_name, content_hash, rows_read, ignored, rows_in, loaded,"
        " quarantined, duplicates, started_at, finished_at FROM ledger ORDER BY seq"
    ).fetchall()
    held = ledger.batch_money(con)
    con.execute("DELETE FROM batch_money")
    prev = ledger.GENESIS
    for seq, batch_id, region, kind, file_name, content_hash, *counts, started, finished in rows:
        money = held.get(batch_id) or ledger.BatchMoney.empty(batch_id)
        con.execute(
            "INSERT INTO batch_money VALUES (?, ?, ?, ?, ?, ?, ?)",
            [seq, batch_id, money.events, money.amount_minor, money.fee_minor, money.net_minor, money.digest],
        )
        entry = ledger.LedgerEntry(
            batch_id, region, kind, file_name, content_hash, ledger.BatchCounts(*counts), started, finished, [money]
        )
        row_hash = ledger._row_hash(prev, seq, entry)
        con.execute("UPDATE ledger SET prev_hash = ?, row_hash = ? WHERE seq = ?", [prev, row_hash, seq])
        prev = row_hash


def test_a_deleted_event_with_a_recomputed_chain_is_caught_by_the_anchored_ledger_heads(settings: Settings):
    make_files(settings, regions=["KE"], rows=300, days=2)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    (late,) = make_files(settings, regions=["KE"], rows=40, days=1, seed=99, start=START + dt.timedelta(days=1))
    ingest_files(settings, "KE", [late.path])
    publish_region(settings, "KE")
    anchors = publication_rows(open_catalog(settings))
    assert len(anchors) == 2 and anchors[0]["ledger_seq"] < anchors[1]["ledger_seq"]  # the chain grew between them
    assert failures(settings) == {}  # honest growth passes every anchor

    with open_store(settings, "KE") as con:  # an edit to history by someone who can write the store
        event_id, batch_id, day = con.execute(  # a sale of the oldest batch: every anchor comes after it
            "SELECT e.event_id, e.batch_id, e.local_date FROM sale_events e JOIN ledger l USING (batch_id)"
            " WHERE e.status = 'success' AND e.event_type = 'sale' ORDER BY l.seq, e.event_id LIMIT 1"
        ).fetchall()[0]
        con.execute("DELETE FROM sale_events WHERE event_id = ?", [event_id])
        con.execute(
            "UPDATE ledger SET rows_read = rows_read - 1, rows_in = rows_in - 1, loaded = loaded - 1"
            " WHERE batch_id = ?",
            [batch_id],
        )
        rechain(con)
        con.execute("INSERT INTO dirty_days VALUES (?)", [day])
    # the edited history is not published over what was (it used to be, and only verify noticed)
    with pytest.raises(HistoryNotInStore, match=f"ledger row {anchors[-1]['ledger_seq']}.*history rewritten"):
        publish_region(settings, "KE")

    found = failures(settings)
    # the store alone cannot tell (its chain and counts agree with the edited history): the anchors can
    assert "ledger_anchors" in found, found
    first_anchor = anchors[0]
    assert found["ledger_anchors"].startswith("KE: ")
    assert first_anchor["ledger_batch_id"] in found["ledger_anchors"]
    assert f"ledger row {first_anchor['ledger_seq']}" in found["ledger_anchors"]
    assert "hash" in found["ledger_anchors"]


def test_a_lost_store_started_again_does_not_replace_the_regions_published_history(settings: Settings):
    """A region's store deleted (a lost disk), then one new day's file ingested into a new store: the next routine
    `kanda publish` replaced the region's central history, every day, with that one day, and exited 0; only a
    later `kanda verify` noticed. It is refused now, naming the repairs, and the other regions publish; `--rebuild`
    is how an operator says that the new store's history is the one to keep."""
    make_files(settings, regions=["KE", "NG"], rows=200, days=3)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
        publish_region(settings, code)
    total = "select count(*) as n, sum(net_minor) as net from rollups.region_daily where region = 'KE'"
    before = run_query(settings, total).to_pylist()

    (settings.stores_dir / "ke.duckdb").unlink()
    later = START + dt.timedelta(days=10)
    make_files(settings, regions=["KE", "NG"], rows=40, days=1, seed=5, start=later)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    result = CliRunner().invoke(app, ["publish"])
    assert result.exit_code == 1, result.output
    assert "store does not hold the history" in result.output and "--rebuild" in result.output
    assert run_query(settings, total).to_pylist() == before
    assert publication_rows(open_catalog(settings))[-1]["region"] == "NG"  # the healthy region published

    rebuilt = CliRunner().invoke(app, ["publish", "--region", "KE", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert run_query(settings, total).to_pylist()[0]["n"] < before[0]["n"]  # the operator's choice, made


def published_file(settings: Settings, table: str, region: str) -> Path:
    catalog = open_catalog(settings)
    snapshot = latest_publication(catalog).snapshots[table]
    tasks = catalog.load_table(f"{NAMESPACE}.{table}").scan(snapshot_id=snapshot, row_filter=EqualTo("region", region))
    return Path(next(iter(tasks.plan_files())).file.file_path.removeprefix("file://"))


@pytest.mark.parametrize("damage", ["lost", "corrupt"])
def test_a_lost_or_corrupt_data_file_is_reported_and_a_rebuild_from_the_store_repairs_it(
    settings: Settings, damage: str
):
    make_files(settings, regions=["KE", "NG"], rows=240, days=2)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
        publish_region(settings, code)
    path = published_file(settings, "creator_daily", "NG")
    if damage == "lost":
        path.unlink()
    else:  # bit rot at the end: same size, no readable Parquet footer
        data = bytearray(path.read_bytes())
        data[-64:] = bytes(64)
        path.write_bytes(bytes(data))

    found = failures(settings)  # reported, not raised
    report = found["central_data_files"]
    assert "rollups.creator_daily" in report and path.name in report
    assert "kanda publish --region NG --rebuild" in report
    assert "reconciliation" in found and "NG" in found["reconciliation"]  # NG's central rows cannot be read
    assert failures(settings, ["KE"]).keys() == {"central_data_files"}  # KE still reconciles
    # ... and so does the reconciliation check of KE's own Dagster runs (it failed every region's run with NG's
    # FileNotFoundError); NG's names the file and the repair
    with open_store(settings, "KE", read_only=True) as con:
        assert reconcile_region(settings, con, get_region("KE")).passed
    with open_store(settings, "NG", read_only=True) as con:
        own = reconcile_region(settings, con, get_region("NG"))
    assert not own.passed and path.name in own.message and "kanda publish --region NG --rebuild" in own.message

    runner = CliRunner()
    assert runner.invoke(app, ["publish", "--rebuild"]).exit_code == 2  # a repair names its region
    repaired = runner.invoke(app, ["publish", "--region", "NG", "--rebuild"])
    assert repaired.exit_code == 0, repaired.output
    assert "NG: rebuilt from its store" in repaired.output
    assert failures(settings) == {}
    assert published_file(settings, "creator_daily", "NG") != path  # fresh data files for the region
