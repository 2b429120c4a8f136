"""A smoke run of `bench.query` at a tiny scale: it builds, publishes, snapshots and measures (nothing is timed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import query as bench_query


@pytest.mark.slow
def test_bench_query_runs_end_to_end_and_rollups_answer_like_raw_sales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the bench points KANDA_HOME at its own installation; these make sure the test's environment is restored
    monkeypatch.setenv("KANDA_HOME", str(tmp_path / "unused"))
    monkeypatch.setenv("KANDA_DUCKDB_MEMORY", "1GB")
    monkeypatch.setenv("KANDA_BUYER_SALT", "test-salt")

    args = ["--sales", "3000", "--runs", "3", "--days", "10", "--creators", "50", "--out", str(tmp_path)]
    (result,) = bench_query.main(args)["results"]

    assert result["raw_sales"] == 3000 and result["raw_events"] > 3000  # refunds and reversals come on top
    assert all(result["rollup_rows"].values())
    assert result["snapshot_file_bytes"] > 0
    compared = [q for q in result["queries"] if "raw" in q]
    assert len(compared) == 4 and all(q["answers_equal"] for q in compared), compared
    assert all(q["rows"] > 0 and q["rollup_bytes_read"] > 0 for q in result["queries"])
    assert json.loads((tmp_path / "query.json").read_text())["results"][0]["raw_sales"] == 3000
