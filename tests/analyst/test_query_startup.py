"""A one-shot `kanda query` imports only what answering needs, answers as the Typer command does, and still sees
every new publication.

Start-up time is the bench's business (`bench/query.py --startup`); this proves the cause: the libraries that made
it slow are not imported at all when the newest publication's reader file is built: pandera and pandas (the CLI's
error handler), polars (printing), pyiceberg (finding the newest publication), pyarrow and numpy (printing from
Arrow), pydantic-settings (reading KANDA_*), typer and click (building every command), the region configs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kanda.central.query import run_query
from kanda.cli import app
from kanda.cli.query import _json_value
from kanda.settings import Settings
from tests.support.analyst import publish_regions
from warehouse_models import published as rollups

NOT_NEEDED = (
    "pandera",
    "pandas",
    "great_expectations",
    "dagster",
    "fastapi",
    "polars",
    "pyiceberg",
    "pyarrow",
    "numpy",
    "pydantic",
    "pydantic_settings",
    "typer",
    "click",
    "regions",  # the region configs (YAML, and the rail-spec models through pydantic)
    "filelock",  # only a reader file's build takes the lock
)
SQL = "select region, count(*) as days from rollups.region_daily group by 1 order by 1"


def kanda_query(settings: Settings, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`kanda query ARGS` in a fresh interpreter, as the console script runs it: what it did, and every module it
    imported (the `-X importtime` lines are taken out of its stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kanda.cli", "query", *args],
        env={**os.environ, "KANDA_HOME": str(settings.home), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.splitlines(keepends=True)
    modules = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    done.stderr = "".join(line for line in lines if not line.startswith("import time:"))
    return done, modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_kanda_query_imports_only_what_it_needs(published: Settings):
    run_query(published, "select 1")  # the newest publication's reader file is built (as the first query does)
    for args in ([SQL], ["--format", "json", SQL], ["--explain", SQL], ["--history"]):
        done, modules = kanda_query(published, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "duckdb" in top_level(modules)
        assert not top_level(modules) & set(NOT_NEEDED), (args, sorted(top_level(modules) & set(NOT_NEEDED)))
        assert "rich.progress" not in modules
    shown, _ = kanda_query(published, SQL)
    assert all(code in shown.stdout for code in ("EG", "KE", "NG"))


QUESTIONS = [
    [SQL],
    ["--format", "json", "select * from rollups.region_daily order by all"],
    ["select * from rollups.publications order by published_at", "-f", "json"],
    ["select * from rollups.publications order by published_at"],
    ["--history"],
    ["--explain", SQL],
    ["--format", "csv", SQL],
    [SQL, "--as-of", "no-such-publication"],
    ["drop table rollups.region_daily"],
    ["select nothing from rollups.region_daily"],
    ["select 1", "--format", "xml"],
    [""],
]


@pytest.mark.parametrize("args", QUESTIONS, ids=[" ".join(args)[:40] for args in QUESTIONS])
def test_the_console_script_answers_as_the_typer_command_does(published: Settings, args: list[str]):
    run_query(published, "select 1")
    quick, modules = kanda_query(published, *args)
    assert "typer" not in top_level(modules)  # answered without building the Typer app
    typer = CliRunner().invoke(app, ["query", *args])
    assert (quick.returncode, quick.stdout, quick.stderr) == (typer.exit_code, typer.stdout, typer.stderr)


def test_the_rollups_print_the_values_arrow_gave(published: Settings):
    """Printed from DuckDB's Python rows now, not from Arrow: every column of every rollup reads the same."""
    run_query(published, "select 1")
    for name in [*rollups(), "publications"]:
        sql = f"select * from rollups.{name} order by all"
        done, _ = kanda_query(published, "--format", "json", sql)
        assert done.returncode == 0, done.stderr[-3000:]
        arrow = json.loads(json.dumps(run_query(published, sql).to_pylist(), default=_json_value))
        assert json.loads(done.stdout) == arrow, name
        assert len(arrow) > 0, name


def test_typer_still_answers_what_the_quick_path_leaves_to_it(published: Settings):
    run_query(published, "select 1")
    spelled, modules = kanda_query(published, "--format=json", SQL)  # a form only Click reads
    assert spelled.returncode == 0 and json.loads(spelled.stdout)[0]["region"] == "EG"
    assert "typer" in top_level(modules)
    extra, _ = kanda_query(published, SQL, "extra")
    assert extra.returncode == 2 and "Usage:" in extra.stderr and "unexpected extra argument" in extra.stderr
    helped, _ = kanda_query(published, "--help")
    assert helped.returncode == 0 and "--as-of" in helped.stdout


def test_a_bad_setting_is_one_error_line_on_the_quick_path(published: Settings):
    done, modules = kanda_query(published, SQL, KANDA_LOCK_WAIT="soon")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: KANDA_LOCK_WAIT='soon': Input should be a valid number, unable to parse string as a number"
    ]
    assert "typer" not in top_level(modules)


def test_a_new_publication_is_seen_by_the_next_kanda_query(settings: Settings):
    publish_regions(settings, ["EG"], rows=200, days=2)
    first, _ = kanda_query(settings, SQL)
    assert "EG" in first.stdout and "KE" not in first.stdout
    fast, modules = kanda_query(settings, SQL)
    assert fast.stdout == first.stdout and "pyiceberg" not in top_level(modules)

    publish_regions(settings, ["KE"], rows=200, days=2)
    after, modules = kanda_query(settings, SQL)
    assert "EG" in after.stdout and "KE" in after.stdout  # the newest publication, found the slow way once
    again, modules = kanda_query(settings, SQL)
    assert again.stdout == after.stdout and "pyiceberg" not in top_level(modules)
