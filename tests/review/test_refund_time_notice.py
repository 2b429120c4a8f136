"""A steward typing a time for a refund the region already counts at another minute is told so while editing.

Paystack sends `refund.processed` without a time (`regions/rails/paystack/spec.yaml`), so the refund is quarantined
and a steward types one; a refund is told apart from the payment's other refunds by its minute, so a time typed for
the refund the rail had already delivered with its real time makes it another refund. The fix batch quarantines it
again as `repeat_other_time` when it loads, but until then the steward was told nothing. The review's validation of a
fix (the one the web form, the CLI and `approve` use) now says it, with the stored refund's time: a notice, since two
real refunds of one amount exist and approving stays possible. Real parts: Paystack webhook logs through ingestion
into a real store, the review service, `kanda review fix` and the review pages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from filelock import FileLock
from sqlalchemy import select
from typer.testing import CliRunner

from kanda.cli import app
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.review import db
from kanda.review.actor import Actor
from kanda.review.service import (
    ReviewFilter,
    approve,
    enqueue_region,
    get_item,
    list_items,
    reject,
    revalidate,
    save_edits,
)
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.builders import paystack_event
from tests.support.files import ingest_written
from tests.support.web_helpers import PASSWORD, create_accounts, login, token

NIGERIA = Actor("amina", "steward", frozenset({"NG"}))
#: The time a steward guesses for the refund Paystack sent without one, and the refund's real time, hours later.
GUESSED, REAL = "2025-06-06T12:00:00Z", "2025-06-06T15:30:00.000Z"
REFUND = 200_000  # NGN 2,000.00 of paystack_event's NGN 5,000.00 sale
#: What the steward is told: the stored refund, its time (UTC and Lagos, UTC+1), and what each decision does.
TOLD = "A refund of payment ps_000001 for the same amount (NGN 2,000.00) is already counted, at 2025-06-06 15:30 UTC"
TOLD_LOCAL = "(16:30 Africa/Lagos time)"
runner = CliRunner()


def refund(payment: str, amount: int = REFUND, created_at: str | None = None) -> dict:
    """A `refund.processed` as Paystack documents it (no time), or, with `created_at`, one that states its time."""
    data: dict[str, object] = {"status": "processed", "transaction_reference": payment, "amount": amount,
                               "currency": "NGN", "refund_reference": None, "domain": "live"}  # fmt: skip
    return {"event": "refund.processed", "data": data | ({"created_at": created_at} if created_at else {})}


def ndjson(*documents: dict) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def untimed_refund_queued(settings: Settings, tmp_path: Path, *, rails_refund: bool = True) -> int:
    """Sale ps_000001 and its refund without a time (quarantined and queued); with `rails_refund`, the rail's own
    delivery of that refund at REAL, loaded from a later log. The untimed refund's item id."""
    first = ndjson(paystack_event(1), refund("ps_000001"))
    report = ingest_written(settings, "NG", tmp_path / "mon.ndjson", first)
    assert (report.loaded, report.quarantined) == (1, 1), report
    if rails_refund:
        later = tmp_path / "tue.ndjson"
        later.write_text(ndjson(refund("ps_000001", created_at=REAL)))
        (delivered,) = ingest_files(settings, "NG", [later]).files
        assert (delivered.loaded, delivered.quarantined) == (1, 0), delivered
    enqueue_region(settings, "NG")
    (item,) = list_items(settings, NIGERIA, ReviewFilter(statuses={"new"}), limit=20)
    assert [r.rule for r in item.rules] == ["missing_or_unreadable"]
    return item.id


def refunds(settings: Settings) -> list[tuple[int, str]]:
    with open_store(settings, "NG", read_only=True) as con:
        rows = con.execute(
            "SELECT amount_minor, occurred_at FROM sale_events WHERE event_type = 'refund' ORDER BY occurred_at"
        ).fetchall()
    return [(a, f"{o.astimezone(dt.UTC):%Y-%m-%dT%H:%M}") for a, o in rows]


def test_a_time_typed_for_a_refund_counted_at_another_minute_is_told_and_approval_stays_possible(
    settings: Settings, tmp_path: Path
):
    item_id = untimed_refund_queued(settings, tmp_path)
    verdict = revalidate(settings, NIGERIA, item_id, {"occurred_at": GUESSED})
    assert verdict.ok and verdict.errors == []  # the contract passes: the notice is not a refusal
    (notice,) = verdict.notices
    assert (notice.rule, notice.column, notice.severity) == ("repeat_other_time", "occurred_at", "notice")
    assert notice.value.startswith(TOLD) and TOLD_LOCAL in notice.value
    assert "If it is the same refund, reject this record: the refund stays counted once." in notice.value
    assert "If the payment was refunded twice, approve it: it is counted as a second refund" in notice.value

    # saved, the record says it whenever it is opened
    assert save_edits(settings, NIGERIA, item_id, {"occurred_at": GUESSED}).notices == [notice]
    assert get_item(settings, NIGERIA, item_id).revalidation.notices == [notice]
    # a time in the stored refund's own minute is that refund (a duplicate when it loads): nothing to ask
    assert revalidate(settings, NIGERIA, item_id, {"occurred_at": "2025-06-06T15:30:40Z"}).notices == []
    # another amount is another refund: nothing to ask either
    other = revalidate(settings, NIGERIA, item_id, {"occurred_at": GUESSED, "amount_minor": "-100000"})
    assert other.ok and other.notices == []

    approved = approve(settings, NIGERIA, item_id, "two refunds on Paystack's dashboard")
    assert approved.notices == [notice]
    with db.engine_for(settings.app_db_url).connect() as con:
        after = con.execute(
            select(db.audit.c.after).where(db.audit.c.item_id == item_id, db.audit.c.action == "approve")
        ).scalar_one()
    assert after["notices"] == [notice.as_dict()]  # what the steward approved over, kept with the decision


def test_approved_after_the_notice_the_second_refund_loads_without_being_asked_again(
    settings: Settings, tmp_path: Path
):
    """The steward saved the time, was told of the refund counted at 15:30 and approved: that is their answer. The
    fix loads as the payment's second refund; it does not come back to the queue as repeat_other_time."""
    item_id = untimed_refund_queued(settings, tmp_path)
    assert save_edits(settings, NIGERIA, item_id, {"occurred_at": GUESSED}).notices
    approve(settings, NIGERIA, item_id, "two refunds on Paystack's dashboard")
    result = reprocess_region(settings, "NG")
    assert (result.loaded, result.quarantined) == ([item_id], [])
    assert refunds(settings) == [(-REFUND, "2025-06-06T12:00"), (-REFUND, "2025-06-06T15:30")]
    assert list_items(settings, NIGERIA, ReviewFilter(statuses={"new", "in_review"}), limit=20) == []


@pytest.mark.parametrize("how", ["typed_into_the_approval", "store_busy_when_saved"])
def test_an_approval_that_answered_no_notice_is_asked_again_when_the_fix_loads(
    settings: Settings, tmp_path: Path, how: str
):
    """Typed and approved in one step, the notice came only with the decision: not an answer to it. Saved while a
    run held the store, nothing was said about a refund counted at another minute. Either way the fix batch asks."""
    item_id = untimed_refund_queued(settings, tmp_path)
    if how == "typed_into_the_approval":
        approve(settings, NIGERIA, item_id, "Paystack's dashboard dates it", edits={"occurred_at": GUESSED})
    else:
        with FileLock(str(settings.locks_dir / "ng.lock")):
            (busy,) = save_edits(settings, NIGERIA, item_id, {"occurred_at": GUESSED}).notices
            assert busy.column == "store"
            approve(settings, NIGERIA, item_id, "Paystack's dashboard dates it")
    assert reprocess_region(settings, "NG").quarantined == [item_id]
    assert refunds(settings) == [(-REFUND, "2025-06-06T15:30")]
    (again,) = list_items(settings, NIGERIA, ReviewFilter(statuses={"new"}), limit=20)
    assert [r.rule for r in again.rules] == ["repeat_other_time"]


def test_rejected_after_the_notice_the_refund_stays_counted_once(settings: Settings, tmp_path: Path):
    item_id = untimed_refund_queued(settings, tmp_path)
    assert revalidate(settings, NIGERIA, item_id, {"occurred_at": GUESSED}).notices
    reject(settings, NIGERIA, item_id, "the same refund as the one Paystack dated")
    assert reprocess_region(settings, "NG").rejected_recorded == [item_id]
    assert refunds(settings) == [(-REFUND, "2025-06-06T15:30")]


def test_a_refund_with_no_other_counted_is_not_questioned_and_the_store_is_read_only_when_needed(
    settings: Settings, tmp_path: Path
):
    """No other refund of the payment: no notice. And the store is read only for a refund whose time is typed:
    while a run holds the region's store, a fix of something else is checked without waiting for it."""
    item_id = untimed_refund_queued(settings, tmp_path, rails_refund=False)
    assert revalidate(settings, NIGERIA, item_id, {"occurred_at": GUESSED}).notices == []
    with FileLock(str(settings.locks_dir / "ng.lock")):  # what an ingest holds while it writes the store
        verdict = revalidate(settings, NIGERIA, item_id, {"creator_id": "NG-C0002"})
        assert verdict.notices == []


def test_a_busy_store_is_said_rather_than_waited_for(settings: Settings, tmp_path: Path):
    item_id = untimed_refund_queued(settings, tmp_path)
    with FileLock(str(settings.locks_dir / "ng.lock")):  # an ingest holds the store for minutes
        verdict = revalidate(settings, NIGERIA, item_id, {"occurred_at": GUESSED})
    assert verdict.ok
    (notice,) = verdict.notices
    assert notice.value.startswith("Could not check whether a refund of this payment for the same amount is already")
    assert "The check is made again when the fix loads" in notice.value
    # the store was not left open: a writer opens it at once
    with open_store(settings, "NG", wait_seconds=0):
        pass


def test_the_fix_form_and_the_cli_tell_the_steward(settings: Settings, tmp_path: Path):
    item_id = untimed_refund_queued(settings, tmp_path)
    create_accounts(settings)
    client = TestClient(create_app(settings))
    assert login(client, "amina", PASSWORD).status_code == 200
    page = f"/records/{item_id}"
    form = {"occurred_at": GUESSED, "csrf_token": token(client, page)}
    checked = client.post(f"{page}/edit", data=form | {"op": "check"})
    assert checked.status_code == 200
    shown = re.search(r'<ul class="notice" data-testid="notices">(.*?)</ul>', checked.text, re.S)
    assert shown and TOLD in shown.group(1) and TOLD_LOCAL in shown.group(1)
    assert "notices" not in client.get(page).text  # nothing saved yet: the record as it stands asks nothing

    result = runner.invoke(app, ["review", "fix", str(item_id), "--set", f"occurred_at={GUESSED}", "--json"])
    assert result.exit_code == 0, result.output
    (notice,) = json.loads(result.stdout)["notices"]
    assert notice["value"].startswith(TOLD)
    plain = runner.invoke(app, ["review", "show", str(item_id)])
    assert "note (repeat_other_time): " + TOLD in " ".join(plain.output.split())  # as wrapped to the terminal

    approved = client.post(f"{page}/edit", data=form | {"op": "approve"})
    assert approved.status_code == 200  # redirected to the record, now fixed, with the notice in the message
    assert "Fix approved" in approved.text and TOLD in approved.text
