"""Rollups that no longer say what the store's events say are named by `kanda verify`: region, day, key and figure.

An event changed in place (by hand, outside kanda) moves no ledger row, so the build's store version stays and
nothing rebuilds: the rollups, and what was published from them, keep the old figures. Compared in total only,
an edit that keeps the totals (a sale moved to another day or creator, money moved between two sales) passed.
"""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import make_files

#: Two successful sales on different days and of different creators: the first and the last the store has.
SALES = (
    "SELECT event_id, local_date::VARCHAR, creator_id FROM sale_events WHERE event_type = 'sale'"
    " AND status = 'success' ORDER BY local_date, event_id"
)


def moved_to_the_next_day(con: duckdb.DuckDBPyConnection, first: tuple, last: tuple) -> None:
    con.execute(
        "UPDATE sale_events SET local_date = local_date + 1, occurred_at = occurred_at + INTERVAL 1 DAY"
        " WHERE event_id = ?",
        [first[0]],
    )


def given_to_another_creator(con: duckdb.DuckDBPyConnection, first: tuple, last: tuple) -> None:
    con.execute("UPDATE sale_events SET creator_id = ? WHERE event_id = ?", [last[2], first[0]])


def money_moved_between_two_sales(con: duckdb.DuckDBPyConnection, first: tuple, last: tuple) -> None:
    for event_id, change in ((first[0], 500), (last[0], -500)):
        con.execute(
            "UPDATE sale_events SET amount_minor = amount_minor + ?, net_minor = net_minor + ? WHERE event_id = ?",
            [change, change, event_id],
        )


@pytest.mark.parametrize("edit", [moved_to_the_next_day, given_to_another_creator, money_moved_between_two_sales])
def test_an_event_changed_in_place_with_the_same_totals_is_named_by_verify(settings: Settings, edit):
    make_files(settings, regions=["KE"], rows=300, days=3)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    with open_store(settings, "KE") as con:
        sales = con.execute(SALES).fetchall()
        first, last = sales[0], sales[-1]
        assert first[1] != last[1] and first[2] != last[2]
        totals = con.execute("SELECT sum(net_minor), count(*) FROM sale_events").fetchall()
        edit(con, first, last)
        assert con.execute("SELECT sum(net_minor), count(*) FROM sale_events").fetchall() == totals

    verified = CliRunner().invoke(app, ["verify"])
    assert verified.exit_code == 1, verified.output
    (check,) = [r for r in verify(settings) if r.name == "rollups_match_events"]
    assert not check.passed and check.severity == "error"
    assert check.message.startswith("KE: creator_daily differs from the events on 2 row(s): ")
    assert f"{first[1]} {first[2]}: " in check.message  # the day and creator whose figure is wrong
    assert "net_minor" in check.message and "where the events say" in check.message
    assert "kanda publish --region KE --rebuild" in check.message

    # the repair the message names: the rollups built again from the events, and every day published again; the
    # edit itself stays named by the money the ledger recorded for its batch (tests/checks/test_ledger_money.py)
    assert CliRunner().invoke(app, ["publish", "--region", "KE", "--rebuild"]).exit_code == 0
    assert [r.name for r in verify(settings) if not r.passed and r.severity == "error"] == ["ledger_money"]
