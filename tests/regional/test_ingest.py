"""Ingestion end to end on real stores: conservation, idempotency, duplicates, status changes, holds, rejects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kanda.regional import batch as batch_module
from kanda.regional.batch import StagedBatch
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.ledger import UnbalancedBatch, verify_chain
from kanda.regional.models import build_models
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import all_regions
from regions.synthetic.core import DirtMix
from tests.support.builders import HEADER, paid, stripe_file
from tests.support.files import make_files


def store_counts(settings: Settings, region: str) -> dict[str, int]:
    with open_store(settings, region, read_only=True) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for table in ("sale_events", "quarantine", "ledger", "rejected_files")
        }


@pytest.mark.parametrize("region", sorted(all_regions()))
def test_every_region_ingests_its_native_file_and_balances(settings: Settings, region: str):
    make_files(settings, regions=[region], rows=800)
    report = ingest_landing(settings, region)
    (result,) = report.files
    assert result.status == "loaded", result.reason
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates
    assert result.loaded > 0.8 * result.rows_in
    assert result.quarantined > 0 and result.duplicates > 0  # the generator's dirt is there and is caught
    with open_store(settings, region, read_only=True) as con:
        events, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM sale_events").fetchall()[0]
        assert events == distinct == result.loaded
        reasons = con.execute("SELECT reasons FROM quarantine").fetchall()
        assert len(reasons) == result.quarantined
        assert all(json.loads(r[0]) for r in reasons)
        assert verify_chain(con) == []
    # the file moved out of the landing folder; a rerun finds nothing to do
    assert ingest_landing(settings, region).files == []


def test_same_file_twice_changes_nothing(settings: Settings):
    (generated,) = make_files(settings, regions=["NG"], rows=500)
    first = ingest_files(settings, "NG", [generated.path]).files[0]
    before = store_counts(settings, "NG")
    copy = generated.path.with_name("renamed-copy.ndjson")
    copy.write_bytes(generated.path.read_bytes())
    again = ingest_files(settings, "NG", [generated.path, copy]).files
    assert first.status == "loaded"
    assert [r.status for r in again] == ["already_ingested", "already_ingested"]
    assert store_counts(settings, "NG") == before


def test_redelivered_events_across_files_are_counted_duplicates(settings: Settings, tmp_path: Path):
    folder = tmp_path / "in"
    a = stripe_file(folder, "a.csv", [paid("ch_1", "2026-10-05 10:00:00"), paid("ch_2", "2026-10-05 11:00:00")])
    b = stripe_file(folder, "b.csv", [paid("ch_2", "2026-10-05 11:00:00"), paid("ch_3", "2026-10-05 12:00:00")])
    make_files(settings, regions=["EG"], rows=50)  # registry
    results = ingest_files(settings, "EG", [a, b]).files
    assert [(r.loaded, r.duplicates) for r in results] == [(2, 0), (1, 1)]


@pytest.mark.parametrize("every_hash_collides", [False, True])
def test_duplicates_are_found_by_their_parts_whatever_the_hash(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_hash_collides: bool
):
    """The load looks for duplicates by a hash of the event's parts first: a hash shared by every event (all
    collide) must give the same store as a real one, since only the parts decide."""
    if every_hash_collides:
        monkeypatch.setattr(batch_module, "_EVENT_HASH", "0")
    folder = tmp_path / "in"
    a = stripe_file(
        folder,
        "a.csv",
        [
            paid("ch_1", "2026-10-05 10:00:00"),
            paid("ch_2", "2026-10-05 11:00:00"),
            paid("ch_2", "2026-10-05 11:00:00", amount="9,00"),  # the same event with other money: quarantined
            paid("ch_4", "2026-10-05 11:30:00", status="Pending"),
        ],
    )
    b = stripe_file(
        folder,
        "b.csv",
        [
            paid("ch_2", "2026-10-05 11:00:00"),  # already stored
            paid("ch_3", "2026-10-05 12:00:00"),
            paid("ch_3", "2026-10-05 12:00:00"),
            paid("ch_4", "2026-10-05 11:40:00"),  # the same payment, now succeeded: a new event
            paid("ch_5", "2026-10-05 13:00:00", status="Pending"),  # two events of one payment, each sent twice
            paid("ch_5", "2026-10-05 13:00:00", status="Pending"),
            paid("ch_5", "2026-10-05 13:05:00"),
            paid("ch_5", "2026-10-05 13:05:00"),
        ],
    )
    make_files(settings, regions=["EG"], rows=50)  # registry
    results = ingest_files(settings, "EG", [a, b]).files
    assert [(r.loaded, r.quarantined, r.duplicates) for r in results] == [(3, 1, 0), (4, 0, 4)]
    with open_store(settings, "EG", read_only=True) as con:
        stored = con.execute(
            "SELECT transaction_id, status, amount_minor, source_row FROM sale_events ORDER BY ALL"
        ).fetchall()
        (held,) = con.execute("SELECT transaction_id, source_row, reasons->>'$[0].rule' FROM quarantine").fetchall()
    assert stored == [
        ("ch_1", "success", 25_000, 1),
        ("ch_2", "success", 25_000, 2),
        ("ch_3", "success", 25_000, 2),
        ("ch_4", "pending", 25_000, 4),
        ("ch_4", "success", 25_000, 4),
        ("ch_5", "pending", 25_000, 5),
        ("ch_5", "success", 25_000, 7),
    ]
    assert held == ("ch_2", 3, "repeat_differs")


def test_status_changes_and_refunds_follow_the_sale(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    folder = tmp_path / "in"
    files = [
        stripe_file(folder, "1.csv", [paid("ch_9", "2026-10-05 10:00:00", status="Pending")]),
        stripe_file(folder, "2.csv", [paid("ch_9", "2026-10-05 10:01:00")]),
        stripe_file(folder, "3.csv", [paid("ch_9", "2026-10-07 09:00:00", status="Refunded", refunded="250,00")]),
    ]
    states = []
    for path in files:
        ingest_files(settings, "EG", [path])
        with open_store(settings, "EG") as con:
            build_models(con)
            states.append(
                con.execute("SELECT current_state FROM fct_sales WHERE transaction_id = 'ch_9'").fetchall()[0][0]
            )
            events = con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_9'").fetchall()[0][0]
    assert states == ["pending", "success", "refunded"]
    assert events == 3  # every status is kept as an event
    with open_store(settings, "EG", read_only=True) as con:
        days = con.execute(
            "SELECT local_date::VARCHAR, gross_minor, refunds_minor FROM creator_daily"
            " WHERE creator_id = 'EG-C0002' AND local_date IN ('2026-10-05', '2026-10-07') ORDER BY 1"
        ).fetchall()
    assert ("2026-10-07", 0, 25_000) in days  # the refund lands on its own local day


def test_a_charge_and_its_refund_quarantined_from_one_line_keep_ids_of_their_own(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    line = paid("ch_x", "2026-10-05 10:00:00", status="Refunded", refunded="250,00").replace("EG-C0002.EG-P00005", "")
    (result,) = ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "x.csv", [line])]).files
    assert (result.rows_in, result.quarantined) == (2, 2)  # the sale and its refund, both without a reference
    with open_store(settings, "EG", read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT quarantine_id FROM quarantine ORDER BY quarantine_id").fetchall()]
    assert len(set(ids)) == 2 and ids[0].endswith(":1") and ids[1].endswith(":1.2")


def test_a_line_quarantined_for_two_reasons_keeps_one_id_per_event(settings: Settings, tmp_path: Path):
    """The sale breaks a rule and its refund waits for an unknown creator: both leave the same line, numbered apart.

    The refund alone would pass the contract's screen; it is judged with its line so that the line's events are
    numbered together, never as two first events of line 1.
    """
    make_files(settings, regions=["EG"], rows=50)
    line = paid("ch_y", "2026-10-05 10:00:00", amount="-100,00", status="Refunded", refunded="250,00")
    line = line.replace("EG-C0002.EG-P00005", "EG-C0999.EG-P00005")
    (result,) = ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "y.csv", [line])]).files
    assert (result.rows_in, result.loaded, result.quarantined) == (2, 0, 2)
    with open_store(settings, "EG", read_only=True) as con:
        rows = con.execute("SELECT quarantine_id, hold FROM quarantine ORDER BY quarantine_id").fetchall()
    assert [(qid.rsplit(":", 1)[1], hold) for qid, hold in rows] == [("1", None), ("1.2", "unknown_creator")]


def test_unknown_creator_is_held_then_released_when_onboarded(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    line = paid("ch_new", "2026-10-05 10:00:00").replace("EG-C0002.EG-P00005", "EG-C0777.EG-P00005")
    path = stripe_file(tmp_path / "in", "new.csv", [line])
    (result,) = ingest_files(settings, "EG", [path]).files
    assert (result.loaded, result.quarantined) == (0, 1)
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT status, hold FROM quarantine").fetchall() == [("held", "unknown_creator")]
    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).head(1).with_columns(creator_id=pl.lit("EG-C0777"), region=pl.lit("EG"))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    report = ingest_files(settings, "EG", [])
    assert report.released is not None and report.released.loaded == 1
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT status FROM quarantine").fetchall() == [("released",)]
        row = con.execute("SELECT creator_id, source_file FROM sale_events WHERE transaction_id = 'ch_new'").fetchall()[
            0
        ]
        assert row == ("EG-C0777", "new.csv")  # provenance survives the hold
        assert verify_chain(con) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"name,email\nx,y\n", "none of the required columns is there (found: name, email)"),
        (HEADER.encode() + b'ch_1;Payment;2026-10-05 10:00:00;"250', "malformed or truncated"),
    ],
)
def test_unreadable_files_are_rejected_whole_recorded_and_kept(settings, tmp_path, content, reason):
    make_files(settings, regions=["EG"], rows=20)
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    (result,) = ingest_files(settings, "EG", [path]).files
    assert result.status == "rejected"
    assert reason in result.reason
    with open_store(settings, "EG", read_only=True) as con:
        (kept, recorded) = con.execute("SELECT kept_at, reason FROM rejected_files").fetchall()[0]
        assert con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0] == 0
    assert Path(kept).read_bytes() == content
    assert recorded == result.reason


def test_a_batch_that_does_not_balance_writes_nothing(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    (generated,) = make_files(settings, regions=["EG"], rows=300)
    real = StagedBatch._load_events

    def lossy(self: StagedBatch, con) -> int:
        inserted = real(self, con)
        con.execute("DELETE FROM sale_events WHERE rowid = (SELECT max(rowid) FROM sale_events)")  # a lost row
        return inserted

    monkeypatch.setattr(StagedBatch, "_load_events", lossy)
    with pytest.raises(UnbalancedBatch, match="nothing was written"):
        ingest_files(settings, "EG", [generated.path])
    assert store_counts(settings, "EG") == {"sale_events": 0, "quarantine": 0, "ledger": 0, "rejected_files": 0}


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from kanda.regional import batch, ledger
    from kanda.regional.ingest import ingest_files
    from kanda.settings import load_settings

    where = sys.argv[2]
    if where == "staging":  # the process dies while the third chunk is being validated and staged
        real_add, calls = batch.StagedBatch.add, {"n": 0}

        def add(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                os._exit(137)
            return real_add(self, *args, **kwargs)

        batch.StagedBatch.add = add
    else:  # the process dies inside the load transaction, after the rows went in, before the commit
        def append(con, entry):
            os._exit(137)

        batch.ledger.append = append
    ingest_files(load_settings(), "EG", [Path(sys.argv[1])])
    """
)


@pytest.mark.parametrize("where", ["staging", "in_transaction"])
def test_a_crash_mid_batch_leaves_the_store_as_before_and_a_rerun_finishes(settings: Settings, where: str):
    first = make_files(settings, regions=["EG"], rows=300, seed=1)[0].path
    second = make_files(settings, regions=["EG"], rows=2_000, seed=2)[0].path
    ingest_files(settings, "EG", [first])
    before = store_counts(settings, "EG")
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(second), where], env=os.environ.copy(), check=False)
    assert crashed.returncode == 137
    assert store_counts(settings, "EG") == before  # nothing of the half-done batch is visible
    (result,) = ingest_files(settings, "EG", [second]).files
    assert result.status == "loaded" and result.rows_in == 2_000
    assert not any((settings.home / "staging").rglob("*.parquet"))  # the crashed run's leftovers are gone
    with open_store(settings, "EG", read_only=True) as con:
        assert verify_chain(con) == []
        assert con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0] == before["sale_events"] + result.loaded


def test_tampering_with_the_ledger_is_detected(settings: Settings):
    make_files(settings, regions=["EG"], rows=200)
    ingest_landing(settings, "EG")
    with open_store(settings, "EG") as con:
        con.execute("UPDATE ledger SET loaded = loaded + 1")
        problems = verify_chain(con)
    assert any("do not match its hash" in p for p in problems)
    assert any("does not balance" in p or "!=" in p for p in problems)


@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    dirt=st.floats(0, 8),
    rows=st.integers(1, 400),
    region=st.sampled_from(["NG", "KE", "PK", "EG"]),
)
def test_any_file_balances_and_ingests_exactly_once(settings: Settings, seed, dirt, rows, region):
    (generated,) = make_files(settings, regions=[region], rows=rows, seed=seed, dirt=DirtMix().scaled(dirt))
    first = ingest_files(settings, region, [generated.path]).files[0]
    assert first.status in {"loaded", "already_ingested"}
    if first.status == "loaded":
        assert first.rows_in == first.loaded + first.quarantined + first.duplicates
    before = store_counts(settings, region)
    again = ingest_files(settings, region, [generated.path]).files[0]
    assert again.status == "already_ingested"
    assert store_counts(settings, region) == before


def test_a_line_quarantined_for_its_time_counts_on_the_day_it_arrived(settings: Settings, tmp_path: Path):
    """A statement line whose time is a typo from 2014 is quarantined for it. It was counted on the day the typo
    names: region_daily gained a 2014 day with a quarantine rate of 1.0, while the day the line came in showed none
    of it. It counts on the region's local day it arrived, as a line with no readable time does."""
    import datetime as dt

    from kanda.regional.models import build_models
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    header = "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance"
    details = "Pay Bill Online from 0712345678 - JANE WANJIKU Acc. KE-C0001.KE-P00001"
    lines = [f'SBA3000001,2014-10-06 10:00:00,{details},Completed,"1,000.00",,0']
    report = ingest_written(settings, "KE", tmp_path / "typo.csv", "\n".join([header, *lines]) + "\n")
    assert (report.loaded, report.quarantined) == (0, 1), report
    with open_store(settings, "KE") as con:
        build_models(con)
        (arrived,) = con.execute(
            "SELECT CAST(timezone('Africa/Nairobi', quarantined_at) AS DATE) FROM quarantine"
        ).fetchall()
        days = con.execute("SELECT local_date, rows_quarantined FROM region_daily WHERE rows_quarantined > 0")
        assert days.fetchall() == [(arrived[0], 1)]
        assert arrived[0] > dt.date(2026, 1, 1)
