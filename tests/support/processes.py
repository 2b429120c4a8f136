"""Processes that start at the same moment, as `kanda serve --workers N` starts its workers."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path


def _at_once(open_database: Callable[[str], object], url: str, barrier, answers) -> None:
    barrier.wait()  # every process at once
    try:
        open_database(url)
        answers.put("")
    except Exception as exc:  # the answer is what the test looks at
        answers.put(f"{type(exc).__name__}: {exc}")


def open_at_once(open_database: Callable[[str], object], folder: Path, *, processes: int, trials: int) -> list[str]:
    """`open_database(url)` in `processes` forked processes at once, on a fresh SQLite database per trial; the
    failures, as "ErrorType: message"."""
    context = multiprocessing.get_context("fork")
    failures: list[str] = []
    for trial in range(trials):
        url = f"sqlite:///{folder / f'app{trial}.db'}"
        barrier, answers = context.Barrier(processes), context.Queue()
        workers = [
            context.Process(target=_at_once, args=(open_database, url, barrier, answers)) for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        failures += [a for a in (answers.get(timeout=10) for _ in workers) if a]
    return failures
