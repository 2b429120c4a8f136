"""`kanda verify` recounts region_daily's rows loaded and quarantined per day from the store's tables.

Nothing compared them: a model that miscounts them, or an edited rollup, published a plausible wrong quarantine
rate while verify passed. The store here holds generated dirty files and a hand-written Stripe file whose rows are
loaded, quarantined for their amount, for their time (a month and two ahead, or unreadable: counted on the day they
arrived), held for an unknown creator, then fixed by a steward (released: loaded on its own day) or rejected (still
counted): all of it must pass, and each tampered count fail, named with its day and both figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.checks import store_checks as checks
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.store import open_store
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, approve, enqueue_region, list_items, reject
from kanda.settings import Settings
from regions import get_region
from tests.support.files import make_files
from tests.support.steward_files import future_time, line, write

STEWARD = Actor("amina", "steward", frozenset({"EG"}))
#: A count in a message (1,234).
N = r"[\d,]+"
#: The local day in Cairo on which a row was quarantined (the day a row quarantined for its time counts on).
ARRIVED = "CAST(timezone('Africa/Cairo', quarantined_at) AS DATE)"


def egypt_store(settings: Settings, tmp_path: Path) -> None:
    """EG's store: generated files with dirt, and a hand-written file whose quarantined rows a steward fixes
    (ch_bad's amount, ch_future's time, moved to 7 October) or rejects (ch_wrong), the others waiting; published."""
    make_files(settings, regions=["EG"], rows=300)
    assert ingest_landing(settings, "EG").files
    path = write(
        tmp_path / "in",
        "eg-dirty.csv",
        [
            line("ch_good", "2026-10-05 09:00:00"),
            line("ch_bad", "2026-10-05 10:00:00", amount="25O,00"),  # an unreadable amount: fixed
            line("ch_future", future_time()),  # a month ahead: fixed
            line("ch_later", future_time(60)),  # two months ahead: waits, on the day it arrived
            line("ch_clock", "2026-10-05 25:61:00"),  # an unreadable time: waits, on the day it arrived
            line("ch_wrong", "2026-10-06 11:00:00", amount="0,00"),  # a zero amount: rejected
            line("ch_new", "2026-10-06 12:00:00", creator="EG-C0777"),  # a creator not onboarded: held
        ],
    )
    (result,) = ingest_files(settings, "EG", [path]).files
    assert (result.loaded, result.quarantined) == (1, 6), result
    publish_region(settings, "EG")
    enqueue_region(settings, "EG")
    items = {i.transaction_id: i.id for i in list_items(settings, STEWARD, ReviewFilter(), limit=1000)}
    approve(settings, STEWARD, items["ch_bad"], "letter O typed for a zero", edits={"amount_minor": "25000"})
    approve(settings, STEWARD, items["ch_future"], "clock a month ahead", edits={"occurred_at": "2026-10-07 10:30:00"})
    reject(settings, STEWARD, items["ch_wrong"], "a test charge")
    reprocessed = reprocess_region(settings, "EG")  # loads the fixes, marks the rejection, builds and publishes
    assert len(reprocessed.loaded) == 2 and reprocessed.publish_id is not None


def test_a_store_with_rows_quarantined_fixed_and_rejected_passes(settings: Settings, tmp_path: Path):
    egypt_store(settings, tmp_path)
    with open_store(settings, "EG", read_only=True) as con:
        fates = dict(
            con.execute(
                "SELECT transaction_id, status || CASE WHEN local_date IS NULL THEN ' undated' ELSE '' END"
                " FROM quarantine WHERE source_file = 'eg-dirty.csv'"
            ).fetchall()
        )
        generated = con.execute("SELECT count(*) FROM quarantine WHERE source_file <> 'eg-dirty.csv'").fetchone()[0]
        arrival = con.execute(
            f"SELECT rows_quarantined FROM region_daily WHERE local_date = (SELECT max({ARRIVED}) FROM quarantine)"
        ).fetchone()[0]
        moved = con.execute("SELECT local_date::VARCHAR FROM sale_events WHERE transaction_id = 'ch_future'").fetchone()
    # not vacuous: every fate of a quarantined row, rows dated by their arrival, and generated dirt besides
    assert fates == {
        "ch_bad": "released",
        "ch_future": "released undated",
        "ch_later": "open undated",
        "ch_clock": "open undated",
        "ch_wrong": "rejected",
        "ch_new": "held",
    }
    assert generated > 0 and arrival >= 2 and moved == ("2026-10-07",)

    results = verify(settings, ["EG"])
    (check,) = [r for r in results if r.name == "rollups_match_events"]
    assert check.passed, check.message
    assert [r.message for r in results if not r.passed and r.severity == "error"] == []


def one_row_loaded_more(con: duckdb.DuckDBPyConnection) -> str:
    con.execute("UPDATE region_daily SET rows_loaded = rows_loaded + 1 WHERE local_date = '2026-10-05'")
    return rf"2026-10-05: rows_loaded {N} where the store says {N}(;|\.)"


def one_row_quarantined_fewer_on_the_day_it_arrived(con: duckdb.DuckDBPyConnection) -> str:
    (day,) = con.execute(f"SELECT max({ARRIVED})::VARCHAR FROM quarantine").fetchone()
    con.execute("UPDATE region_daily SET rows_quarantined = rows_quarantined - 1 WHERE local_date = ?", [day])
    return rf"{day}: rows_quarantined {N} where the store says {N}(;|\.)"


def the_rejected_row_uncounted(con: duckdb.DuckDBPyConnection) -> str:
    """As a model counting only the rows still waiting would publish it: the rate follows the count."""
    con.execute(
        "UPDATE region_daily SET rows_quarantined = rows_quarantined - 1,"
        " quarantine_rate = (rows_quarantined - 1) / (rows_loaded + rows_quarantined - 1)"
        " WHERE local_date = '2026-10-06'"
    )
    return rf"2026-10-06: rows_quarantined {N} where the store says {N}, quarantine_rate [\d.e-]+ where the store says"


def another_quarantine_rate(con: duckdb.DuckDBPyConnection) -> str:
    con.execute("UPDATE region_daily SET quarantine_rate = quarantine_rate / 2 WHERE local_date = '2026-10-05'")
    return r"2026-10-05: quarantine_rate [\d.e-]+ where the store says [\d.e-]+(;|\.)"


def a_row_of_zeros_on_a_day_with_nothing(con: duckdb.DuckDBPyConnection) -> str:
    con.execute(
        "INSERT INTO region_daily BY NAME SELECT region, DATE '2026-11-20' AS local_date, currency, 0 AS orders,"
        " 0 AS gross_minor, 0 AS refunds_minor, 0 AS reversals_minor, 0 AS fees_minor, fees_stated, 0 AS net_minor,"
        " 0 AS net_usd_minor, 0 AS payments, 0 AS failed_payments, 0.0 AS payment_failure_rate, 0.0 AS reversal_rate,"
        " 0 AS rows_loaded, 0 AS rows_quarantined, 0.0 AS quarantine_rate FROM region_daily LIMIT 1"
    )
    return r"2026-11-20: a row where the store has no event and no quarantined row\."


@pytest.mark.parametrize(
    "tamper",
    [
        one_row_loaded_more,
        one_row_quarantined_fewer_on_the_day_it_arrived,
        the_rejected_row_uncounted,
        another_quarantine_rate,
        a_row_of_zeros_on_a_day_with_nothing,
    ],
)
def test_a_row_count_unlike_the_store_is_named_by_verify(settings: Settings, tmp_path: Path, tamper):
    egypt_store(settings, tmp_path)
    with open_store(settings, "EG") as con:
        assert checks.rollups_match_events(con, get_region("EG")).passed
        named = tamper(con)

    verified = CliRunner().invoke(app, ["verify", "--region", "EG"])
    assert verified.exit_code == 1, verified.output
    (check,) = [r for r in verify(settings, ["EG"]) if r.name == "rollups_match_events"]
    assert not check.passed and check.severity == "error"
    assert check.message.startswith("EG: region_daily's row counts differ from the store on 1 day(s): "), check.message
    assert re.search(named, check.message), check.message
    # the hint names both causes, and the repair
    assert "a rollup was edited" in check.message and "a model miscounts" in check.message
    assert "kanda publish --region EG --rebuild" in check.message

    # an edited rollup is mended by the repair the message names
    assert CliRunner().invoke(app, ["publish", "--region", "EG", "--rebuild"]).exit_code == 0
    assert [r.message for r in verify(settings, ["EG"]) if not r.passed and r.severity == "error"] == []
