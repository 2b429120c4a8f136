"""The review service's rules, as every client (web, CLI, Dagster) gets them: scope, roles, status machine,
bulk actions over a filter, and an audit log that cannot be rewritten."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from kanda.checks.verify import verify
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.store import open_store
from kanda.review import db
from kanda.review.actor import Actor, PermissionDenied
from kanda.review.reprocess import pending_items
from kanda.review.service import (
    InvalidTransition,
    ReviewError,
    ReviewFilter,
    approve,
    bulk,
    count_items,
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
from tests.support.steward_files import ingest_dirty_egypt

OPERATOR = Actor("root", "steward", None)
EGYPT = Actor("amina", "steward", frozenset({"EG"}))
KENYA = Actor("wanjiru", "steward", frozenset({"KE"}))
VIEWER = Actor("otieno", "viewer", None)


@pytest.fixture
def queue(settings: Settings, tmp_path: Path) -> dict[str, int]:
    """Egypt's four quarantined rows queued; item ids by transaction id."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    enqueue_region(settings, "EG")
    return {i.transaction_id: i.id for i in list_items(settings, OPERATOR, limit=100)}


def test_a_kenya_steward_neither_sees_nor_changes_egypt(settings: Settings, queue: dict[str, int]):
    item_id = queue["ch_bad"]
    assert list_items(settings, KENYA) == []
    assert count_items(settings, KENYA) == {"all": 0}
    assert count_items(settings, KENYA, ReviewFilter(regions=frozenset({"EG"}))) == {"all": 0}
    for attempt in (
        lambda: get_item(settings, KENYA, item_id),
        lambda: revalidate(settings, KENYA, item_id, {"amount_minor": "25000"}),
        lambda: save_edits(settings, KENYA, item_id, {"amount_minor": "25000"}),
        lambda: approve(settings, KENYA, item_id, edits={"amount_minor": "25000"}),
        lambda: reject(settings, KENYA, item_id, "not mine"),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    result = bulk(settings, KENYA, ReviewFilter(), "reject", "everything")
    assert result.done == [] and result.skipped == []  # nothing in scope at all
    assert get_item(settings, EGYPT, item_id).history[-1].action == "enqueue"  # untouched


def test_a_viewer_reads_everything_and_changes_nothing(settings: Settings, queue: dict[str, int]):
    item_id = queue["ch_bad"]
    assert len(list_items(settings, VIEWER)) == 4
    assert get_item(settings, VIEWER, item_id).status == "new"
    assert revalidate(settings, VIEWER, item_id, {"amount_minor": "25000"}).ok  # checking changes nothing
    for attempt in (
        lambda: save_edits(settings, VIEWER, item_id, {"amount_minor": "25000"}),
        lambda: approve(settings, VIEWER, item_id, edits={"amount_minor": "25000"}),
        lambda: waive(settings, VIEWER, queue["ch_future"], "fine"),
        lambda: reject(settings, VIEWER, item_id, "no"),
        lambda: bulk(settings, VIEWER, ReviewFilter(), "reject", "no"),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert get_item(settings, VIEWER, item_id).status == "new"
    assert [h.action for h in get_item(settings, VIEWER, item_id).history] == ["enqueue"]


def test_counts_and_filters(settings: Settings, queue: dict[str, int]):
    assert count_items(settings, OPERATOR) == {"all": 4}
    assert count_items(settings, OPERATOR, group_by="rule") == {
        "amount_sign_matches_event_type": 1,
        "fee_within_amount": 1,  # ch_wrong's 3,75 fee on a zero amount
        "missing_or_unreadable": 1,
        "not_in_future": 1,
        "unknown_creator": 1,
    }
    assert count_items(settings, OPERATOR, group_by="region") == {"EG": 4}
    assert count_items(settings, OPERATOR, ReviewFilter(creator_id="EG-C0777")) == {"all": 1}
    assert count_items(settings, OPERATOR, ReviewFilter(source_file="eg-dirty.csv")) == {"all": 4}
    assert count_items(settings, OPERATOR, ReviewFilter(source_file="other.csv")) == {"all": 0}
    assert count_items(settings, OPERATOR, ReviewFilter(max_age_days=1)) == {"all": 4}
    assert count_items(settings, OPERATOR, ReviewFilter(min_age_days=1)) == {"all": 0}  # all arrived just now
    reject(settings, EGYPT, queue["ch_wrong"], "test charge")
    assert count_items(settings, OPERATOR, group_by="status") == {"new": 3, "rejected": 1}
    assert count_items(settings, OPERATOR, ReviewFilter(statuses=frozenset({"rejected"}))) == {"all": 1}
    with pytest.raises(ReviewError):
        count_items(settings, OPERATOR, group_by="buyer_ref")


def test_the_status_machine_refuses_what_it_does_not_allow(settings: Settings, queue: dict[str, int]):
    item_id = queue["ch_bad"]
    with pytest.raises(ReviewError, match="needs a reason"):
        reject(settings, EGYPT, item_id, "  ")
    with pytest.raises(ReviewError, match="justification"):
        waive(settings, EGYPT, queue["ch_future"], "")
    approve(settings, EGYPT, item_id, edits={"amount_minor": "25000"})
    with pytest.raises(InvalidTransition, match="only possible while it is new or in review"):
        waive(settings, EGYPT, item_id, "changed my mind")
    with pytest.raises(InvalidTransition):
        reject(settings, EGYPT, item_id, "changed my mind")  # approved: waits for reprocess
    with pytest.raises(InvalidTransition):
        save_edits(settings, EGYPT, item_id, {"amount_minor": "1"})
    reprocess_region(settings, "EG")
    with pytest.raises(InvalidTransition, match="reprocessed"):
        reject(settings, EGYPT, item_id, "too late")
    reject(settings, EGYPT, queue["ch_wrong"], "test charge")
    with pytest.raises(InvalidTransition, match="rejected"):
        approve(settings, EGYPT, queue["ch_wrong"], edits={"amount_minor": "100"})


def test_two_stewards_saving_one_item_at_once_cannot_both_win(
    settings: Settings, queue: dict[str, int], monkeypatch: pytest.MonkeyPatch
):
    """Amina's save reads the item, and Root's save commits before Amina's writes: Amina's write, merged over edits
    she never saw, used to replace Root's without a word. Now she is told to reload, and Root's edit stands."""
    from kanda.review import service

    item_id = queue["ch_bad"]
    save_edits(settings, EGYPT, item_id, {"channel": "ussd"})  # in review
    check = service._revalidate
    rival_saved = []

    def a_rival_saves_meanwhile(*args, **kwargs):
        if not rival_saved:
            rival_saved.append(True)  # before saving: the rival's own save checks its row through here too
            save_edits(settings, OPERATOR, item_id, {"amount_minor": "25000"})
        return check(*args, **kwargs)

    monkeypatch.setattr(service, "_revalidate", a_rival_saves_meanwhile)
    with pytest.raises(InvalidTransition, match="changed by someone else meanwhile"):
        save_edits(settings, EGYPT, item_id, {"creator_id": "EG-C0002"})
    edits = get_item(settings, OPERATOR, item_id).edits
    assert edits["amount_minor"] == "25000" and edits["channel"] == "ussd" and "creator_id" not in edits


def test_bulk_reject_over_a_filter_then_recorded_in_the_store(settings: Settings, queue: dict[str, int]):
    approve(settings, EGYPT, queue["ch_bad"], edits={"amount_minor": "25000"})  # not open any more: skipped
    errors = ReviewFilter(rules=frozenset({"amount_sign_matches_event_type", "missing_or_unreadable"}))
    result = bulk(settings, EGYPT, errors, "reject", "test charges from the sandbox")
    assert result.done == [queue["ch_wrong"]]
    assert result.skipped == [(queue["ch_bad"], "status is fixed")]
    assert get_item(settings, EGYPT, queue["ch_future"]).status == "new"  # outside the filter
    rejected = get_item(settings, EGYPT, queue["ch_wrong"])
    assert rejected.status == "rejected" and rejected.decided_by == "amina"
    assert rejected.history[-1].after["bulk"] is True

    outcome = reprocess_region(settings, "EG")
    assert outcome.rejected_recorded == [queue["ch_wrong"]] and outcome.loaded == [queue["ch_bad"]]
    with open_store(settings, "EG", read_only=True) as con:
        statuses = dict(con.execute("SELECT transaction_id, status FROM quarantine").fetchall())
    assert statuses == {"ch_bad": "released", "ch_future": "open", "ch_wrong": "rejected", "ch_new": "held"}
    assert all(r.passed for r in verify(settings, ["EG"]))
    assert not reprocess_region(settings, "EG").changed


def test_bulk_approve_revalidates_every_row_and_skips_those_that_fail(settings: Settings, queue: dict[str, int]):
    save_edits(settings, EGYPT, queue["ch_wrong"], {"amount_minor": "9900"})
    result = bulk(settings, EGYPT, ReviewFilter(), "approve", None)
    assert result.done == [queue["ch_wrong"]]
    skipped = dict(result.skipped)
    assert "missing_or_unreadable" in skipped[queue["ch_bad"]]
    assert "unknown_creator" in skipped[queue["ch_new"]]
    assert "not_in_future" in skipped[queue["ch_future"]]
    waived = bulk(settings, EGYPT, ReviewFilter(rules=frozenset({"not_in_future"})), "waive", "pre-orders")
    assert waived.done == [queue["ch_future"]]


def test_a_held_row_dated_ahead_cannot_be_waived_past_its_unknown_creator(settings: Settings, queue: dict[str, int]):
    """ch_new's creator is not onboarded. Dated a month ahead, it also broke a warning-level rule, which hid the
    hold: a waiver was accepted that reprocessing could never apply (the row was held again)."""
    from tests.support.steward_files import future_time

    item_id = queue["ch_new"]
    verdict = save_edits(settings, EGYPT, item_id, {"occurred_at": future_time().replace(" ", "T") + "Z"})
    assert {e.rule for e in verdict.errors} == {"not_in_future", "unknown_creator"}
    with pytest.raises(ReviewError, match="unknown_creator"):
        waive(settings, EGYPT, item_id, "a pre-order")


def test_the_audit_log_cannot_be_rewritten(settings: Settings, queue: dict[str, int]):
    reject(settings, EGYPT, queue["ch_wrong"], "test charge")
    engine = db.engine_for(settings.app_db_url)
    for statement in (update(db.audit).values(actor="someone else"), delete(db.audit)):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as con:
            con.execute(statement)
    history = get_item(settings, EGYPT, queue["ch_wrong"]).history
    assert [(h.actor, h.action, h.reason) for h in history][-1] == ("amina", "reject", "test charge")


def test_a_rejected_held_row_released_by_ingestion_first_says_so(settings: Settings, queue: dict[str, int]):
    """Ingestion may release a held row before the steward's rejection reaches the store: the row is loaded, and
    the item's history says what happened instead of waiting forever."""
    reject(settings, EGYPT, queue["ch_new"], "unknown shop")
    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).head(1).with_columns(creator_id=pl.lit("EG-C0777"), region=pl.lit("EG"))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    assert ingest_files(settings, "EG", []).released.loaded == 1
    assert pending_items(settings, "EG") == [queue["ch_new"]]
    assert reprocess_region(settings, "EG").already_loaded == [queue["ch_new"]]
    item = get_item(settings, EGYPT, queue["ch_new"])
    assert item.status == "reprocessed" and "before the rejection reached the store" in item.history[-1].reason
    assert pending_items(settings, "EG") == []
    assert all(r.passed for r in verify(settings, ["EG"]))


def test_a_fixed_held_row_released_by_ingestion_first_names_the_edits_not_applied(settings: Settings, queue):
    """The steward approved the held sale under EG-C0001; ingestion released it as it arrived when EG-C0777 was
    onboarded. The item used to end `reprocessed` as if the fix had been applied; reprocess now names it."""
    approve(settings, EGYPT, queue["ch_new"], "typo in the shop id", edits={"creator_id": "EG-C0001"})
    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).head(1).with_columns(creator_id=pl.lit("EG-C0777"), region=pl.lit("EG"))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    assert ingest_files(settings, "EG", []).released.loaded == 1
    result = reprocess_region(settings, "EG")
    assert result.already_loaded == result.released_unedited == [queue["ch_new"]]
    item = get_item(settings, EGYPT, queue["ch_new"])
    assert "without the fix's edits" in item.history[-1].reason
    with open_store(settings, "EG", read_only=True) as con:
        stored = con.execute("SELECT creator_id FROM sale_events WHERE transaction_id = 'ch_new'").fetchall()
    assert stored == [("EG-C0777",)]  # as it arrived: what the item's history and reprocess say


def test_revalidating_untouched_rows_reports_what_ingestion_reported(settings: Settings):
    """The same contract: every generated dirty row of two rails, checked again without edits, breaks exactly the
    rules the boundary recorded on arrival; a local time typed for a Kenya row is read in Nairobi's zone."""
    make_files(settings, regions=["KE", "NG"], rows=400)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
        assert enqueue_region(settings, code) > 0
    items = list_items(settings, OPERATOR, limit=1000)
    assert {i.region for i in items} == {"KE", "NG"}
    for item in items:
        verdict = get_item(settings, OPERATOR, item.id).revalidation
        reported = sorted((r.rule, r.column) for r in item.rules)
        assert sorted((e.rule, e.column) for e in verdict.errors) == reported, item.id
    no_time = next(i for i in items if i.region == "KE" and [r.column for r in i.rules] == ["occurred_at"])
    fixed = revalidate(settings, OPERATOR, no_time.id, {"occurred_at": "2026-10-06 08:00:00"})
    assert fixed.ok, fixed.errors
    assert (fixed.row["occurred_at"], fixed.row["local_date"]) == ("2026-10-06T05:00:00Z", "2026-10-06")


def test_an_age_past_the_calendar_is_clamped_and_no_age_at_all_is_refused(settings: Settings, queue: dict[str, int]):
    """A finite age reaching back before the calendar's first day (or past what a timedelta holds) is clamped:
    nothing is older than that, everything is newer. A non-finite or negative age is refused as a ReviewError.
    (These used to raise OverflowError or "date value out of range" computing the date.)"""
    for huge in (1e10, 1_000_000, 999_999_999, 1e308, 700_000):  # (700,000 days ago is still a date: year ~109)
        assert count_items(settings, OPERATOR, ReviewFilter(min_age_days=huge)) == {"all": 0}, huge
        assert count_items(settings, OPERATOR, ReviewFilter(max_age_days=huge)) == {"all": 4}, huge
        assert list_items(settings, OPERATOR, ReviewFilter(max_age_days=huge, min_age_days=0), limit=10) != []
    assert bulk(settings, EGYPT, ReviewFilter(min_age_days=1e10), "reject", "old").done == []
    for bad in (float("inf"), float("-inf"), float("nan"), -1.0):
        for flt in (ReviewFilter(min_age_days=bad), ReviewFilter(max_age_days=bad)):
            with pytest.raises(ReviewError, match="finite number of days"):
                count_items(settings, OPERATOR, flt)
            with pytest.raises(ReviewError, match="finite number of days"):
                bulk(settings, EGYPT, flt, "reject", "no")
    assert count_items(settings, OPERATOR, group_by="status") == {"new": 4}  # nothing was decided


def test_a_local_time_that_names_no_single_instant_is_refused_with_the_way_to_type_it(
    settings: Settings, queue: dict[str, int]
):
    """Cairo's clocks go back at midnight on 29/30 October 2026 and forward at midnight on 23/24 April: 23:30 on the
    29th happened twice and 00:30 on the 24th never did. Typed without an offset, each was given an instant as a
    guess (a refund's minute is part of its identity, so an hour off could count a redelivered refund twice); the
    rails' readers refuse both. The review does too, and says how to type the time."""
    item_id = queue["ch_bad"]
    for typed, said in (("2026-10-29 23:30:00", "happened twice"), ("2026-04-24T00:30", "never happened")):
        verdict = revalidate(settings, OPERATOR, item_id, {"occurred_at": typed})
        (error,) = [e for e in verdict.errors if e.column == "occurred_at"]
        assert said in error.rule and "Africa/Cairo" in error.rule and "with its offset" in error.rule, error
    for typed, instant in (
        ("2026-10-29T23:30:00+03:00", "2026-10-29T20:30:00Z"),
        ("2026-10-29 22:30", "2026-10-29T19:30:00Z"),
    ):
        verdict = revalidate(settings, OPERATOR, item_id, {"occurred_at": typed})
        assert not [e for e in verdict.errors if e.column == "occurred_at"], verdict.errors
        assert (verdict.row["occurred_at"], verdict.row["local_date"]) == (instant, "2026-10-29")
