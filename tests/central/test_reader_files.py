"""The read-only file behind every analyst reader: one per publication, built once, bounded in number, rebuilt when
an old one is asked for again, and written aside so that nobody ever opens half of one."""

from __future__ import annotations

import stat

import pytest

from kanda.central import reader_files
from kanda.central.query import publication_history, run_query
from kanda.central.reader_files import reader_path, readers_dir
from kanda.settings import Settings
from tests.support.analyst import publish_regions

TOTALS = "select region, sum(net_minor) as net from rollups.creator_daily group by 1 order by 1"


def test_one_file_per_publication_kept_to_a_bound_and_rebuilt_on_demand(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(reader_files, "KEEP", 2)
    publish_regions(settings, ["EG", "KE", "NG"], rows=100, days=1)
    ids = [row["publish_id"] for row in publication_history(settings)]
    answers = {publish_id: run_query(settings, TOTALS, as_of=publish_id).to_pylist() for publish_id in ids}
    assert [len(answers[i]) for i in ids] == [1, 2, 3]  # each publication adds its region

    kept = sorted(p.parent.name for p in readers_dir(settings).glob("*/rollups.duckdb"))
    assert kept == sorted(ids[1:])  # the oldest was removed when the third was built
    newest = reader_path(settings, ids[-1])
    assert stat.S_IMODE(newest.stat().st_mode) == 0o444
    assert not [p for p in readers_dir(settings).rglob("*") if p.name.endswith(".tmp")]

    built = newest.stat().st_mtime_ns
    assert run_query(settings, TOTALS).to_pylist() == answers[ids[-1]]
    assert newest.stat().st_mtime_ns == built  # a publication never changes: its file is not rebuilt
    assert run_query(settings, TOTALS, as_of=ids[0]).to_pylist() == answers[ids[0]]  # rebuilt on demand
    assert reader_path(settings, ids[0]).exists()


def test_a_publish_id_that_is_not_a_file_name_is_refused(settings: Settings):
    with pytest.raises(ValueError, match="cannot name a file"):
        reader_path(settings, "../../etc")
