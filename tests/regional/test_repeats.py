"""A delivery that repeats an event with other money is quarantined with its line: counted as a duplicate it would
vanish unseen, and loaded it would double the event. A delivery that says the same is a duplicate, as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import FixInvalid, ReviewFilter, approve, enqueue_region, list_items, reject
from kanda.settings import Settings
from tests.regional.test_money_back import CHARGE, flutterwave, money_back, write
from tests.support.builders import paid, stripe_file
from tests.support.files import make_files


def quarantined(settings: Settings, region: str) -> list[tuple]:
    with open_store(settings, region, read_only=True) as con:
        rows = con.execute(
            "SELECT quarantine_id, source_row, raw_record, reasons FROM quarantine ORDER BY quarantine_id"
        ).fetchall()
    return [(qid, line, json.loads(raw), json.loads(reasons)) for qid, line, raw, reasons in rows]


def failures(settings: Settings, region: str) -> list[str]:
    publish_region(settings, region)
    return [f"{r.name}: {r.message}" for r in verify(settings, [region]) if not r.passed and r.severity == "error"]


def test_a_second_refund_within_the_same_minute_is_quarantined_not_dropped(settings: Settings, tmp_path: Path):
    """Flutterwave refunds are told apart by their minute: a second refund of one payment 35 seconds after the first
    has the first's identity. Its other amount is what shows it is not a redelivery."""
    make_files(settings, regions=["CM"], rows=50)
    sale = flutterwave("charge.completed", 10_000, "2026-11-20T10:00:00.000Z")
    first = flutterwave("refund.completed", 3_000, "2026-11-21T10:00:05.000Z")
    second = flutterwave("refund.completed", 2_000, "2026-11-21T10:00:40.000Z")
    (result,) = ingest_files(settings, "CM", [write(tmp_path, "a.ndjson", [sale, first, first, second])]).files
    assert (result.loaded, result.quarantined, result.duplicates) == (2, 1, 1), result

    ((qid, line, raw, reasons),) = quarantined(settings, "CM")
    assert (qid, line) == (f"{result.batch_id}:4.repeat", 4)
    assert "2000" in json.dumps(raw) and "10:00:40" in json.dumps(raw)  # the file's own line, read again
    assert reasons == [
        {
            "rule": "repeat_differs",
            "column": "amount_minor",
            "value": "-2000 (this event was first recorded with -3000)",
            "severity": "error",
        }
    ]
    with open_store(settings, "CM", read_only=True) as con:
        assert [row[1] for row in money_back(con, str(CHARGE))] == [-3_000]
    assert failures(settings, "CM") == []


def test_a_redelivery_with_other_money_is_quarantined_against_the_store(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    folder = tmp_path / "in"
    a = stripe_file(folder, "a.csv", [paid("ch_1", "2026-10-05 10:00:00")])
    b = stripe_file(
        folder,
        "b.csv",
        [
            paid("ch_2", "2026-10-05 11:00:00"),
            paid("ch_1", "2026-10-05 10:00:00"),  # said again: a duplicate
            paid("ch_1", "2026-10-05 10:00:00", amount="300,00"),  # said otherwise
        ],
    )
    first, second = ingest_files(settings, "EG", [a, b]).files
    assert (first.loaded, second.loaded, second.quarantined, second.duplicates) == (1, 1, 1, 1), second
    ((qid, line, raw, reasons),) = quarantined(settings, "EG")
    assert (qid, line) == (f"{second.batch_id}:3.repeat", 3)
    assert raw["Amount"] == "300,00" and raw["id"] == "ch_1"
    assert [(r["rule"], r["value"]) for r in reasons] == [
        ("repeat_differs", "30000 (this event was first recorded with 25000)")
    ]
    with open_store(settings, "EG", read_only=True) as con:
        stored = con.execute("SELECT transaction_id, amount_minor FROM sale_events ORDER BY 1").fetchall()
    assert stored == [("ch_1", 25_000), ("ch_2", 25_000)]
    assert failures(settings, "EG") == []


def test_a_repeat_approved_unchanged_is_refused_and_rejected_it_keeps_the_first_money(settings: Settings, tmp_path):
    """Approved as it is, the repeat would only be quarantined again on reprocess: the review says so at once."""
    make_files(settings, regions=["EG"], rows=50)
    folder = tmp_path / "in"
    a = stripe_file(folder, "a.csv", [paid("ch_1", "2026-10-05 10:00:00")])
    b = stripe_file(folder, "b.csv", [paid("ch_1", "2026-10-05 10:00:00", amount="300,00")])
    ingest_files(settings, "EG", [a, b])
    enqueue_region(settings, "EG")
    steward = Actor("amina", "steward", frozenset({"EG"}))
    (item,) = list_items(settings, steward, ReviewFilter(), limit=10)
    with pytest.raises(FixInvalid, match="repeat_differs"):
        approve(settings, steward, item.id, "the rail says 300,00", edits={})
    with pytest.raises(FixInvalid, match="repeat_differs"):
        approve(settings, steward, item.id, "same again", edits={"channel": "card"})
    reject(settings, steward, item.id, "a repeat with a wrong amount")
    reprocess_region(settings, "EG")
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT amount_minor FROM sale_events").fetchall() == [(25_000,)]
    assert failures(settings, "EG") == []


def test_a_fix_that_repeats_a_stored_event_with_other_money_goes_back_with_its_line(settings: Settings, tmp_path):
    """The fix batch applies the same rule as a file: an amount typed for an unreadable one that differs from the
    stored event's is quarantined again, keeps the file's line, and is told as quarantined, not as a duplicate."""
    make_files(settings, regions=["EG"], rows=50)
    folder = tmp_path / "in"
    a = stripe_file(folder, "a.csv", [paid("ch_1", "2026-10-05 10:00:00")])
    b = stripe_file(folder, "b.csv", [paid("ch_1", "2026-10-05 10:00:00", amount="3OO,00")])  # a letter O
    ingest_files(settings, "EG", [a, b])
    enqueue_region(settings, "EG")
    steward = Actor("amina", "steward", frozenset({"EG"}))
    (item,) = list_items(settings, steward, ReviewFilter(), limit=10)
    approve(settings, steward, item.id, "the export's 300,00", edits={"amount_minor": "30000"})
    result = reprocess_region(settings, "EG")
    assert result.quarantined == [item.id], result
    again = [row for row in quarantined(settings, "EG") if row[0].startswith(result.batch_id)]
    ((_, _, raw, reasons),) = again
    assert json.loads(raw["original"])["Amount"] == "3OO,00"
    assert [(r["rule"], r["value"]) for r in reasons] == [
        ("repeat_differs", "30000 (this event was first recorded with 25000)")
    ]
    enqueue_region(settings, "EG")
    (back,) = list_items(settings, steward, ReviewFilter(statuses=frozenset({"new"})), limit=10)
    assert back.rules[0].rule == "repeat_differs"
    approve(settings, steward, back.id, "as first recorded", edits={"amount_minor": "25000"})
    assert reprocess_region(settings, "EG").duplicates == [back.id]
    assert failures(settings, "EG") == []


def test_a_steward_loads_a_genuine_second_refund_by_its_own_minute(settings: Settings, tmp_path: Path):
    """The rail confirms two refunds 35 seconds apart. The refund's minute is its reference, so the steward types
    the second one's time in the next minute: it is then an event of its own, and both refunds count."""
    make_files(settings, regions=["CM"], rows=50)
    sale = flutterwave("charge.completed", 10_000, "2026-11-20T10:00:00.000Z")
    first = flutterwave("refund.completed", 3_000, "2026-11-21T10:00:05.000Z")
    second = flutterwave("refund.completed", 2_000, "2026-11-21T10:00:40.000Z")
    ingest_files(settings, "CM", [write(tmp_path, "a.ndjson", [sale, first, second])])
    enqueue_region(settings, "CM")
    steward = Actor("awa", "steward", frozenset({"CM"}))
    (item,) = list_items(settings, steward, ReviewFilter(), limit=10)
    approve(settings, steward, item.id, "two refunds, confirmed", edits={"occurred_at": "2026-11-21T10:01:00+00:00"})
    assert reprocess_region(settings, "CM").loaded == [item.id]
    with open_store(settings, "CM", read_only=True) as con:
        assert [row[1] for row in money_back(con, str(CHARGE))] == [-3_000, -2_000]
    assert failures(settings, "CM") == []


def test_a_redelivery_naming_another_creator_is_quarantined_and_the_sale_stays_with_the_first(
    settings: Settings, tmp_path: Path
):
    """Only the money was compared: the same charge delivered again naming another creator and product was counted
    as a duplicate, so one creator's claim to the sale vanished unseen, whichever delivery was right. It is a
    `repeat_other_owner` error now; approved unchanged it is refused, and fixed to the owner first recorded it is
    the duplicate it then is."""
    make_files(settings, regions=["EG"], rows=50)
    folder = tmp_path / "in"
    a = stripe_file(folder, "a.csv", [paid("ch_1", "2026-10-05 10:00:00")])
    other = paid("ch_1", "2026-10-05 10:00:00").replace("EG-C0002.EG-P00005", "EG-C0001.EG-P00001")
    b = stripe_file(folder, "b.csv", [paid("ch_1", "2026-10-05 10:00:00"), other])
    _, second = ingest_files(settings, "EG", [a, b]).files
    assert (second.loaded, second.quarantined, second.duplicates) == (0, 1, 1), second
    ((_, line, raw, reasons),) = quarantined(settings, "EG")
    assert line == 2 and raw["kanda_ref (metadata)"] == "EG-C0001.EG-P00001"
    assert [(r["rule"], r["column"], r["value"]) for r in reasons] == [
        ("repeat_other_owner", "creator_id", "EG-C0001 (this event was first recorded with EG-C0002)"),
        ("repeat_other_owner", "product_id", "EG-P00001 (this event was first recorded with EG-P00005)"),
    ]
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT creator_id, product_id FROM sale_events").fetchall() == [("EG-C0002", "EG-P00005")]
    assert failures(settings, "EG") == []

    enqueue_region(settings, "EG")
    steward = Actor("amina", "steward", frozenset({"EG"}))
    (item,) = list_items(settings, steward, ReviewFilter(), limit=10)
    with pytest.raises(FixInvalid, match="repeat_other_owner"):
        approve(settings, steward, item.id, "the rail says EG-C0001", edits={})
    approve(
        settings, steward, item.id, "as first recorded", edits={"creator_id": "EG-C0002", "product_id": "EG-P00005"}
    )
    assert reprocess_region(settings, "EG").duplicates == [item.id]
    assert failures(settings, "EG") == []
