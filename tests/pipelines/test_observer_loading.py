"""The CLI's Dagster observer is loaded when a step first changes something, not when a command starts.

A `kanda ingest` with no waiting files took 5 s, most of it importing Dagster (for an observer it never told) and
pyiceberg (for a publish it never ran). It must now import neither, and a run that does change something must
still reach the Dagster instance under the same home, as it did when the observer was loaded up front.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from kanda.settings import Settings
from tests.support.files import make_files

#: `kanda.cli.main` with the command line given, then the top-level packages it imported, one per line.
MAIN = """
import sys
from kanda.cli import main
sys.argv = ["kanda", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("\\n".join(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def kanda(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_")}
    done = subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        env={**env, "KANDA_HOME": str(home), "KANDA_BUYER_SALT": "test-salt", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, set(done.stderr.split())


def test_an_ingest_with_nothing_waiting_imports_neither_dagster_nor_pyiceberg(settings: Settings):
    done, modules = kanda(settings.home, "ingest", "-r", "KE")
    assert "no files waiting" in done.stdout, done.stdout + done.stderr[-2000:]
    assert not {"dagster", "pyiceberg", "pipelines"} & modules, sorted({"dagster", "pyiceberg", "pipelines"} & modules)


def test_an_ingest_that_loads_rows_is_recorded_in_the_dagster_instance(settings: Settings):
    from pipelines.instance import kanda_instance

    make_files(settings, regions=["KE"], rows=30)
    done, modules = kanda(settings.home, "ingest", "-r", "KE")
    assert "dagster" in modules, done.stdout + done.stderr[-2000:]
    instance = kanda_instance(settings.home.resolve())
    assert instance.get_materialized_partitions(AssetKey("regional_sales")) == {"KE"}
    assert instance.get_materialized_partitions(AssetKey("regional_rollups")) == set()  # `ingest` built nothing
