"""A refund whose time a steward supplied, and the same refund delivered by the rail at another minute: one refund,
or two, is a steward's question, never a silent double.

A refund told apart by its minute (the rail gives no refund id) that arrives without a usable time (Paystack's refund
events state none: `regions/rails/paystack/spec.yaml`) loads with the time a steward types, and that minute is its
identity. The rail's own delivery of it at its real minute had another identity and loaded as a second refund: the
creator's net lost the money twice with nothing flagged. Such a delivery is now quarantined (`repeat_other_time`),
whichever of the two came first; approved it loads as the payment's second refund, rejected the refund stays counted
once. Real parts: Paystack webhook logs (Nigeria) and Yoco's (South Africa) through ingestion into real stores, the
review service and the region flow's reprocess.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, approve, enqueue_region, get_item, list_items, reject
from kanda.settings import Settings
from tests.support.builders import paystack_event
from tests.support.files import ingest_written

NIGERIA = Actor("amina", "steward", frozenset({"NG"}))
SOUTH_AFRICA = Actor("amina", "steward", frozenset({"ZA"}))
RAILS = Path(__file__).parents[2] / "regions" / "rails"
#: The time a steward guesses for a refund Paystack sent without one, and the refund's real time, hours later.
GUESSED, REAL = "2025-06-06T12:00:00Z", "2025-06-06T15:30:00.000Z"
REFUND = 200_000  # NGN 2,000.00 of paystack_event's NGN 5,000.00 sale


def refund(payment: str, amount: int = REFUND, created_at: str | None = None) -> dict:
    """A `refund.processed` as Paystack documents it (no time: quarantined for it), or, with `created_at`, a refund
    record that states its time (as the rail's sample does)."""
    data: dict[str, object] = {"status": "processed", "transaction_reference": payment, "amount": amount,
                               "currency": "NGN", "refund_reference": None, "domain": "live"}  # fmt: skip
    return {"event": "refund.processed", "data": data | ({"created_at": created_at} if created_at else {})}


def ndjson(*documents: dict) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def deliver(settings: Settings, folder: Path, name: str, *documents: dict) -> tuple[int, int, int]:
    """Another webhook log of Nigeria: its (loaded, quarantined, duplicates)."""
    path = folder / name
    path.write_text(ndjson(*documents))
    (report,) = ingest_files(settings, "NG", [path]).files
    assert report.status == "loaded", report
    return report.loaded, report.quarantined, report.duplicates


def open_items(settings: Settings, actor: Actor) -> list:
    enqueue_region(settings, next(iter(actor.regions)))
    return list_items(settings, actor, ReviewFilter(statuses={"new"}), limit=20)


def refunds(settings: Settings, region: str = "NG") -> list[tuple[str, int, str]]:
    """The region's stored refunds: (payment, amount, UTC time)."""
    with open_store(settings, region, read_only=True) as con:
        rows = con.execute(
            "SELECT transaction_id, amount_minor, occurred_at FROM sale_events WHERE event_type = 'refund'"
            " ORDER BY transaction_id, occurred_at, amount_minor"
        ).fetchall()
    return [(t, a, f"{o.astimezone(dt.UTC):%Y-%m-%dT%H:%M}") for t, a, o in rows]


def ledger_errors(settings: Settings, region: str = "NG") -> list[str]:
    publish_region(settings, region)
    return [f"{r.name}: {r.message}" for r in verify(settings, [region]) if not r.passed and r.severity == "error"]


def steward_times_the_refund(settings: Settings, tmp_path: Path, *, later: tuple[dict, ...] = ()) -> int:
    """Sales ps_000001 and ps_000002, ps_000001's refund without a time (quarantined), and `later` documents (in a
    log of their own, before the steward's fix); the steward types GUESSED and the fix is reprocessed. Returns the
    item's id."""
    sales = ndjson(paystack_event(1), paystack_event(2))
    report = ingest_written(settings, "NG", tmp_path / "mon.ndjson", sales + ndjson(refund("ps_000001")))
    assert (report.loaded, report.quarantined) == (2, 1), report
    if later:
        assert deliver(settings, tmp_path, "tue.ndjson", *later) == (len(later), 0, 0)
    (item,) = open_items(settings, NIGERIA)
    approve(settings, NIGERIA, item.id, "Paystack's dashboard dates it", edits={"occurred_at": GUESSED})
    return item.id


def other_time_reason(settings: Settings, item_id: int) -> dict:
    (rule,) = get_item(settings, NIGERIA, item_id).rules
    return {"rule": rule.rule, "column": rule.column, "value": rule.value, "severity": rule.severity}


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_rail_delivering_a_steward_timed_refund_at_another_minute_waits_for_a_steward(
    settings: Settings, tmp_path: Path, decision: str
):
    """The steward's time loads first; the rail's delivery at 15:30 is quarantined naming the stored 12:00 refund,
    while a refund of another amount and one of another payment load as they always did. Approved, the delivery is
    the payment's second refund; rejected, the refund stays counted once."""
    steward_times_the_refund(settings, tmp_path)
    assert reprocess_region(settings, "NG").loaded
    assert refunds(settings) == [("ps_000001", -REFUND, "2025-06-06T12:00")]

    other_amount = refund("ps_000001", 100_000, "2025-06-07T09:00:00.000Z")
    other_payment = refund("ps_000002", REFUND, REAL)
    rails = refund("ps_000001", created_at=REAL)
    assert deliver(settings, tmp_path, "wed.ndjson", rails, other_amount, other_payment) == (2, 1, 0)
    (item,) = open_items(settings, NIGERIA)
    assert item.transaction_id == "ps_000001"
    reason = other_time_reason(settings, item.id)
    assert (reason["rule"], reason["column"], reason["severity"]) == ("repeat_other_time", "occurred_at", "error")
    assert "loaded at 2025-06-06T12:00:00Z with a time a steward supplied" in reason["value"]
    assert "reject this row" in reason["value"] and "approve it" in reason["value"]
    assert get_item(settings, NIGERIA, item.id).local_date == dt.date(2025, 6, 6)  # its time is readable: its own day

    if decision == "approve":
        approve(settings, NIGERIA, item.id, "two refunds on Paystack's dashboard")
    else:
        reject(settings, NIGERIA, item.id, "the same refund: the steward's time was a guess")
    outcome = reprocess_region(settings, "NG")
    approved = decision == "approve"
    assert (outcome.loaded, outcome.rejected_recorded) == (([item.id], []) if approved else ([], [item.id]))
    second = [("ps_000001", -REFUND, "2025-06-06T15:30")] if approved else []
    untouched = [("ps_000001", -100_000, "2025-06-07T09:00"), ("ps_000002", -REFUND, "2025-06-06T15:30")]
    assert refunds(settings) == sorted([("ps_000001", -REFUND, "2025-06-06T12:00"), *second, *untouched])
    # the rail's log delivered again: a duplicate of the approved refund, or of the rejected record
    assert deliver(settings, tmp_path, "thu.ndjson", refund("ps_000001", created_at=REAL)) == (0, 0, 1)
    assert ledger_errors(settings) == []


def test_a_steward_timing_a_refund_the_rail_already_delivered_at_another_minute_is_asked_again(
    settings: Settings, tmp_path: Path
):
    """The other order: the rail's refund at 15:30 is stored when the steward types 12:00 for the copy Paystack sent
    without a time. The fix is quarantined again on reprocess, naming the rail's refund; approving it then loads the
    second refund, as the steward decided."""
    item_id = steward_times_the_refund(settings, tmp_path, later=(refund("ps_000001", created_at=REAL),))
    first = reprocess_region(settings, "NG")
    assert (first.loaded, first.quarantined) == ([], [item_id])
    assert refunds(settings) == [("ps_000001", -REFUND, "2025-06-06T15:30")]
    (again,) = open_items(settings, NIGERIA)
    reason = other_time_reason(settings, again.id)
    assert reason["rule"] == "repeat_other_time"
    assert reason["value"].startswith("2025-06-06T12:00:00Z (a time a steward supplied; a refund of this payment")
    assert "already loaded at 2025-06-06T15:30:00Z: if it is the same refund, reject" in reason["value"]
    approve(settings, NIGERIA, again.id, "Paystack shows two refunds")
    assert reprocess_region(settings, "NG").loaded == [again.id]
    assert refunds(settings) == [("ps_000001", -REFUND, "2025-06-06T12:00"), ("ps_000001", -REFUND, "2025-06-06T15:30")]
    assert ledger_errors(settings) == []


def test_the_other_order_rejected_keeps_the_rails_refund_alone(settings: Settings, tmp_path: Path):
    item_id = steward_times_the_refund(settings, tmp_path, later=(refund("ps_000001", created_at=REAL),))
    assert reprocess_region(settings, "NG").quarantined == [item_id]
    (again,) = open_items(settings, NIGERIA)
    reject(settings, NIGERIA, again.id, "the same refund as the rail's")
    assert reprocess_region(settings, "NG").rejected_recorded == [again.id]
    assert refunds(settings) == [("ps_000001", -REFUND, "2025-06-06T15:30")]
    assert ledger_errors(settings) == []


def _yoco(line: int) -> dict:
    """A document of the Yoco sample (1-based line)."""
    return json.loads((RAILS / "yoco/samples/webhooks_za.ndjson").read_text().splitlines()[line - 1])


def _yoco_refund(refund_id: str, created: str) -> dict:
    """A `refund.succeeded` of R50.00 of the sample's first checkout, with its own `rfd_` id."""
    document = _yoco(5) | {"id": f"evt_{refund_id}", "createdDate": created}
    document["payload"] = document["payload"] | {"id": refund_id, "amount": 5000, "paymentId": "p_za0001"}
    return document


def test_a_rail_with_refund_ids_is_left_to_its_ids(settings: Settings, tmp_path: Path):
    """Yoco names each refund (`rfd_...`): a steward's time for one does not change which refund it is. The same
    refund delivered at its real minute is a duplicate, and another refund of the same amount loads as its own."""
    content = ndjson(_yoco(1), _yoco_refund("rfd_ONE", "2026-10-06T25:61:00Z"))  # an unreadable time
    report = ingest_written(settings, "ZA", tmp_path / "mon.ndjson", content)
    assert (report.loaded, report.quarantined) == (1, 1), report
    (item,) = open_items(settings, SOUTH_AFRICA)
    approve(settings, SOUTH_AFRICA, item.id, "Yoco's portal dates it", edits={"occurred_at": "2026-10-06T12:00:00Z"})
    assert reprocess_region(settings, "ZA").loaded == [item.id]
    path = tmp_path / "tue.ndjson"
    path.write_text(
        ndjson(_yoco_refund("rfd_ONE", "2026-10-06T15:30:00.000000Z"), _yoco_refund("rfd_TWO", "2026-10-06T15:30:00Z"))
    )
    (later,) = ingest_files(settings, "ZA", [path]).files
    assert (later.loaded, later.quarantined, later.duplicates) == (1, 0, 1)
    assert [(a, t) for _, a, t in refunds(settings, "ZA")] == [(-5000, "2026-10-06T12:00"), (-5000, "2026-10-06T15:30")]
    assert ledger_errors(settings, "ZA") == []


def test_a_refund_a_steward_fixed_without_touching_its_time_is_the_rails(settings: Settings, tmp_path: Path):
    """A refund whose amount a steward retyped keeps the time the rail stated: another refund of the same amount at
    another minute is a second refund, as on arrival, and loads."""
    unreadable = refund("ps_000001", created_at=REAL)
    unreadable["data"]["amount"] = "2OOOOO"  # a letter O: the amount cannot be read
    report = ingest_written(settings, "NG", tmp_path / "mon.ndjson", ndjson(paystack_event(1), unreadable))
    assert (report.loaded, report.quarantined) == (1, 1), report
    (item,) = open_items(settings, NIGERIA)
    approve(settings, NIGERIA, item.id, "letter O", edits={"amount_minor": str(-REFUND)})
    assert reprocess_region(settings, "NG").loaded == [item.id]
    second = refund("ps_000001", created_at="2025-06-07T09:00:00Z")
    assert deliver(settings, tmp_path, "tue.ndjson", second) == (1, 0, 0)
    assert refunds(settings) == [("ps_000001", -REFUND, "2025-06-06T15:30"), ("ps_000001", -REFUND, "2025-06-07T09:00")]
