"""Which days a batch marks changed: every day whose rollups it changes, and no other. A day left out keeps stale
figures in the central layer while the store has new ones; a day marked for nothing publishes identical rows
again (a new publication, a refreshed BI file, every API answer cached for the old one dropped)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_files
from kanda.regional.models import ensure_built
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.regional.test_money_back import flutterwave, write
from tests.support.files import make_files

DAY = dt.date(2026, 11, 20)
QUARANTINED = "SELECT rows_quarantined, rows_loaded FROM region_daily WHERE local_date = ?"


def test_a_file_of_duplicates_only_changes_no_day_and_publishes_nothing(settings: Settings, tmp_path):
    make_files(settings, regions=["CM"], rows=50)
    lines = [flutterwave("charge.completed", 4_000, "2026-11-20T10:00:00.000Z"),
             flutterwave("refund.completed", 500, "2026-11-21T10:00:00.000Z")]  # fmt: skip
    ingest_files(settings, "CM", [write(tmp_path, "a.ndjson", lines)])
    assert publish_region(settings, "CM").published
    (again,) = ingest_files(settings, "CM", [write(tmp_path, "b.ndjson", lines[::-1])]).files
    assert (again.loaded, again.duplicates) == (0, 2), again
    assert publish_region(settings, "CM").publish_id is None


def test_a_held_row_released_as_a_duplicate_leaves_its_days_quarantine_count(settings: Settings, tmp_path):
    """A sale held for a creator not yet onboarded; the creator is onboarded and the sale delivered again, which
    loads it; the release that follows loads nothing (the event is stored), but the row left quarantine, so its
    day's `rows_quarantined` falls from 1 to 0. Before, no day was marked and the published count stayed 1."""
    make_files(settings, regions=["CM"], rows=50)
    newcomer = "CM-C0999"
    sale = flutterwave("charge.completed", 4_000, "2026-11-20T10:00:00.000Z").replace("CM-C0001", newcomer)
    (held,) = ingest_files(settings, "CM", [write(tmp_path, "held.ndjson", [sale])]).files
    assert held.quarantined == 1
    publish_region(settings, "CM")

    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).filter(pl.col("region") == "CM").head(1).with_columns(creator_id=pl.lit(newcomer))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    report = ingest_files(settings, "CM", [write(tmp_path, "again.ndjson", [sale + " "])])  # the webhook again
    (loaded,), released = report.files, report.released
    assert loaded.loaded == 1 and (released.loaded, released.duplicates) == (0, 1), report
    assert publish_region(settings, "CM").days == [DAY]
    with open_store(settings, "CM") as con:
        assert con.execute(QUARANTINED, [DAY]).fetchall() == [(0, 1)]
        ensure_built(con, force=True, full_refresh=True)
        assert con.execute(QUARANTINED, [DAY]).fetchall() == [(0, 1)]
