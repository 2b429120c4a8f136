"""One writer per regional store, and publishes from several regions at once, in real separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kanda.checks.verify import verify
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import make_files
from tests.support.spill import killed_while_spilling


def kanda(*args: str) -> subprocess.Popen[str]:
    """The console script's code path in a child process (sys.executable, so the test venv is used)."""
    code = "import sys; from kanda.cli import app; sys.argv = ['kanda', *sys.argv[1:]]; app()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_writer_waits_for_the_first(settings: Settings):
    make_files(settings, regions=["TZ"], rows=300)
    with open_store(settings, "TZ") as con:  # this process is the writer now
        child = kanda("ingest", "-r", "TZ", "--json")
        time.sleep(3)
        assert child.poll() is None, "the second writer must wait, not open the store"
        con.execute("SELECT 1")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    (result,) = json.loads(out)["files"]
    assert result["status"] == "loaded"


def test_regions_publish_at_the_same_time_and_every_publish_is_complete(settings: Settings):
    regions = ["EG", "KE", "NG"]
    make_files(settings, regions=regions, rows=300)
    for code in regions:
        ingest_landing(settings, code)
    children = [kanda("publish", "-r", code) for code in regions]
    for child in children:
        _, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
    results = verify(settings)
    assert all(r.passed for r in results if r.name == "reconciliation"), [r.message for r in results]
    assert {r.message.split(":")[0] for r in results if r.name == "reconciliation"} == set(regions)


def test_a_killed_run_s_spill_files_are_removed_when_the_store_is_next_opened(settings: Settings):
    """A run killed while DuckDB spilled a sort or a dedupe beside the store left its files for good: the next
    open of the store (under its lock, so no other process of kanda has it open) removes them."""
    make_files(settings, regions=["KE"], rows=50)
    ingest_landing(settings, "KE")
    left = killed_while_spilling(settings.store_path("KE"))
    assert left
    with open_store(settings, "KE", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0] > 0
    assert not any(p.exists() for p in left)
