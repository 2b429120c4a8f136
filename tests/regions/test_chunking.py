"""Every region's rail reads a file of a real size the same whatever the chunk size, and ingests it balanced.

The other adapter tests read small files in chunks of a few hundred rows, where nothing that depends on the size of
a chunk can show. An ingest reads `DEFAULT_BATCH_ROWS` (100,000) rows per chunk, mapped as two slices at once:
polars 2.1 fails filtering 20,000 rows or more by a literal predicate (an ignore rule on an optional column the
file lacks), which stopped every real-sized Stripe export with a traceback while every test passed. 50,000 rows
gives slices of 25,000, past that threshold; the reference reads the same file in chunks of 2,000.
"""

from __future__ import annotations

import dataclasses

import pytest
from polars.testing import assert_frame_equal

from kanda.regional.ingest import ingest_files
from kanda.settings import Settings
from regions import all_regions, get_region
from regions.rails import get_adapter
from regions.rails.base import DEFAULT_BATCH_ROWS
from regions.synthetic.core import DirtMix
from tests.support.files import make_files
from tests.support.roundtrip import read_all

ROWS = 50_000
SMALL_CHUNKS = 2_000


@pytest.mark.parametrize("code", sorted(all_regions()))
def test_a_real_sized_file_reads_the_same_in_any_chunk_size_and_ingests_balanced(code: str, settings: Settings) -> None:
    region = get_region(code)
    (generated,) = make_files(settings, regions=[code], rows=ROWS, days=5, dirt=DirtMix().scaled(3))
    adapter = get_adapter(region.source_format)

    small, small_ignored = read_all(adapter, generated.path, region, batch_rows=SMALL_CHUNKS)
    whole, whole_ignored = read_all(adapter, generated.path, region, batch_rows=DEFAULT_BATCH_ROWS)
    assert small.height >= ROWS * 0.9
    # every column, the raw record included, in the same row order; and the same lines ignored
    assert_frame_equal(whole, small)
    assert whole_ignored == small_ignored

    real_size = dataclasses.replace(settings, batch_rows=DEFAULT_BATCH_ROWS)
    (result,) = ingest_files(real_size, code, [generated.path]).files
    assert (result.status, result.reason) == ("loaded", None)
    assert result.rows_in + result.ignored == whole.height + whole_ignored
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates
    assert result.loaded > ROWS * 0.8
    assert min(result.quarantined, result.duplicates) > 0  # the dirt reached both
