"""A chunk mapped as slices on several threads gives exactly what mapping it whole gives, in every format."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import regions.parsing
from kanda.settings import Settings
from regions import all_regions, get_region
from regions.rails import ReadContext, get_adapter
from tests.support.files import make_files


def read_all(path: Path, region_code: str, batch_rows: int) -> tuple[pl.DataFrame, int]:
    region = get_region(region_code)
    ctx = ReadContext(region=region, salt="test-salt", batch_rows=batch_rows)
    chunks = list(get_adapter(region.source_format).read(path, ctx))
    return pl.concat([c.frame for c in chunks]), sum(c.ignored for c in chunks)


@pytest.mark.parametrize("region_code", sorted(all_regions()))
def test_slices_mapped_apart_equal_the_whole_chunk(
    region_code: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (generated,) = make_files(settings, regions=[region_code], rows=500)
    # 37-row chunks cut into uneven slices (19 and 18 rows), ending mid-way through the dirt and the fan-out
    sliced, sliced_ignored = read_all(generated.path, region_code, batch_rows=37)
    monkeypatch.setattr(regions.parsing, "MAP_WORKERS", 1)
    whole, whole_ignored = read_all(generated.path, region_code, batch_rows=37)
    assert whole.height >= 500
    assert sliced.equals(whole, null_equal=True)
    assert sliced["source_row"].is_sorted()
    assert sliced_ignored == whole_ignored


def test_each_slice_goes_to_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of slicing: the slices are mapped at once, not one after the other on the reader's thread."""
    import threading

    seen: set[str] = set()
    barrier = threading.Barrier(regions.parsing.MAP_WORKERS, timeout=10)

    def map_rows(rows: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        seen.add(threading.current_thread().name)
        barrier.wait()  # only returns once every slice is being mapped at the same time
        return rows, 1

    rows = pl.DataFrame({"source_row": range(1, 11)}).with_columns(pl.col("source_row").cast(pl.Int64))
    monkeypatch.setattr(regions.parsing, "finish", lambda frame: frame)
    with regions.parsing.map_pool() as pool:
        frame, ignored = regions.parsing.map_chunk(pool, map_rows, rows)
    assert frame["source_row"].to_list() == list(range(1, 11))
    assert ignored == regions.parsing.MAP_WORKERS
    assert len(seen) == regions.parsing.MAP_WORKERS
