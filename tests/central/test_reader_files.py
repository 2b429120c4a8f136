"""The read-only file behind every analyst reader: one per publication, built once, bounded in number, rebuilt when
an old one is asked for again, and written aside so that nobody ever opens half of one."""

from __future__ import annotations

import shutil
import stat

import duckdb
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


def _as_from_object_storage(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The build as on a host whose warehouse is a bucket: no local file to read in place, every rollup streamed."""
    from collections import OrderedDict

    from kanda.central import catalog, query

    monkeypatch.setattr(catalog, "published_files", lambda *args, **kwargs: None)
    monkeypatch.setattr(catalog, "FILES_AT_ONCE", 1)  # one file per round: every table takes several rounds
    monkeypatch.setattr(query, "_FILES", OrderedDict())  # forget the local files found before
    shutil.rmtree(readers_dir(settings), ignore_errors=True)


def test_rollups_streamed_from_the_warehouse_answer_as_the_files_read_in_place(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    publish_regions(settings, ["KE", "NG"], rows=150, days=2)
    every_row = "SELECT * FROM rollups.{} ORDER BY ALL"
    tables = ("creator_daily", "product_daily", "region_daily", "channel_daily")
    in_place = {t: run_query(settings, every_row.format(t)).to_pylist() for t in tables}
    _as_from_object_storage(monkeypatch, settings)
    streamed = {t: run_query(settings, every_row.format(t)).to_pylist() for t in tables}
    assert streamed == in_place and all(in_place.values())


def test_a_stream_read_twice_is_an_error_not_an_empty_table(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """A streamed rollup can be read once. The build relies on DuckDB refusing a second scan: an empty second read
    would write a publication with its rows silently missing."""
    from kanda.central import query

    publish_regions(settings, ["KE"], rows=150, days=2)
    _as_from_object_storage(monkeypatch, settings)
    write = query.write_publication

    def reads_first(source: duckdb.DuckDBPyConnection, *args: object, **kwargs: object) -> None:
        source.sql("SELECT count(*) FROM rollups.creator_daily").fetchall()
        return write(source, *args, **kwargs)

    monkeypatch.setattr(query, "write_publication", reads_first)
    with pytest.raises(duckdb.InvalidInputException, match="already been consumed"):
        run_query(settings, "SELECT count(*) FROM rollups.creator_daily")
