"""The whole steward loop on real files, stores, catalog and review database (the issue's first "done when").

A dirty row is quarantined by ingestion, queued, fixed by a steward, re-validated by the contract, reprocessed
through the ingestion path, and then shows up in the regional store and the central rollup; the audit log holds
every step; a second reprocess changes nothing and `kanda verify` still proves the ledger a true account.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.checks.verify import verify
from kanda.flow import reprocess_region, run_region
from kanda.regional.ingest import ingest_files
from kanda.regional.status import region_status
from kanda.regional.store import open_store
from kanda.review import reprocess as reprocess_module
from kanda.review.actor import Actor
from kanda.review.reprocess import pending_items
from kanda.review.service import (
    FixInvalid,
    ReviewFilter,
    approve,
    enqueue_region,
    get_item,
    list_items,
    reject,
    revalidate,
    save_edits,
    waive,
)
from kanda.settings import Settings
from tests.support.files import make_files
from tests.support.steward_files import ingest_dirty_egypt, ingest_dirty_kenya, line, write

STEWARD = Actor("amina", "steward", frozenset({"EG"}))


#: A Gumroad-style export's header as the TZ rail reads it (a purchase's refund and dispute flags included).
TZ_HEADER = (
    "Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (TZS),Fees (TZS),Net Total (TZS),Refunded?,"
    "Fully Refunded?,Disputed?,Dispute Won?\n"
)


def by_transaction(settings: Settings) -> dict[str, int]:
    return {i.transaction_id: i.id for i in list_items(settings, STEWARD, ReviewFilter(), limit=100)}


def central_net(settings: Settings, day: str) -> int:
    rows = run_query(
        settings,
        f"SELECT coalesce(sum(net_minor), 0) AS net FROM rollups.creator_daily"
        f" WHERE region = 'EG' AND local_date = DATE '{day}'",
    ).to_pylist()
    return rows[0]["net"]


def central_quarantined(settings: Settings, day: str) -> int:
    rows = run_query(
        settings,
        f"SELECT rows_quarantined FROM rollups.region_daily WHERE region = 'EG' AND local_date = DATE '{day}'",
    ).to_pylist()
    return rows[0]["rows_quarantined"] if rows else 0  # a day with nothing on it has no row


def store_snapshot(settings: Settings) -> dict:
    with open_store(settings, "EG", read_only=True) as con:
        return {
            "events": con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0],
            "ledger": con.execute("SELECT count(*) FROM ledger").fetchall()[0][0],
            "quarantine": con.execute("SELECT status, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall(),
            "publishes": con.execute("SELECT count(*) FROM publish_log").fetchall()[0][0],
        }


def assert_verified(settings: Settings) -> None:
    results = verify(settings, ["EG"])
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


def test_a_fixed_row_reaches_the_store_and_the_central_rollup_once(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    publish_region(settings, "EG")
    before = central_net(settings, "2026-10-05")
    assert before == 25_000 - 375  # only ch_good so far
    assert central_quarantined(settings, "2026-10-05") == 1  # ch_bad

    assert enqueue_region(settings, "EG") == 4
    assert enqueue_region(settings, "EG") == 0  # idempotent: every quarantined row is queued once
    item_id = by_transaction(settings)["ch_bad"]
    item = get_item(settings, STEWARD, item_id)
    assert item.raw_record["Amount"] == "25O,00"  # the raw input as it arrived
    assert item.raw_record["Customer Email"] == "bu***@mail.example"  # buyer contact stays in the region
    assert [(r.rule, r.column, r.severity) for r in item.rules] == [("missing_or_unreadable", "amount_minor", "error")]
    assert item.parsed["amount_minor"] is None and item.parsed["fee_minor"] == 375

    # a wrong fix is shown as such, and cannot be approved
    wrong = revalidate(settings, STEWARD, item_id, {"amount_minor": "-25000"})
    assert not wrong.ok and [e.rule for e in wrong.errors] == ["amount_sign_matches_event_type"]
    assert not revalidate(settings, STEWARD, item_id, {"amount_minor": "25O00"}).ok  # not a number
    with pytest.raises(FixInvalid):
        approve(settings, STEWARD, item_id, "no edit yet")

    verdict = save_edits(settings, STEWARD, item_id, {"amount_minor": "25000"})
    assert verdict.ok and verdict.row["net_minor"] == "24625"  # derived fields follow the edit
    approve(settings, STEWARD, item_id, "letter O typed for a zero")
    assert pending_items(settings, "EG") == [item_id]

    result = reprocess_region(settings, "EG")
    assert result.loaded == [item_id] and result.publish_id is not None
    with open_store(settings, "EG", read_only=True) as con:
        event = con.execute(
            "SELECT amount_minor, net_minor, source_file, source_row, batch_id FROM sale_events"
            " WHERE transaction_id = 'ch_bad'"
        ).fetchall()
        quarantined = con.execute(
            "SELECT status, released_batch FROM quarantine WHERE transaction_id = 'ch_bad'"
        ).fetchall()
        kinds = con.execute("SELECT kind, rows_in, loaded FROM ledger ORDER BY seq").fetchall()
    assert event == [(25_000, 24_625, "eg-dirty.csv", 2, result.batch_id)]  # provenance kept
    assert quarantined == [("released", result.batch_id)]
    assert kinds[-1] == ("fix", 1, 1)
    assert central_net(settings, "2026-10-05") == before + 24_625
    assert central_quarantined(settings, "2026-10-05") == 0  # the day's quality figures follow the fix
    # the fix batch records its rail's fees answer too: Stripe states fees, so the day still says so
    flags = run_query(settings, "SELECT list(DISTINCT fees_stated) AS f FROM rollups.creator_daily WHERE region = 'EG'")
    assert flags.to_pylist() == [{"f": [True]}]

    history = get_item(settings, STEWARD, item_id).history
    assert [(h.actor, h.action) for h in history] == [
        ("system:enqueue", "enqueue"),
        ("amina", "edit"),
        ("amina", "approve"),
        ("system:reprocess", "reprocess"),
    ]
    assert history[1].before["edits"] == {} and history[1].after["edits"] == {"amount_minor": "25000"}
    assert history[2].reason == "letter O typed for a zero"
    assert history[3].after == {"status": "reprocessed", "batch": result.batch_id, "outcome": "loaded"}
    assert get_item(settings, STEWARD, item_id).status == "reprocessed"

    snapshot = store_snapshot(settings)
    again = reprocess_region(settings, "EG")
    assert not again.changed and again.batch_id is None and again.publish_id is None
    assert store_snapshot(settings) == snapshot
    assert central_net(settings, "2026-10-05") == before + 24_625
    assert_verified(settings)


def test_a_waived_warning_is_loaded_as_it_is(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    ids = by_transaction(settings)
    future = get_item(settings, STEWARD, ids["ch_future"])
    assert [(r.rule, r.severity) for r in future.rules] == [("not_in_future", "warning")]
    with pytest.raises(FixInvalid, match="only warning-level rules"):
        waive(settings, STEWARD, ids["ch_wrong"], "looks fine to me")  # an error is never waivable
    waive(settings, STEWARD, ids["ch_future"], "pre-order: the rail dates it on delivery")
    result = reprocess_region(settings, "EG")
    assert result.loaded == [ids["ch_future"]]
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_future'").fetchall() == [(1,)]
    assert get_item(settings, STEWARD, ids["ch_wrong"]).status == "new"
    assert_verified(settings)


def reprocess_cut_short_after_the_store_commit(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reprocess of EG that dies after its store transaction, before its review side records anything."""

    def die(*args, **kwargs):
        raise RuntimeError("power cut after the store commit")

    monkeypatch.setattr(reprocess_module, "_mark_loaded", die)
    with pytest.raises(RuntimeError, match="power cut"):
        reprocess_region(settings, "EG")
    monkeypatch.undo()


def test_a_crash_after_the_store_commit_does_not_load_twice(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    item_id = by_transaction(settings)["ch_bad"]
    approve(settings, STEWARD, item_id, edits={"amount_minor": "25000"})

    reprocess_cut_short_after_the_store_commit(settings, monkeypatch)
    assert get_item(settings, STEWARD, item_id).status == "fixed"  # the review side never heard of the load

    result = reprocess_region(settings, "EG")
    assert result.loaded == [] and result.already_loaded == [item_id]
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM ledger WHERE kind = 'fix'").fetchall() == [(1,)]
    item = get_item(settings, STEWARD, item_id)
    assert item.status == "reprocessed" and item.history[-1].reason.startswith("already loaded by batch")
    assert_verified(settings)


def test_a_fix_quarantined_again_by_a_run_cut_short_is_not_said_to_be_loaded(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A reprocess whose review side never ran (a crash, or another run marking the items first) is finished by the
    next run from the store's side. A fix its batch quarantined again (held: its creator left the registry) did not
    reach the figures: its item says so, as an uninterrupted run would, instead of "already loaded"."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    item_id = by_transaction(settings)["ch_bad"]
    approve(settings, STEWARD, item_id, "letter O typed for a zero", edits={"amount_minor": "25000"})
    creators = settings.registry_dir / "creators.csv"
    pl.read_csv(creators, infer_schema_length=0).filter(pl.col("creator_id") != "EG-C0002").write_csv(creators)

    reprocess_cut_short_after_the_store_commit(settings, monkeypatch)

    result = reprocess_region(settings, "EG")
    assert (result.quarantined, result.already_loaded, result.loaded) == ([item_id], [], [])
    last = get_item(settings, STEWARD, item_id).history[-1]
    assert last.after["outcome"] == "quarantined" and last.reason.startswith("failed the contract on load")
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(0,)]
    assert_verified(settings)


def test_held_rows_are_released_automatically_not_by_stewards(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    held = by_transaction(settings)["ch_new"]
    item = get_item(settings, STEWARD, held)
    assert item.hold == "unknown_creator" and item.rules[0].severity == "hold"
    with pytest.raises(FixInvalid, match="unknown_creator"):
        approve(settings, STEWARD, held, "load it anyway")  # it would only be held again

    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).head(1).with_columns(creator_id=pl.lit("EG-C0777"), region=pl.lit("EG"))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    assert ingest_files(settings, "EG", []).released.loaded == 1  # ingestion releases it
    enqueue_region(settings, "EG")
    item = get_item(settings, STEWARD, held)
    assert item.status == "reprocessed"
    assert (item.history[-1].actor, item.history[-1].action) == ("system:ingest", "release")
    assert "released automatically" in item.history[-1].reason
    assert pending_items(settings, "EG") == []
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_new'").fetchall() == [(1,)]


def test_a_fix_that_moves_a_row_to_another_day_republishes_both_days(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    publish_region(settings, "EG")
    enqueue_region(settings, "EG")
    item_id = by_transaction(settings)["ch_future"]
    future_day = get_item(settings, STEWARD, item_id).parsed["local_date"]
    with open_store(settings, "EG", read_only=True) as con:
        (arrived,) = con.execute(
            "SELECT CAST(timezone('Africa/Cairo', quarantined_at) AS DATE)::VARCHAR FROM quarantine"
            " WHERE transaction_id = 'ch_future'"
        ).fetchone()
    # quarantined for its time, it counts on the day it arrived, never on the day its wrong clock names
    waiting = central_quarantined(settings, arrived)
    assert run_query(
        settings, f"SELECT count(*) AS n FROM rollups.region_daily WHERE local_date = DATE '{future_day}'"
    ).to_pylist() == [{"n": 0}]
    # the rail's clock was a month off; a time without an offset is Cairo's local time
    approve(settings, STEWARD, item_id, "clock a month ahead", edits={"occurred_at": "2026-10-07 10:30:00"})
    reprocess_region(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        moved = con.execute(
            "SELECT occurred_at AT TIME ZONE 'UTC', local_date::VARCHAR FROM sale_events"
            " WHERE transaction_id = 'ch_future'"
        ).fetchall()
    assert [(str(t), d) for t, d in moved] == [("2026-10-07 07:30:00", "2026-10-07")]  # UTC+3 in October
    assert central_quarantined(settings, arrived) == waiting - 1  # the day it waited on, centrally too
    assert central_net(settings, "2026-10-07") == 24_625
    assert_verified(settings)


def test_a_fix_that_repeats_a_stored_event_is_a_counted_duplicate(settings: Settings, tmp_path: Path):
    """The fix batch applies the same duplicate rule as a file: an event already stored is not stored twice."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    item_id = by_transaction(settings)["ch_bad"]
    approve(
        settings, STEWARD, item_id, "it was a redelivery", edits={"amount_minor": "25000", "transaction_id": "ch_good"}
    )
    result = reprocess_region(settings, "EG")
    assert result.duplicates == [item_id] and result.loaded == []
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_good'").fetchall() == [(1,)]
        assert con.execute("SELECT loaded, duplicates FROM ledger WHERE kind = 'fix'").fetchall() == [(0, 1)]
    assert get_item(settings, STEWARD, item_id).history[-1].after["outcome"] == "duplicate"
    assert_verified(settings)


def test_both_events_of_one_line_fixed_together_each_get_their_own_outcome(settings: Settings, tmp_path: Path):
    """A refunded charge is two events of one line (a sale and its refund). With an unreadable time both are
    quarantined; fixed in one reprocess, each item is told what happened to its own event, not to its line's."""
    make_files(settings, regions=["EG"], rows=50)
    refunded = "ch_both;Payment;2026-10-05 25:61:00;250,00;250,00;egp;250,00;egp;3,75;Refunded;b@mail.example;Visa;"
    path = write(
        tmp_path / "in", "eg-refunded.csv", [line("ch_good", "2026-10-05 09:00:00"), refunded + "EG-C0002.EG-P00005"]
    )
    (ingested,) = ingest_files(settings, "EG", [path]).files
    assert (ingested.loaded, ingested.quarantined) == (1, 2), ingested
    enqueue_region(settings, "EG")
    items = {
        get_item(settings, STEWARD, i.id).parsed["event_type"]: i.id
        for i in list_items(settings, STEWARD, ReviewFilter(), limit=100)
        if i.transaction_id == "ch_both"
    }
    # the sale turns out to be a redelivery of ch_good (already stored); the refund is new money going back
    approve(
        settings,
        STEWARD,
        items["sale"],
        "redelivered charge",
        edits={"occurred_at": "2026-10-05 09:00:00", "transaction_id": "ch_good"},
    )
    approve(settings, STEWARD, items["refund"], "clock typo", edits={"occurred_at": "2026-10-05 10:00:00"})

    result = reprocess_region(settings, "EG")
    assert result.duplicates == [items["sale"]] and result.loaded == [items["refund"]]
    assert get_item(settings, STEWARD, items["sale"]).history[-1].after["outcome"] == "duplicate"
    assert get_item(settings, STEWARD, items["refund"]).history[-1].after["outcome"] == "loaded"
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT loaded, duplicates FROM ledger WHERE kind = 'fix'").fetchall() == [(1, 1)]
    assert_verified(settings)


def test_two_fixes_to_one_event_from_rows_with_the_same_line_number_load_it_once(settings: Settings, tmp_path: Path):
    """A fix batch holds rows of several files, whose line numbers repeat. Two rows fixed to the same new event
    load it once and count the other as a duplicate, as two rows of one file would, instead of leaving the batch
    unbalanced and every later reprocess of the region refused."""
    make_files(settings, regions=["EG"], rows=50)
    for name in ("eg-a.csv", "eg-b.csv"):  # each file's line 1 has an unreadable amount
        path = write(tmp_path / "in", name, [line(f"ch_{name[3]}", "2026-10-05 10:00:00", amount="25O,00")])
        (result,) = ingest_files(settings, "EG", [path]).files
        assert result.quarantined == 1, result
    enqueue_region(settings, "EG")
    items = by_transaction(settings)
    for charge in ("ch_a", "ch_b"):
        edits = {"amount_minor": "25000", "transaction_id": "ch_same"}
        approve(settings, STEWARD, items[charge], "one charge, exported twice", edits=edits)

    result = reprocess_region(settings, "EG")
    assert (len(result.loaded), len(result.duplicates)) == (1, 1), result
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_same'").fetchall() == [(1,)]
        assert con.execute("SELECT loaded, duplicates FROM ledger WHERE kind = 'fix'").fetchall() == [(1, 1)]
    assert_verified(settings)


def test_a_fix_that_fails_on_load_is_reported_as_quarantined_again(settings: Settings, tmp_path: Path):
    """The contract and the hold rule run again on load: a fix whose creator left the registry between the
    approval and the reprocess is held, and the steward's item says so instead of claiming it loaded."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    item_id = by_transaction(settings)["ch_bad"]
    approve(settings, STEWARD, item_id, "letter O typed for a zero", edits={"amount_minor": "25000"})
    creators = settings.registry_dir / "creators.csv"
    registry = pl.read_csv(creators, infer_schema_length=0)
    registry.filter(pl.col("creator_id") != "EG-C0002").write_csv(creators)

    result = reprocess_region(settings, "EG")
    assert result.quarantined == [item_id] and result.loaded == [] and result.duplicates == []
    assert get_item(settings, STEWARD, item_id).history[-1].after["outcome"] == "quarantined"
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(0,)]
        held = "SELECT hold FROM quarantine WHERE transaction_id = 'ch_bad' AND status = 'held'"
        assert con.execute(held).fetchall() == [("unknown_creator",)]
    # back in the queue with the file's own text beside the fix it came from, not only a quarantine id
    enqueue_region(settings, "EG")
    again_id = next(
        i.id for i in list_items(settings, STEWARD, limit=100) if i.transaction_id == "ch_bad" and i.id != item_id
    )
    again = get_item(settings, STEWARD, again_id)
    original = json.loads(again.raw_record["original"])
    assert original == get_item(settings, STEWARD, item_id).raw_record and "quarantine_id" in again.raw_record
    assert_verified(settings)


def test_a_fee_typed_on_a_row_of_a_rail_that_states_none_is_refused(settings: Settings, tmp_path: Path):
    """M-Pesa statements state no fees, so every KE event has fee 0 and its rollups say "not stated". A steward's
    fee there would be counted as if M-Pesa had stated it; the fix says why it cannot be approved."""
    ingest_dirty_kenya(settings, tmp_path / "in")
    enqueue_region(settings, "KE")
    kenya = Actor("wanjiru", "steward", frozenset({"KE"}))
    items = {i.transaction_id: i.id for i in list_items(settings, kenya, ReviewFilter(), limit=100)}
    item_id = items["SKE0000002"]  # pays "12,3O0.00"
    assert get_item(settings, kenya, item_id).parsed["fee_minor"] == 0

    with_fee = revalidate(settings, kenya, item_id, {"amount_minor": "1230000", "fee_minor": "3300"})
    assert not with_fee.ok
    assert [(e.rule, e.column, e.value) for e in with_fee.errors] == [("fee_not_stated_by_rail", "fee_minor", "3300")]
    assert not with_fee.waivable
    assert revalidate(settings, kenya, item_id, {"amount_minor": "1230000"}).ok


def test_two_fixed_events_of_one_line_made_alike_are_one_loaded_and_one_duplicate(settings: Settings, tmp_path: Path):
    """A held line's sale and refund, the refund edited into a second sale: the batch stores one event and counts
    a duplicate, and each item's outcome says which, instead of both claiming "loaded"."""
    make_files(settings, regions=["TZ"], rows=20)  # the registry
    path = tmp_path / "tz.csv"
    path.write_text(TZ_HEADER + "P1,[TZ-C0999.TZ-P00001] x,2026-10-05,10:00:00,50000.00,750.00,49250.00,1,1,0,0\n")
    (result,) = ingest_files(settings, "TZ", [path]).files
    assert result.quarantined == 2  # held: the creator is not onboarded
    enqueue_region(settings, "TZ")
    tanzania = Actor("neema", "steward", frozenset({"TZ"}))
    found = [get_item(settings, tanzania, i.id) for i in list_items(settings, tanzania, ReviewFilter(), limit=10)]
    sale, refund = sorted(found, key=lambda i: i.parsed["event_type"] != "sale")
    approve(settings, tanzania, sale.id, "onboarded", edits={"creator_id": "TZ-C0001"})
    approve(
        settings,
        tanzania,
        refund.id,
        "a second sale",
        edits={"creator_id": "TZ-C0001", "event_type": "sale", "amount_minor": "5000000", "fee_minor": "0"},
    )
    outcome = reprocess_region(settings, "TZ")
    assert (outcome.loaded, outcome.duplicates) == ([sale.id], [refund.id])
    with open_store(settings, "TZ", read_only=True) as con:
        assert con.execute("SELECT loaded, duplicates FROM ledger WHERE kind = 'fix'").fetchall() == [(1, 1)]


def test_a_fixed_amount_must_agree_with_the_net_the_file_states(settings: Settings, tmp_path: Path):
    """Gumroad states each sale's net (`Net Total`), and the contract checks amount - fee against it on arrival. A
    steward's amount is checked against it the same way: a typo (5,000.00 for 50,000.00) is refused by the rule
    instead of loading with a net derived from the typo (4,250.00) while the file said 49,250.00. A refund the
    spec adds to the row takes its amount as net, so its fixed amount still gives its net."""
    make_files(settings, regions=["TZ"], rows=20)  # the registry
    path = tmp_path / "tz.csv"
    path.write_text(
        TZ_HEADER + "P1,[TZ-C0001.TZ-P00001] x,2026-10-05,10:00:00,5O000.00,750.00,49250.00,0,0,0,0\n"
        "P2,[TZ-C0001.TZ-P00001] x,2026-10-05,11:00:00,5O000.00,750.00,49250.00,1,1,0,0\n"
    )
    (result,) = ingest_files(settings, "TZ", [path]).files
    assert result.quarantined == 3, result  # P1's sale, P2's sale and its refund: the amount cannot be read
    enqueue_region(settings, "TZ")
    tanzania = Actor("neema", "steward", frozenset({"TZ"}))
    items = {
        (i.transaction_id, get_item(settings, tanzania, i.id).parsed["event_type"]): i.id
        for i in list_items(settings, tanzania, ReviewFilter(), limit=10)
    }
    typo = revalidate(settings, tanzania, items["P1", "sale"], {"amount_minor": "500000"})
    assert not typo.ok and [(e.rule, e.column) for e in typo.errors] == [("net_is_amount_minus_fee", "net_minor")]
    with pytest.raises(FixInvalid, match="net_is_amount_minus_fee"):
        approve(settings, tanzania, items["P1", "sale"], "typed", edits={"amount_minor": "500000"})

    approve(settings, tanzania, items["P1", "sale"], "letter O", edits={"amount_minor": "5000000"})
    approve(settings, tanzania, items["P2", "sale"], "letter O", edits={"amount_minor": "5000000"})
    refund = revalidate(settings, tanzania, items["P2", "refund"], {"amount_minor": "-5000000"})
    assert refund.ok and refund.row["net_minor"] == "-5000000"
    approve(settings, tanzania, items["P2", "refund"], "letter O", edits={"amount_minor": "-5000000"})
    outcome = reprocess_region(settings, "TZ")
    assert len(outcome.loaded) == 3, outcome
    with open_store(settings, "TZ", read_only=True) as con:
        stored = con.execute(
            "SELECT transaction_id, event_type, amount_minor, fee_minor, net_minor FROM sale_events ORDER BY 1, 2"
        ).fetchall()
    assert stored == [
        ("P1", "sale", 5_000_000, 75_000, 4_925_000),
        ("P2", "refund", -5_000_000, 0, -5_000_000),
        ("P2", "sale", 5_000_000, 75_000, 4_925_000),
    ]


def test_a_fix_that_changes_the_currency_must_give_the_money_in_it(settings: Settings, tmp_path: Path):
    """A charge in another currency than the region's is quarantined for it. Relabelled with the region's currency
    and nothing else, its money would load as the same number of the region's units: USD 12.50 as EGP 12.50, and in
    Cameroon's zero-decimal XAF, USD 10 (read as 10 francs) as XAF 10 with its fee of USD 1. The fix must give the
    amount in the new currency (and a fee its rail states in the charge's currency; Stripe states its fee in the
    settlement's, already EGP). The Stripe charge's export does not state what it settled for (`Converted Amount`
    empty), or it would load in EGP from that figure."""
    make_files(settings, regions=["EG", "CM"], rows=50)
    usd = "ch_usd;Payment;2026-10-05 10:00:00;12,50;0,00;usd;;egp;3,75;Paid;b@mail.example;Visa;"
    usd += "EG-C0002.EG-P00005"
    (result,) = ingest_files(settings, "EG", [write(tmp_path / "in", "eg.csv", [usd])]).files
    assert result.quarantined == 1, result
    webhook = {
        "event": "charge.completed",
        "data": {"id": 1, "tx_ref": "kanda-1", "amount": 10, "currency": "USD", "charged_amount": 10, "app_fee": 1,
                 "status": "successful", "payment_type": "card", "created_at": "2026-10-05T09:00:00.000Z"},
        "meta_data": {"kanda_ref": "CM-C0001.CM-P00001"},
    }  # fmt: skip
    cm = tmp_path / "in" / "cm.ndjson"
    cm.write_text(json.dumps(webhook) + "\n")
    (result,) = ingest_files(settings, "CM", [cm]).files
    assert result.quarantined == 1, result
    enqueue_region(settings, "EG")
    enqueue_region(settings, "CM")
    operator = Actor("ops", "steward", None)
    items = {i.region: i.id for i in list_items(settings, operator, ReviewFilter(), limit=10)}

    relabelled = revalidate(settings, operator, items["EG"], {"currency": "EGP"})
    assert [(e.rule, e.column, e.value) for e in relabelled.errors] == [
        ("money_not_converted_to_new_currency", "amount_minor", "1250 (USD)")
    ]
    with pytest.raises(FixInvalid, match="money_not_converted_to_new_currency"):
        approve(settings, operator, items["EG"], "it is Egypt", edits={"currency": "EGP"})
    approve(settings, operator, items["EG"], "Converted Amount", edits={"currency": "EGP", "amount_minor": "61250"})

    relabelled = revalidate(settings, operator, items["CM"], {"currency": "XAF"})
    assert [(e.rule, e.column, e.value) for e in relabelled.errors] == [
        ("money_not_converted_to_new_currency", "amount_minor", "10 (USD)"),
        ("money_not_converted_to_new_currency", "fee_minor", "1 (USD)"),
    ]
    converted = {"currency": "XAF", "amount_minor": "6000", "fee_minor": "600"}
    assert revalidate(settings, operator, items["CM"], converted).ok

    outcome = reprocess_region(settings, "EG")
    assert outcome.loaded == [items["EG"]]
    with open_store(settings, "EG", read_only=True) as con:
        stored = con.execute("SELECT amount_minor, fee_minor, currency FROM sale_events").fetchall()
    assert stored == [(61_250, 375, "EGP")]


def held_of_an_unknown_creator(settings: Settings, tmp_path: Path, prefix: str) -> tuple[list[str], dict[str, int]]:
    """Three EG sales of creator EG-C0777, not in the registry yet, ingested (held) and queued: their lines and
    review item ids by transaction (`<prefix>1` to `<prefix>3`)."""
    make_files(settings, regions=["EG"], rows=50)
    held = [line(f"{prefix}{n}", f"2026-10-05 1{n}:00:00", creator="EG-C0777") for n in (1, 2, 3)]
    (result,) = ingest_files(settings, "EG", [write(tmp_path / "in", "eg-held.csv", held)]).files
    assert result.quarantined == 3, result
    enqueue_region(settings, "EG")
    return held, by_transaction(settings)


def onboard_the_unknown_creator(settings: Settings) -> None:
    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).head(1).with_columns(creator_id=pl.lit("EG-C0777"), region=pl.lit("EG"))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)


def test_a_decided_held_row_waits_for_its_decision_when_its_creator_is_onboarded(settings: Settings, tmp_path: Path):
    """Held rows are released by the ingest that first sees their creator onboarded, and `kanda ingest` runs no
    reprocess. A row a steward had already decided must not be released as it arrived, or the steward's creator
    (or rejection) is silently overtaken: the sale loads under the creator the steward corrected, the rejected one
    never loads, and an undecided one is released as before."""
    _, items = held_of_an_unknown_creator(settings, tmp_path, "ch_h")
    approve(settings, STEWARD, items["ch_h1"], "typo in the shop id", edits={"creator_id": "EG-C0001"})
    reject(settings, STEWARD, items["ch_h2"], "a test shop")
    onboard_the_unknown_creator(settings)

    run = run_region(settings, "EG", steps=("ingest", "queue_review"))  # what `kanda ingest` runs
    assert run.ingest.released.loaded == 1  # ch_h3 only: nobody had decided it
    assert get_item(settings, STEWARD, items["ch_h3"]).status == "reprocessed"
    assert pending_items(settings, "EG") == [items["ch_h1"], items["ch_h2"]]

    outcome = reprocess_region(settings, "EG")
    assert (outcome.loaded, outcome.rejected_recorded, outcome.released_unedited) == (
        [items["ch_h1"]],
        [items["ch_h2"]],
        [],
    )
    with open_store(settings, "EG", read_only=True) as con:
        held_ones = "transaction_id LIKE 'ch_h_'"
        events = f"SELECT transaction_id, creator_id FROM sale_events WHERE {held_ones} ORDER BY 1"
        stored = con.execute(events).fetchall()
        rejected = con.execute(f"SELECT transaction_id FROM quarantine WHERE status = 'rejected' AND {held_ones}")
        rejected = rejected.fetchall()
    assert stored == [("ch_h1", "EG-C0001"), ("ch_h3", "EG-C0777")] and rejected == [("ch_h2",)]
    assert_verified(settings)


def test_a_decided_record_sent_again_is_a_duplicate_once_it_would_pass(settings: Settings, tmp_path: Path):
    """Rails export overlapping periods, so a held record comes again, text for text, once its creator is
    onboarded, and then passes the contract. Loaded as it came, a record a steward rejected became a sale in the
    rollups (and `kanda verify` stayed green), and one they fixed to another creator loaded under the creator it
    named before their fix reached the store. Each copy is a duplicate of the record the steward decided; the
    steward's decision is what the store holds, and a record nobody decided loads as before."""
    held, items = held_of_an_unknown_creator(settings, tmp_path, "ch_r")
    reject(settings, STEWARD, items["ch_r1"], "a test shop")
    reprocess_region(settings, "EG")  # the rejection reaches the store
    approve(settings, STEWARD, items["ch_r2"], "typo in the shop id", edits={"creator_id": "EG-C0001"})
    onboard_the_unknown_creator(settings)

    # The next export repeats the three lines (and its own new sale), before anyone reprocesses the fix.
    again = [*held, line("ch_r9", "2026-10-05 19:00:00", creator="EG-C0777")]
    run = run_region(
        settings, "EG", steps=("ingest", "queue_review"), files=[write(tmp_path / "in2", "eg-b.csv", again)]
    )
    (result,) = run.ingest.files
    assert (result.loaded, result.quarantined, result.duplicates) == (2, 0, 2), result  # ch_r3 and ch_r9 load

    reprocess_region(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        stored = con.execute(
            "SELECT transaction_id, creator_id FROM sale_events WHERE transaction_id LIKE 'ch_r_' ORDER BY 1"
        ).fetchall()
    assert stored == [("ch_r2", "EG-C0001"), ("ch_r3", "EG-C0777"), ("ch_r9", "EG-C0777")]
    assert_verified(settings)
    # `kanda status` counts the rejected row (it fell out of every column) and its columns add up to the table
    shown = region_status(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        (quarantined,) = con.execute("SELECT count(*) FROM quarantine").fetchall()[0]
    assert shown.quarantine_rejected == 1
    assert shown.quarantine_open + shown.quarantine_held + shown.released + shown.quarantine_rejected == quarantined


def test_a_rejected_record_dated_ahead_sent_again_once_its_time_has_come_stays_rejected(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A sale dated ahead of the clock is quarantined (`not_in_future`); a steward rejects it. Before the rejection
    reaches the store, an overlapping export sends the line again, its time now past: it passes the contract, and
    loaded as it came, the rejected record became a sale. It is a duplicate of the decided record."""
    import datetime as dt
    import types

    from quality import contract

    class Earlier(dt.datetime):
        """The clock at the first delivery: 40 days ago."""

        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) - dt.timedelta(days=40)

    make_files(settings, regions=["EG"], rows=50)
    ahead = line("ch_ahead", (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).strftime("%Y-%m-%d %H:%M:%S"))
    with monkeypatch.context() as clock:
        clock.setattr(contract, "dt", types.SimpleNamespace(datetime=Earlier, timedelta=dt.timedelta, UTC=dt.UTC))
        (first,) = ingest_files(settings, "EG", [write(tmp_path / "in", "eg-ahead.csv", [ahead])]).files
    assert first.quarantined == 1, first
    enqueue_region(settings, "EG")
    reject(settings, STEWARD, by_transaction(settings)["ch_ahead"], "a test order")

    again = write(tmp_path / "in2", "eg-again.csv", [ahead, line("ch_other", "2026-10-05 12:00:00")])
    (result,) = run_region(settings, "EG", steps=("ingest",), files=[again]).ingest.files
    assert (result.loaded, result.duplicates) == (1, 1), result  # ch_other loads; the copy is the rejected record's
    reprocess_region(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        assert not con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_ahead'").fetchall()[0][0]
    assert_verified(settings)
