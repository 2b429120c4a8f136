"""`--as-of`: a time or an id selects an earlier complete publication, on the CLI and the API alike."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.central.query import UnknownPublication, parse_as_of, publication_history, run_query
from kanda.cli import app
from kanda.regional.ingest import ingest_files
from kanda.settings import Settings
from tests.support.analyst import client_for, publish_regions
from tests.support.files import START, make_files

TOTAL = "select sum(net_minor) as net, count(*) as days from rollups.region_daily where region = 'KE'"
runner = CliRunner()


def test_as_of_returns_the_answer_of_an_earlier_publication(settings: Settings):
    publish_regions(settings, ["KE"], rows=200, days=1)
    (first,) = publication_history(settings)
    old = run_query(settings, TOTAL).to_pylist()
    between = dt.datetime.now(dt.UTC)

    (late,) = make_files(settings, regions=["KE"], rows=200, days=1, seed=11, start=START + dt.timedelta(days=3))
    ingest_files(settings, "KE", [late.path])
    second = publish_region(settings, "KE")
    new = run_query(settings, TOTAL).to_pylist()
    assert second.published and new != old

    # a time, a publish id, the Iceberg snapshot id of a rollup table in that publication: all the first one
    for as_of in (between, first["publish_id"], str(first["creator_daily_snapshot"])):
        assert run_query(settings, TOTAL, as_of=as_of).to_pylist() == old, as_of
    assert run_query(settings, TOTAL, as_of=second.publish_id).to_pylist() == new
    # the history too is as it was then
    assert run_query(settings, "select count(*) as n from rollups.publications", as_of=between).to_pylist() == [
        {"n": 1}
    ]

    cli = runner.invoke(app, ["query", TOTAL, "--as-of", between.isoformat(), "--format", "json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout) == [{"net": int(old[0]["net"]), "days": old[0]["days"]}]

    client = client_for(settings, "time-traveller")
    api = client.post("/api/sql", json={"sql": TOTAL, "as_of": between.isoformat()}).json()
    assert api["rows"] == [{"net": int(old[0]["net"]), "days": old[0]["days"]}]
    assert api["publication"]["publish_id"] == first["publish_id"]
    rollups = client.get("/api/rollups/region_daily", params={"as_of": first["publish_id"], "group_by": "region"})
    assert rollups.headers["x-kanda-publication"] == first["publish_id"]
    assert rollups.json()["rows"][0]["net_minor"] == old[0]["net"]

    history = runner.invoke(app, ["query", "--history"])
    assert history.exit_code == 0 and first["publish_id"] in history.output and second.publish_id in history.output


def test_unknown_ids_and_times_before_the_first_publication_are_explained(settings: Settings):
    publish_regions(settings, ["KE"], rows=100, days=1)
    (first,) = publication_history(settings)
    with pytest.raises(UnknownPublication, match="nothing was published at or before 2020-01-01T00:00:00"):
        run_query(settings, TOTAL, as_of=parse_as_of("2020-01-01"))
    with pytest.raises(UnknownPublication, match=r"no publication or snapshot 'KE-19990101'.*--history"):
        run_query(settings, TOTAL, as_of="KE-19990101")
    result = runner.invoke(app, ["query", TOTAL, "--as-of", "12345"])
    assert result.exit_code == 1 and "no publication or snapshot '12345'" in " ".join(result.output.split())
    result = runner.invoke(app, ["query", TOTAL, "--as-of", "2020-01-01T00:00:00+01:00"])
    assert result.exit_code == 1 and "the oldest publication kept is from" in " ".join(result.output.split())
    assert first["publish_id"] in runner.invoke(app, ["query", "--history"]).output


def test_as_of_parsing():
    assert parse_as_of("2026-11-23T17:00:00") == dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)
    assert parse_as_of("2026-11-23T19:00:00+02:00") == dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)
    assert parse_as_of("2026-11-23T17:00:00Z") == dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)
    assert parse_as_of("2026-11-23") == dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert parse_as_of("5071236913404862377") == "5071236913404862377"
    assert parse_as_of("KE-20261123T171422-57d14a23") == "KE-20261123T171422-57d14a23"


def test_explain_prints_the_plan_instead_of_running(settings: Settings):
    publish_regions(settings, ["KE"], rows=100, days=1)
    result = runner.invoke(
        app, ["query", "--explain", "select region, sum(net_minor) from rollups.creator_daily group by 1"]
    )
    assert result.exit_code == 0, result.output
    assert "SCAN" in result.output.upper() and "AGGREGATE" in result.output.upper()  # of the read-only file
    refused = runner.invoke(app, ["query", "--explain", "drop view rollups.creator_daily"])
    assert refused.exit_code == 1


def test_readers_asking_for_old_publications_never_prune_the_newest_ones_file(settings: Settings):
    """Eight `as_of` requests for old publications removed the current publication's reader file, so every
    other reader (the API's default, `kanda query`) had to rebuild it, again and again."""
    import os

    from kanda.central.reader_files import KEEP, NEWEST, ensure_reader_file, reader_path, readers_dir

    def fill(target):
        target.write_bytes(b"a reader file")

    settings.ensure_dirs()
    ensure_reader_file(settings, "NG-newest", fill)
    (readers_dir(settings) / NEWEST).write_text(json.dumps({"location": "metadata.json", "publish_id": "NG-newest"}))
    os.utime(reader_path(settings, "NG-newest"), (0, 0))  # the oldest built of all
    for index in range(KEEP + 3):
        ensure_reader_file(settings, f"NG-old-{index}", fill)
    built = sorted(p.parent.name for p in readers_dir(settings).glob("*/rollups.duckdb"))
    assert "NG-newest" in built and len(built) == KEEP
    assert f"NG-old-{KEEP + 2}" in built  # the file just built stays too


def test_building_an_earlier_publication_s_file_never_holds_up_the_newest_s(settings: Settings):
    """Every reader file was built under one lock: an analyst asking `as_of` for one old publication after another
    (each a full build, 8 s and 1.2 GB at scale) kept it, and the newest publication's readers (the API's default,
    `kanda query`, the publish's own refresh) waited behind every such build, up to the lock's 600 s."""
    import dataclasses
    import threading

    from kanda.central.reader_files import ensure_reader_file, reader_path

    quick = dataclasses.replace(settings, lock_wait_seconds=2.0)
    quick.ensure_dirs()
    started, release = threading.Event(), threading.Event()

    def slow_fill(target):
        started.set()
        release.wait(60)
        target.write_bytes(b"an earlier publication")

    old = threading.Thread(target=ensure_reader_file, args=(quick, "NG-old", slow_fill), kwargs={"newest": False})
    old.start()
    try:
        assert started.wait(30)
        path = ensure_reader_file(quick, "NG-newest", lambda target: target.write_bytes(b"the newest"))
        assert path.read_bytes() == b"the newest" and old.is_alive()  # built while the earlier one still was
    finally:
        release.set()
        old.join(60)
    assert reader_path(quick, "NG-old").read_bytes() == b"an earlier publication"


def test_publications_past_their_time_are_let_go_and_publishing_stays_as_it_was(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """Every publish added snapshots to every table and a file to the publications table, and kept for ever they
    made each later publish slower (pyiceberg copies a table's whole metadata per commit): 0.3 s for a region's
    first publish, 4.9 s for its 275th. Past KANDA_KEEP_PUBLICATIONS_HOURS, a publish lets go of the older
    publications, each region's newest excepted: what is left reads, verifies and answers as before."""
    from kanda.central import retention
    from kanda.central.catalog import NAMESPACE, open_catalog
    from kanda.central.orphans import find_orphans, remove_orphans
    from kanda.checks.verify import verify
    from kanda.settings import load_settings
    from warehouse_models import published

    monkeypatch.setattr(retention, "LET_GO_AT", 3)
    publish_regions(settings, ["KE", "NG"], rows=60, days=1)
    ng_newest = publication_history(settings)[-1]
    assert ng_newest["region"] == "NG"
    for _ in range(4):
        publish_region(settings, "KE", all_days=True)
    before = publication_history(settings)
    assert len(before) == 6
    answer = run_query(settings, TOTAL).to_pylist()

    # From now on a publication is kept for about a second: the next publish lets go of every earlier one but NG's.
    monkeypatch.setenv("KANDA_KEEP_PUBLICATIONS_HOURS", str(1 / 3600))
    time.sleep(1.5)
    newest = publish_region(load_settings(), "KE", all_days=True)
    after = publication_history(load_settings())
    assert [r["publish_id"] for r in after] == [ng_newest["publish_id"], newest.publish_id]
    assert run_query(load_settings(), TOTAL).to_pylist() == answer  # the same data, republished
    with pytest.raises(UnknownPublication, match="KANDA_KEEP_PUBLICATIONS_HOURS"):
        run_query(load_settings(), TOTAL, as_of=before[2]["publish_id"])
    # NG's newest stays readable however old: KE as it was then (published once, with the same data)
    assert run_query(load_settings(), TOTAL, as_of=ng_newest["publish_id"]).to_pylist() == answer

    # Each table keeps only the snapshots the kept publications name (and its current one).
    catalog = open_catalog(load_settings())
    for name in published():
        snapshots = {s.snapshot_id for s in catalog.load_table(f"{NAMESPACE}.{name}").metadata.snapshots}
        assert snapshots == {r[f"{name}_snapshot"] for r in after}, name
    assert len(catalog.load_table(f"{NAMESPACE}.publications").metadata.snapshots) == 1

    # The files only let-go snapshots named are orphans now: removed, what is kept reads and verifies as before.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    orphans = find_orphans(catalog, older_than=dt.timedelta(hours=1), now=later)
    assert {o.table for o in orphans} >= {f"{NAMESPACE}.{name}" for name in [*published(), "publications"]}
    remove_orphans(catalog, orphans)
    assert run_query(load_settings(), TOTAL).to_pylist() == answer
    assert run_query(load_settings(), TOTAL, as_of=ng_newest["publish_id"]).to_pylist() == answer
    failed = [r for r in verify(load_settings()) if not r.passed and r.severity == "error"]
    assert failed == [], failed

    # A count bounds them too (what a publish costs grows with it): the newest 2 kept, and NG's newest still.
    monkeypatch.setenv("KANDA_KEEP_PUBLICATIONS_HOURS", "168")
    monkeypatch.setenv("KANDA_KEEP_PUBLICATIONS", "2")
    made = [publish_region(load_settings(), "KE", all_days=True).publish_id for _ in range(4)]
    assert [r["publish_id"] for r in publication_history(load_settings())] == [ng_newest["publish_id"], *made[-2:]]
    assert run_query(load_settings(), TOTAL, as_of=made[-2]).to_pylist() == answer


@pytest.mark.slow  # seventeen publishes, one of them a process of its own
def test_a_publish_killed_while_letting_go_leaves_what_is_kept_readable_and_the_next_round_finishes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """Letting go is several commits (the history rewritten, then each table's snapshots expired). A publish killed
    between two of them has made its publication; the kept publications still answer as before, `kanda verify`
    passes, the rerun republishes the days the dead one had not marked, and the next round that lets go expires the
    snapshots the dead one left behind."""
    from kanda.central import retention
    from kanda.central.catalog import NAMESPACE, open_catalog
    from kanda.central.publish import FAULT_ENV
    from kanda.checks.verify import verify
    from kanda.settings import load_settings
    from warehouse_models import published

    publish_regions(settings, ["KE"], rows=60, days=1)
    for _ in range(retention.LET_GO_AT - 1):
        publish_region(settings, "KE", all_days=True)
    answer = run_query(settings, TOTAL).to_pylist()
    assert len(publication_history(settings)) == retention.LET_GO_AT

    # A real `kanda publish` in a process of its own, killed in the round that lets go of all but one: the history
    # rewritten and creator_daily's old snapshots expired, the other tables' not yet.
    monkeypatch.setenv("KANDA_KEEP_PUBLICATIONS", "1")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        FAULT_ENV: "publish:let_go:after_expire:creator_daily",
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    dead = subprocess.run(
        [sys.executable, "-m", "kanda.cli", "publish", "-r", "KE", "--all-days"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert dead.returncode == 99, dead.stderr
    (survivor,) = publication_history(load_settings())  # the history was rewritten before it died
    assert run_query(load_settings(), TOTAL).to_pylist() == answer
    assert run_query(load_settings(), TOTAL, as_of=survivor["publish_id"]).to_pylist() == answer
    catalog = open_catalog(load_settings())
    expired = catalog.load_table(f"{NAMESPACE}.creator_daily").metadata.snapshots
    left = catalog.load_table(f"{NAMESPACE}.region_daily").metadata.snapshots
    assert len(expired) == 1 and len(left) > 2 * retention.LET_GO_AT  # no kept publication names those

    # The dead publish had not marked its days published in the store: the rerun does, and all verifies.
    assert publish_region(load_settings(), "KE").published
    assert run_query(load_settings(), TOTAL).to_pylist() == answer
    failed = [r for r in verify(load_settings()) if not r.passed and r.severity == "error"]
    assert failed == [], failed

    # Publishing goes on; once enough are past their time again (two here), a round lets go of the leftovers too.
    monkeypatch.setattr(retention, "LET_GO_AT", 2)
    for _ in range(retention.LET_GO_AT - 1):
        publish_region(load_settings(), "KE", all_days=True)
    kept = publication_history(load_settings())
    assert len(kept) == 1
    assert run_query(load_settings(), TOTAL).to_pylist() == answer
    catalog = open_catalog(load_settings())
    for name in published():
        snapshots = {s.snapshot_id for s in catalog.load_table(f"{NAMESPACE}.{name}").metadata.snapshots}
        assert snapshots == {r[f"{name}_snapshot"] for r in kept}, name
    assert [r for r in verify(load_settings()) if not r.passed and r.severity == "error"] == []
