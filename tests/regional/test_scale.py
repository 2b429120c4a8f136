"""Scale: a file four times larger must not need more memory to speak of (ingestion streams in bounded chunks).

Each ingest runs in a fresh process so that its peak resident memory is its own. Marked slow: it generates and
ingests a few million rows; CI runs it, `pytest -m 'not slow'` skips it locally.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanda.settings import load_settings
from regions.rails.base import DEFAULT_BATCH_ROWS
from regions.synthetic.core import DirtMix
from regions.synthetic.generate import generate

#: Past a million rows the chunks and DuckDB's ingest limit are what bound memory; four times the data must not add
#: half as much memory again, and the peak stays within the budget. Four, not three: one ingest's peak varies by
#: about 100 MB from run to run (760-862 MB at 1M rows, measured), which a bound of half of three times the data
#: (143 MB) could not tell from growth; 1M -> 4M gave 50-156 MB against 215 MB.
SIZES = (1_000_000, 4_000_000)

INGEST_AND_MEASURE = """
import json, sys
from pathlib import Path
from kanda.regional.ingest import ingest_files
from kanda.settings import load_settings

report = ingest_files(load_settings(), "EG", [Path(sys.argv[1])])
# VmHWM is this process image's own peak: getrusage's ru_maxrss starts from the parent's peak (pytest's, here).
status = Path("/proc/self/status").read_text().splitlines()
peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({"peak_mb": peak_mb, **report.files[0].as_json()}))
"""


def ingest_in_fresh_process(home: Path, path: Path) -> dict:
    # The defaults a user gets: no chunk size or memory limit set (the suite's conftest sets tiny chunks).
    env = {k: v for k, v in os.environ.items() if k not in ("KANDA_BATCH_ROWS", "KANDA_DUCKDB_MEMORY")}
    env = {**env, "KANDA_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", INGEST_AND_MEASURE, str(path)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_does_not_grow_with_file_size(tmp_path: Path):
    results = {}
    for rows in SIZES:
        home = tmp_path / f"home{rows}"
        settings = load_settings(home)
        (generated,) = generate(
            landing_dir=settings.landing_dir,
            registry_dir=settings.registry_dir,
            regions=["EG"],
            start=dt.date(2026, 9, 1),
            days=30,
            rows_per_region=rows,
            seed=5,
            dirt=DirtMix(),
        )
        result = ingest_in_fresh_process(home, generated.path)
        assert result["status"] == "loaded"
        assert result["rows_in"] == rows == result["loaded"] + result["quarantined"] + result["duplicates"]
        results[rows] = {"peak_mb": result["peak_mb"], "file_mb": generated.path.stat().st_size / 2**20}
    small, large = results[SIZES[0]], results[SIZES[-1]]
    data_growth = large["file_mb"] - small["file_mb"]
    memory_growth = large["peak_mb"] - small["peak_mb"]
    # Four times the data (about 430 MB more) costs at most a fraction of that in memory: chunks and DuckDB's
    # ingest limit bound it, not the file.
    assert memory_growth < 0.5 * data_growth, results
    # ... and the whole process stays within the 1.2 GB a regional host is sized for (docs/benchmarks.md).
    assert large["peak_mb"] < PEAK_BUDGET_MB, results


#: The resident memory one ingest may use at any file size with the default settings.
PEAK_BUDGET_MB = 1200


def test_the_settings_default_chunk_is_the_readers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`KANDA_BATCH_ROWS` unset means the chunk size the memory budget above was measured with."""
    monkeypatch.delenv("KANDA_BATCH_ROWS", raising=False)
    assert load_settings(tmp_path).batch_rows == DEFAULT_BATCH_ROWS
