"""Several regions publishing into one PostgreSQL catalog and one bucket at once, as real `kanda publish` processes.

A publication must hold every region either whole (as that region's store has it) or not at all, in every rollup,
whatever runs at the same time: other publishes, readers, or a database that ends the publish lock's session.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from kanda.analyst.snapshot import refresh_snapshot
from kanda.central.catalog import PUBLISH_LOCK_KEY, open_catalog, publication_rows, read_published
from kanda.central.publication import Publication
from kanda.central.publish import FAULT_ENV, FAULT_GATE_ENV, publish_region
from kanda.regional.ingest import ingest_landing
from kanda.regional.models import ensure_built
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.deploy.conftest import Installation, free_port
from tests.support.files import make_files
from tests.support.postgres import end_sessions
from warehouse_models import PUBLISHED

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def region_host(installation: Installation, tmp_path: Path, code: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A region host with its files ingested and its rollups built, nothing published."""
    settings = installation.host(tmp_path / code.lower(), monkeypatch, KANDA_REGIONS=code)
    make_files(settings, regions=[code], rows=240, days=2)
    ingest_landing(settings, code)
    with open_store(settings, code) as con:
        ensure_built(con)
    return settings


def kanda(installation: Installation, home: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    """`kanda <args>` as its own process on the host whose data folder is `home`."""
    env = {
        **os.environ,
        **installation.environment(home, **extra),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "200",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kanda.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out + err


def stalled_publish(installation: Installation, home: Path, code: str, gate: Path) -> subprocess.Popen[str]:
    """A `kanda publish` of `code` paused between its first two table commits (it holds the publish lock there)
    until `gate` exists, as a host that stalls mid-publish."""
    first = next(iter(PUBLISHED))
    stalled = kanda(
        installation,
        home,
        "publish",
        KANDA_REGIONS=code,
        **{FAULT_ENV: f"publish:after_commit:{first}", FAULT_GATE_ENV: str(gate)},
    )
    while not Path(f"{gate}.waiting").exists():
        assert stalled.poll() is None, finished(stalled)[1][-3000:]
        time.sleep(0.1)
    return stalled


def canonical(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def store_rollups(settings: Settings, code: str) -> dict[str, pa.Table]:
    with open_store(settings, code, read_only=True) as con:
        return {name: canonical(con.sql(f"SELECT * FROM {name}").to_arrow_table()) for name in PUBLISHED}


def regions_in_every_publication(settings: Settings, truth: dict[str, dict[str, pa.Table]]) -> list[set[str]]:
    """The regions each publication holds, oldest first, after checking that it holds each region in every rollup
    exactly as the region's store has it, or in none."""
    catalog = open_catalog(settings)
    held = []
    for row in publication_rows(catalog):
        publication = Publication(
            row["publish_id"], row["region"], row["published_at"], {n: row[f"{n}_snapshot"] for n in PUBLISHED}
        )
        present = set()
        for code, rollups in truth.items():
            found = {}
            for name in PUBLISHED:
                central = read_published(catalog, publication, name)
                got = canonical(central.filter(pc.equal(central["region"], code)))
                found[name] = got.num_rows > 0
                if got.num_rows:
                    want = rollups[name].select(got.column_names)
                    assert got.cast(want.schema).equals(want), (row["publish_id"], code, name)
            assert len(set(found.values())) == 1, f"publication {row['publish_id']} holds {code} in {found}"
            if all(found.values()):
                present.add(code)
        held.append(present)
    return held


def test_regions_publishing_at_once_all_land_whole_and_readers_never_see_half_of_one(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    codes = ["KE", "NG", "EG", "GH"]
    hosts = {code: region_host(installation, tmp_path, code, monkeypatch) for code in codes}
    truth = {code: store_rollups(hosts[code], code) for code in codes}
    central = tmp_path / "central"

    # An analyst on the central host asks for every region's totals over and over while the regions publish.
    stop = tmp_path / "stop-reading"
    reading = (
        "import json, sys, pathlib\n"
        "from kanda.settings import load_settings\n"
        "from kanda.central.query import run_query_rows, NothingPublished\n"
        "settings, stop, answers = load_settings(), pathlib.Path(sys.argv[1]), []\n"
        "sql = ' UNION ALL '.join(f\"SELECT '{t}' AS t, region, count(*) AS n FROM rollups.{t} GROUP BY ALL\""
        " for t in sys.argv[2:])\n"
        "while not stop.exists() or not answers:\n"
        "    try:\n"
        "        answers.append(run_query_rows(settings, sql).rows)\n"
        "    except NothingPublished:\n"
        "        pass\n"
        "print(json.dumps(answers))\n"
    )
    env = {
        **os.environ,
        **installation.environment(central),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    reader = subprocess.Popen(
        [sys.executable, "-c", reading, str(stop), *PUBLISHED], env=env, stdout=subprocess.PIPE, text=True
    )

    publishes = {code: kanda(installation, hosts[code].home, "publish", KANDA_REGIONS=code) for code in codes}
    for code, process in publishes.items():
        code_, output = finished(process)
        assert code_ == 0 and f"{code}: published" in output, output[-3000:]
    stop.touch()
    answers, _ = reader.communicate(timeout=600)
    assert reader.returncode == 0

    held = regions_in_every_publication(hosts["KE"], truth)
    assert len(held) == len(codes) and held[-1] == set(codes)  # none lost, the newest holds them all
    assert all(earlier <= later for earlier, later in itertools.pairwise(held))
    rows_of = {code: {name: truth[code][name].num_rows for name in PUBLISHED} for code in codes}
    for answer in json.loads(answers):
        seen: dict[str, dict[str, int]] = {}
        for table, region, count in answer:
            seen.setdefault(region, {})[table] = count
        for region, counts in seen.items():
            assert counts == rows_of[region], f"a reader saw half of {region}'s publication: {counts}"


def test_a_publish_that_lost_its_lock_to_the_database_fails_instead_of_publishing_a_mix(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The database ends the session holding the publish lock (a restart, an administrator ending idle sessions)
    while KE's publish is between two table commits; NG then takes the lock, rolls KE's commit back and publishes.
    KE, going on, used to commit its other tables on top of NG's and publish: the newest publication, the one every
    reader reads, then held NG in some rollups and not in others, and nothing flagged it."""
    codes = ["EG", "KE", "NG"]
    hosts = {code: region_host(installation, tmp_path, code, monkeypatch) for code in codes}
    truth = {code: store_rollups(hosts[code], code) for code in codes}
    assert publish_region(installation.host(hosts["EG"].home, monkeypatch, KANDA_REGIONS="EG"), "EG").published

    gate = tmp_path / "gate"
    stalled = stalled_publish(installation, hosts["KE"].home, "KE", gate)
    assert end_sessions(installation.catalog_url, holding_lock=PUBLISH_LOCK_KEY) == [True]  # the lock's, only it

    assert publish_region(installation.host(hosts["NG"].home, monkeypatch, KANDA_REGIONS="NG"), "NG").published
    gate.touch()
    code, output = finished(stalled)

    assert code == 1 and "PublishConflict" in output and "Traceback" not in output, output[-3000:]
    assert "publish the region again" in output
    assert regions_in_every_publication(hosts["NG"], truth)[-1] == {"EG", "NG"}

    # KE's days stayed dirty: its next publish sends them, on top of NG's publication
    again = publish_region(installation.host(hosts["KE"].home, monkeypatch, KANDA_REGIONS="KE"), "KE")
    assert again.published and len(again.days) == truth["KE"]["region_daily"].num_rows
    assert regions_in_every_publication(hosts["KE"], truth)[-1] == set(codes)


def test_the_catalog_database_out_of_reach_or_restarting_mid_publish_costs_no_day_and_doubles_none(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """PostgreSQL out of reach: the publish says which database failed and what to do, in place of SQLAlchemy's
    statement dump, and the region's days stay dirty. PostgreSQL then ending every session of a publish between two
    table commits (as a restart does): the publish goes on on new connections, and each day is published once."""
    codes = ["EG", "KE"]
    hosts = {code: region_host(installation, tmp_path, code, monkeypatch) for code in codes}
    truth = {code: store_rollups(hosts[code], code) for code in codes}
    assert publish_region(installation.host(hosts["EG"].home, monkeypatch, KANDA_REGIONS="EG"), "EG").published

    closed = installation.catalog_url.replace(":5432/", f":{free_port()}/")
    code, output = finished(
        kanda(installation, hosts["KE"].home, "publish", KANDA_REGIONS="KE", KANDA_CATALOG_URL=closed)
    )
    assert code == 1 and "KE: FAILED: CatalogFailed: KE: the catalog database" in output, output[-3000:]
    assert "publish again once the database answers" in output
    assert "[SQL:" not in output and "Traceback" not in output, output[-3000:]

    gate = tmp_path / "gate"
    stalled = stalled_publish(installation, hosts["KE"].home, "KE", gate)
    ended = end_sessions(installation.catalog_url)
    assert ended and all(ended)
    gate.touch()
    code, output = finished(stalled)
    assert code == 0 and "KE: published" in output, output[-3000:]
    assert regions_in_every_publication(hosts["EG"], truth)[-1] == set(codes)
    assert not publish_region(installation.host(hosts["KE"].home, monkeypatch, KANDA_REGIONS="KE"), "KE").published


def test_a_process_that_publishes_again_and_again_keeps_no_catalog_connection_open(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`kanda serve` publishes and refreshes the BI snapshot in its own process each time a steward's fixes are
    reprocessed. Each publish and each refresh opened a catalog whose connection stayed open until the garbage
    collector happened to free it, one more each time, towards the server's `max_connections`; a publish now leaves
    none open, and refreshes only the readers' one cached catalog, whatever the collector does."""
    settings = region_host(installation, tmp_path, "KE", monkeypatch)
    engine = sqlalchemy.create_engine(installation.catalog_url, poolclass=NullPool)

    def open_connections() -> int:
        with engine.connect() as conn:
            return conn.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()

    gc.disable()  # as between two of a long-lived process's rare full collections
    try:
        for all_days in (False, True, False):
            publish_region(settings, "KE", all_days=all_days)
            assert open_connections() == 0
        after_refresh = []
        for _ in range(3):
            publish_region(settings, "KE", all_days=True)
            refresh_snapshot(settings)
            after_refresh.append(open_connections())
        assert after_refresh == after_refresh[:1] * 3, after_refresh
    finally:
        gc.enable()
        engine.dispose()
