"""A smoke run of `bench.ingest --history` at a tiny scale: the file it measures holds only new sales (nothing is
timed; the bench reports speed, the tests only that it measures what it says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import ingest as bench_ingest


@pytest.mark.slow
def test_bench_ingests_a_file_of_new_sales_onto_a_store_with_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bench_ingest, "OUT", tmp_path)
    common = ["--region", "EG", "--rows", "3000", "--runs", "1", "--only", "kanda"]

    alone = bench_ingest.main(common)
    onto = bench_ingest.main([*common, "--history", "5000"])

    history = onto["history_counts"]
    assert history["rows_in"] == 5000 and history["loaded"] > 4000
    # the measured file's transactions follow the history's: none of its events is already stored, so it loads
    # exactly as it does into an empty store (a file of later transactions is named apart from the first one)
    measured, alone_counts = dict(onto["kanda_counts"]), dict(alone["kanda_counts"])
    assert measured.pop("file").endswith("_after5000.csv") and not alone_counts.pop("file").endswith("_after5000.csv")
    assert measured == alone_counts
    assert alone["kanda_counts"]["loaded"] > 2500
    assert (tmp_path / "ingest_eg_3000_onto5000.json").exists()
