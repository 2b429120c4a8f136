"""A one-shot `kanda query` imports only what answering needs, and still sees every new publication.

Start-up time is the bench's business (`bench/query.py --startup`); this proves the cause: the libraries that made
it slow (pandera and pandas through the CLI's error handler, polars for printing, pyiceberg for finding the newest
publication) are not imported at all when the newest publication's reader file is built.
"""

from __future__ import annotations

import os
import subprocess
import sys

from kanda.central.query import run_query
from kanda.settings import Settings
from tests.support.analyst import publish_regions

NOT_NEEDED = ("pandera", "pandas", "great_expectations", "dagster", "fastapi", "polars", "pyiceberg", "regions.spec")
SQL = "select region, count(*) as days from rollups.region_daily group by 1 order by 1"


def kanda_query(settings: Settings, *args: str) -> tuple[str, set[str]]:
    """`kanda query ARGS` in a fresh interpreter: what it printed, and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kanda.cli", "query", *args],
        env={**os.environ, "KANDA_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done.stdout, modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_kanda_query_imports_only_what_it_needs(published: Settings):
    run_query(published, "select 1")  # the newest publication's reader file is built (as the first query does)
    shown, modules = kanda_query(published, SQL)
    assert all(code in shown for code in ("EG", "KE", "NG"))
    assert "duckdb" in top_level(modules)
    assert not top_level(modules) & set(NOT_NEEDED), sorted(top_level(modules) & set(NOT_NEEDED))

    as_json, modules = kanda_query(published, "--format", "json", SQL)
    assert '"region": "EG"' in as_json and not top_level(modules) & set(NOT_NEEDED)


def test_a_new_publication_is_seen_by_the_next_kanda_query(settings: Settings):
    publish_regions(settings, ["EG"], rows=200, days=2)
    first, _ = kanda_query(settings, SQL)
    assert "EG" in first and "KE" not in first
    fast, modules = kanda_query(settings, SQL)
    assert fast == first and "pyiceberg" not in top_level(modules)

    publish_regions(settings, ["KE"], rows=200, days=2)
    after, modules = kanda_query(settings, SQL)
    assert "EG" in after and "KE" in after  # the newest publication, found the slow way once
    again, modules = kanda_query(settings, SQL)
    assert again == after and "pyiceberg" not in top_level(modules)
