"""`kanda orphans`: the files a publish killed before its commit leaves under the central tables are listed, then
deleted on request, and no file a publication reads is ever among them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from typer.testing import CliRunner

from kanda.central.catalog import NAMESPACE, open_catalog, publication_rows
from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files

runner = CliRunner()
TOTALS = "SELECT region, count(*) AS days, sum(net_minor) AS net FROM rollups.region_daily GROUP BY region"


def published_twice(settings: Settings) -> None:
    make_files(settings, regions=["EG"], rows=200, days=2)
    ingest_landing(settings, "EG")
    publish_region(settings, "EG")
    make_files(settings, regions=["KE"], rows=200, days=2)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")


def leave_orphan(settings: Settings, name: str) -> str:
    """A Parquet file in creator_daily's data folder that no snapshot names, as a write killed before its commit
    leaves one (a copy of a live data file, so that it looks like one in every way but the references)."""
    table = open_catalog(settings).load_table(f"{NAMESPACE}.creator_daily")
    live = next(iter(table.scan().plan_files())).file.file_path
    orphan = f"{live.rsplit('/', 1)[0]}/{name}"
    with table.io.new_input(live).open() as source, table.io.new_output(orphan).create() as target:
        target.write(source.read())
    return orphan


def every_publication(settings: Settings) -> list[list[dict]]:
    return [
        run_query(settings, TOTALS + " ORDER BY region", as_of=row["publish_id"]).to_pylist()
        for row in publication_rows(open_catalog(settings))
    ]


def test_a_killed_publishs_files_are_listed_then_deleted_and_every_publication_still_reads(settings: Settings):
    published_twice(settings)
    before = every_publication(settings)
    old, fresh = leave_orphan(settings, "killed-old.parquet"), leave_orphan(settings, "killed-now.parquet")
    four_days_ago = time.time() - 4 * 86400
    os.utime(old.removeprefix("file://"), (four_days_ago, four_days_ago))

    listed = runner.invoke(app, ["orphans"])
    assert listed.exit_code == 0, listed.output
    assert "killed-old.parquet" in listed.output and "killed-now.parquet" not in listed.output  # younger than 72 h
    assert "1 orphan file(s)" in listed.output and Path(old.removeprefix("file://")).exists()

    deleted = runner.invoke(app, ["orphans", "--delete"])
    assert deleted.exit_code == 0 and "deleted 1 orphan file(s)" in deleted.output, deleted.output
    assert not Path(old.removeprefix("file://")).exists() and Path(fresh.removeprefix("file://")).exists()
    assert every_publication(settings) == before and len(before) == 2
    assert all(r.passed for r in verify(settings, ["EG", "KE"]) if r.severity == "error")
    assert "no orphan files older than 1 hours" in runner.invoke(app, ["orphans", "--older-than", "1"]).output


def test_an_age_under_an_hour_is_refused_before_anything_is_read(settings: Settings):
    result = runner.invoke(app, ["orphans", "--older-than", "0.5"])
    assert result.exit_code == 2 and "at least 1 hour" in result.output, result.output
