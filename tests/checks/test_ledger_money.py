"""An event changed in place is named by its batch for good: the ledger records each batch's money when it loads.

The rollups are compared with the events only until the models are rebuilt from the edited events
(`tests/checks/test_stale_rollups.py`): `kanda publish --rebuild` published the edited figure and then nothing
flagged it. The ledger's money (`batch_money`, hashed into the chain the publications anchor) keeps saying what was
loaded, so `kanda verify` still names the batch after the rebuild, whether the totals moved or were kept.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.flow import reprocess_region
from kanda.regional import ledger
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, approve, enqueue_region, list_items, save_edits
from kanda.settings import Settings
from tests.support.files import make_files
from tests.support.steward_files import ingest_dirty_egypt

#: Successful sales of one batch, with their day and creator.
SALES = (
    "SELECT event_id, local_date, creator_id FROM sale_events WHERE event_type = 'sale' AND status = 'success'"
    " AND batch_id = ? ORDER BY local_date, event_id"
)


def errors(settings: Settings) -> dict[str, str]:
    return {r.name: r.message for r in verify(settings) if not r.passed and r.severity == "error"}


def add_money(con: duckdb.DuckDBPyConnection, event_id: str, change: int) -> None:
    con.execute(
        "UPDATE sale_events SET amount_minor = amount_minor + ?, net_minor = net_minor + ? WHERE event_id = ?",
        [change, change, event_id],
    )


def amount_changed(con: duckdb.DuckDBPyConnection, sales: list[tuple]) -> str:
    add_money(con, sales[0][0], 500)
    return "amount_minor"


def money_moved_between_two_days(con: duckdb.DuckDBPyConnection, sales: list[tuple]) -> str:
    first = sales[0]
    (later,) = [s for s in sales if s[1] != first[1] and s[2] == first[2]][:1]  # the same creator, another day
    add_money(con, first[0], 500)
    add_money(con, later[0], -500)
    return "money moved between days"


def money_moved_between_two_creators(con: duckdb.DuckDBPyConnection, sales: list[tuple]) -> str:
    first = sales[0]
    (other,) = [s for s in sales if s[1] == first[1] and s[2] != first[2]][:1]  # the same day, another creator
    add_money(con, first[0], 500)
    add_money(con, other[0], -500)
    return "money moved between days, creators"


def one_batch(settings: Settings) -> tuple[str, str]:
    """Kenya's store with one published file batch; its batch id and file name."""
    make_files(settings, regions=["KE"], rows=300, days=3)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    with open_store(settings, "KE", read_only=True) as con:
        ((batch_id, file_name),) = con.execute("SELECT batch_id, file_name FROM ledger").fetchall()
    return batch_id, file_name


@pytest.mark.parametrize("edit", [amount_changed, money_moved_between_two_days, money_moved_between_two_creators])
def test_an_event_changed_in_place_is_still_named_after_the_rollups_are_rebuilt(settings: Settings, edit):
    batch_id, file_name = one_batch(settings)
    assert errors(settings) == {}
    with open_store(settings, "KE") as con:
        totals = con.execute("SELECT sum(amount_minor), sum(net_minor), count(*) FROM sale_events").fetchall()
        said = edit(con, con.execute(SALES, [batch_id]).fetchall())
        if edit is not amount_changed:  # the totals are kept: only where the money is has changed
            assert (
                con.execute("SELECT sum(amount_minor), sum(net_minor), count(*) FROM sale_events").fetchall() == totals
            )

    rebuilt = CliRunner().invoke(app, ["publish", "--region", "KE", "--rebuild"])  # the edited figure goes out
    assert rebuilt.exit_code == 0, rebuilt.output
    found = errors(settings)
    assert set(found) == {"ledger_money"}, found  # the rollups agree with the edited events now; the ledger does not
    message = found["ledger_money"]
    assert message.startswith("KE: the events of 1 batch(es) no longer hold the money the ledger recorded")
    assert f"batch {batch_id} ({file_name}, money recorded by ledger row 1)" in message
    assert said in message
    if edit is amount_changed:
        assert "amount_minor" in message and "in the ledger" in message and "in sale_events" in message
    assert "changed in place" in message and "restore the store from a backup" in message
    assert CliRunner().invoke(app, ["verify"]).exit_code == 1


def test_an_untouched_store_and_a_reprocessed_fix_pass_and_a_fixed_event_changed_later_is_named(
    settings: Settings, tmp_path: Path
):
    ingest_dirty_egypt(settings, tmp_path / "in")
    publish_region(settings, "EG")
    assert "ledger_money" not in errors(settings)
    steward = Actor("amina", "steward", frozenset({"EG"}))
    enqueue_region(settings, "EG")
    (item,) = [i.id for i in list_items(settings, steward, ReviewFilter(), limit=100) if i.transaction_id == "ch_bad"]
    assert save_edits(settings, steward, item, {"amount_minor": "25000"}).ok
    approve(settings, steward, item, "letter O typed for a zero")
    fix = reprocess_region(settings, "EG")
    assert fix.loaded == [item]

    results = {r.name: r for r in verify(settings, ["EG"])}
    assert results["ledger_money"].passed, results["ledger_money"].message
    assert results["ledger_money"].metadata == {"batches": 2, "differ": 0, "unchecked": 0}
    with open_store(settings, "EG") as con:
        kinds = con.execute("SELECT l.kind, m.events FROM ledger l JOIN batch_money m USING (seq) ORDER BY seq")
        assert kinds.fetchall()[-1] == ("fix", 1)  # the fix batch recorded its one event's money
        con.execute("UPDATE sale_events SET fee_minor = 0, net_minor = amount_minor WHERE batch_id = ?", [fix.batch_id])
    found = errors(settings)["ledger_money"]
    assert f"batch {fix.batch_id} (fix, " in found and "fee_minor 375 in the ledger, 0 in sale_events" in found


def test_the_money_the_ledger_recorded_cannot_be_edited_to_match_without_breaking_the_chain(settings: Settings):
    batch_id, _ = one_batch(settings)
    with open_store(settings, "KE") as con:
        add_money(con, con.execute(SALES, [batch_id]).fetchall()[0][0], 500)
        held = ledger.batch_money(con, batch_id)[batch_id]  # the record restated with the ledger's own function
        con.execute(
            "UPDATE batch_money SET amount_minor = ?, net_minor = ?, digest = ?",
            [held.amount_minor, held.net_minor, held.digest],
        )
    found = errors(settings)
    assert "ledger_money" not in found  # the events and the edited record agree
    assert "ledger row 1 (" in found["ledger_chain"] and "do not match its hash" in found["ledger_chain"]


def test_a_store_from_before_the_ledger_recorded_money_opens_and_is_checked_from_then_on(settings: Settings):
    make_files(settings, regions=["KE"], rows=300, days=3)
    ingest_landing(settings, "KE")
    with duckdb.connect(str(settings.store_path("KE"))) as con:  # as a kanda without batch money left it
        ((seq, batch_id, *row),) = con.execute(
            "SELECT seq, batch_id, region, kind, file_name, content_hash, rows_read, ignored, rows_in, loaded,"
            " quarantined, duplicates, started_at, finished_at FROM ledger"
        ).fetchall()
        entry = ledger.LedgerEntry(batch_id, *row[:4], ledger.BatchCounts(*row[4:10]), *row[10:])
        con.execute("UPDATE ledger SET row_hash = ?", [ledger._row_hash(ledger.GENESIS, seq, entry)])
        con.execute("DROP TABLE batch_money")
        con.execute("DELETE FROM store_upgrades WHERE name = 'batch_money'")

    publish_region(settings, "KE")  # the first open by this kanda records the batch's money
    assert errors(settings) == {}  # the older row verifies as it was hashed
    with open_store(settings, "KE") as con:
        rows = con.execute("SELECT kind, file_name, rows_read FROM ledger ORDER BY seq").fetchall()
        assert rows[1:] == [("upgrade", "batch_money", 0)]  # in a ledger row of its own, moving no rows
        assert con.execute("SELECT seq, batch_id FROM batch_money").fetchall() == [(2, batch_id)]
        add_money(con, con.execute(SALES, [batch_id]).fetchall()[0][0], 500)
    assert CliRunner().invoke(app, ["publish", "--region", "KE", "--rebuild"]).exit_code == 0
    found = errors(settings)
    assert set(found) == {"ledger_money"} and f"batch {batch_id} (" in found["ledger_money"]
    assert "money recorded by ledger row 2" in found["ledger_money"]
