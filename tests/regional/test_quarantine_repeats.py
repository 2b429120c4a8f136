"""A bad record delivered again is quarantined once: exports overlap and webhooks are redelivered, and each copy
used to be another review item and another quarantined row in its day's rate. The copy counts as a duplicate, so
every batch still balances."""

from __future__ import annotations

from pathlib import Path

from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.regions_cli import dry_run
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, enqueue_region, list_items, reject
from kanda.settings import Settings
from regions import get_region
from tests.support.builders import paid, stripe_file
from tests.support.files import ingest_written, make_files

STEWARD = Actor("amina", "steward", frozenset({"EG"}))
BAD = paid("ch_bad", "2026-10-05 09:00:00", amount="3OO,00")  # a letter O: unreadable money
UNKNOWN_CREATOR = paid("ch_new", "2026-10-05 09:30:00").replace("EG-C0002", "EG-C0999")


def counts(result) -> tuple[int, int, int]:
    return result.loaded, result.quarantined, result.duplicates


def quarantine(settings: Settings) -> list[tuple[str, str, str]]:
    with open_store(settings, "EG", read_only=True) as con:
        return con.execute("SELECT transaction_id, status, batch_id FROM quarantine ORDER BY quarantine_id").fetchall()


def no_errors(settings: Settings) -> list[str]:
    publish_region(settings, "EG")
    return [f"{r.name}: {r.message}" for r in verify(settings, ["EG"]) if not r.passed and r.severity == "error"]


def test_a_bad_record_in_overlapping_exports_is_quarantined_once(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    monday = stripe_file(tmp_path, "mon.csv", [paid("ch_1", "2026-10-05 08:00:00"), BAD])
    tuesday = stripe_file(tmp_path, "tue.csv", [BAD, paid("ch_2", "2026-10-06 08:00:00")])  # overlaps Monday
    first, second = ingest_files(settings, "EG", [monday, tuesday]).files
    assert (counts(first), counts(second)) == ((1, 1, 0), (1, 0, 1))
    ((transaction, status, batch),) = quarantine(settings)
    assert (transaction, status, batch) == ("ch_bad", "open", first.batch_id)
    enqueue_region(settings, "EG")
    assert [i.transaction_id for i in list_items(settings, STEWARD, ReviewFilter(), limit=10)] == ["ch_bad"]
    assert no_errors(settings) == []  # every batch balances: the copy is a duplicate


def test_a_record_a_steward_rejected_does_not_come_back_with_the_next_export(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    ingest_files(settings, "EG", [stripe_file(tmp_path, "mon.csv", [BAD])])
    enqueue_region(settings, "EG")
    (item,) = list_items(settings, STEWARD, ReviewFilter(), limit=10)
    reject(settings, STEWARD, item.id, "a test charge")
    reprocess_region(settings, "EG")
    (again,) = ingest_files(
        settings, "EG", [stripe_file(tmp_path, "week.csv", [BAD, paid("ch_3", "2026-10-07 08:00:00")])]
    ).files
    assert counts(again) == (1, 0, 1)
    enqueue_region(settings, "EG")
    assert [i.id for i in list_items(settings, STEWARD, ReviewFilter(), limit=10)] == [item.id]  # no new item
    assert [status for _, status, _ in quarantine(settings)] == ["rejected"]
    assert no_errors(settings) == []


def test_a_bad_line_twice_in_one_file_is_one_quarantine_row_and_the_dry_run_says_so(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    path = stripe_file(tmp_path, "twice.csv", [BAD, paid("ch_1", "2026-10-05 08:00:00"), BAD])
    predicted = dry_run(get_region("EG"), path)["counts"]
    assert (predicted["load"], predicted["quarantine"], predicted["duplicate_in_file"]) == (1, 1, 1)
    (result,) = ingest_files(settings, "EG", [path]).files
    assert counts(result) == (1, 1, 1)
    assert len(quarantine(settings)) == 1


def test_an_unknown_creators_row_exported_again_is_held_once_and_released_once(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["EG"], rows=50)
    first, second = ingest_files(
        settings,
        "EG",
        [stripe_file(tmp_path, "mon.csv", [UNKNOWN_CREATOR]), stripe_file(tmp_path, "tue.csv", [UNKNOWN_CREATOR, BAD])],
    ).files
    assert (counts(first), counts(second)) == ((0, 1, 0), (0, 1, 1))  # held on Monday; Tuesday's copy a duplicate
    assert [(t, s) for t, s, _ in quarantine(settings)] == [("ch_new", "held"), ("ch_bad", "open")]
    creators = settings.registry_dir / "creators.csv"
    line = creators.read_text().splitlines()[1].split(",")
    line[0] = "EG-C0999"
    creators.write_text(creators.read_text() + ",".join(line) + "\n")
    released = ingest_files(settings, "EG", []).released
    assert (released.loaded, released.quarantined, released.duplicates) == (1, 0, 0)
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_new'").fetchall() == [(1,)]
    assert no_errors(settings) == []


def test_a_repeat_with_other_money_twice_in_a_file_is_one_quarantine_row_in_the_dry_run_too(
    settings: Settings, tmp_path: Path
):
    make_files(settings, regions=["EG"], rows=50)
    other = paid("ch_1", "2026-10-05 08:00:00", amount="300,00")  # the same event as the first line, other money
    path = stripe_file(tmp_path, "f.csv", [paid("ch_1", "2026-10-05 08:00:00"), other, other])
    predicted = dry_run(get_region("EG"), path)["counts"]
    (result,) = ingest_files(settings, "EG", [path]).files
    assert counts(result) == (1, 1, 1)
    assert (predicted["load"], predicted["quarantine"], predicted["duplicate_in_file"]) == counts(result)


def test_a_row_an_older_kanda_held_from_a_dollar_file_is_not_released_as_shillings(settings: Settings, tmp_path):
    """Before `($)` files were refused, a row of one could be held for an unknown creator. Released once the creator
    is registered, its dollars would load as shillings: it stays for a steward, and `kanda verify` names it."""
    held = ingest_written(
        settings,
        "TZ",
        tmp_path / "tz.csv",
        "Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (TZS),Fees (TZS),Net Total (TZS)\n"
        "USD1,[TZ-C0999.TZ-P00001] x,2026-10-05,10:00:00,10.00,0.50,9.50\n",
        registry_rows=20,
    )
    assert held.quarantined == 1
    with open_store(settings, "TZ") as con:  # the row as an older kanda kept it: read from a ($) file
        con.execute("UPDATE quarantine SET raw_record = replace(CAST(raw_record AS VARCHAR), '(TZS)', '($)')")
    creators = settings.registry_dir / "creators.csv"
    line = creators.read_text().splitlines()[1].split(",")
    line[0] = "TZ-C0999"
    creators.write_text(creators.read_text() + ",".join(line) + "\n")
    assert ingest_files(settings, "TZ", []).released is None
    with open_store(settings, "TZ", read_only=True) as con:
        assert con.execute("SELECT status FROM quarantine").fetchall() == [("held",)]
        assert con.execute("SELECT count(*) FROM sale_events").fetchall() == [(0,)]
    publish_region(settings, "TZ")
    (check,) = [r for r in verify(settings, ["TZ"]) if r.name == "dollar_records"]
    assert (check.passed, check.severity, check.metadata["records"]) == (False, "warn", 1)
    assert "US dollars" in check.message
