"""The ingest's read-ahead: the reader starts at once (so hashing the file overlaps it) and always stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kanda.regional.ingest import Prefetched
from regions.rails import FileRejected


def _counting(n: int, started: threading.Event) -> Iterator[int]:
    started.set()
    yield from range(n)


def test_the_reader_starts_before_the_first_chunk_is_asked_for():
    started = threading.Event()
    with Prefetched(_counting(3, started)) as chunks:
        assert started.wait(timeout=10)
        assert list(chunks) == [0, 1, 2]


def test_leaving_without_reading_stops_the_reader():
    """An already-ingested file leaves the block at once: the reader, blocked on its full queue, must not hang."""
    before = {t.ident for t in threading.enumerate()}
    with Prefetched(iter(range(1_000_000))):
        pass
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "kanda-ingest-reader"]


def test_a_rejection_in_the_reader_reaches_the_caller_after_the_good_chunks():
    def failing() -> Iterator[int]:
        yield 1
        raise FileRejected("the file ends in the middle of a record", "truncated")

    with Prefetched(failing()) as chunks:
        assert next(chunks) == 1
        with pytest.raises(FileRejected, match="middle of a record"):
            next(chunks)
        assert list(chunks) == []
