"""`kanda status`: what each regional store holds, in numbers a person can check against their files.

A store that cannot be read (a corrupted or truncated file) is a row marked broken with its cause, not the end
of the listing: the healthy regions are still shown, so one bad file never hides the state of the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kanda.regional.store import StoreBusy, open_store, store_exists
from kanda.settings import Settings
from regions import all_regions


@dataclass
class RegionStatus:
    region: str
    files: int = 0
    rejected_files: int = 0
    events: int = 0
    quarantine_open: int = 0
    quarantine_held: int = 0
    released: int = 0
    unpublished_days: int = 0
    last_publish: str | None = None
    error: str | None = None  # the store could not be read: why (the counts above are then unknown, left at 0)

    @property
    def broken(self) -> bool:
        return self.error is not None


def region_status(settings: Settings, code: str) -> RegionStatus:
    with open_store(settings, code, read_only=True) as con:
        files = con.execute("SELECT count(*) FROM ledger WHERE kind = 'file'").fetchall()[0][0]
        rejected = con.execute("SELECT count(*) FROM rejected_files").fetchall()[0][0]
        events = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
        q_open, q_held, q_released = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'held'),"
            " count(*) FILTER (WHERE status = 'released') FROM quarantine"
        ).fetchall()[0]
        dirty = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
        last = con.execute("SELECT max(published_at) FROM publish_log").fetchall()[0][0]
    return RegionStatus(
        code,
        files,
        rejected,
        events,
        q_open,
        q_held,
        q_released,
        dirty,
        last.isoformat(timespec="seconds") if last else None,
    )


def all_status(settings: Settings) -> list[RegionStatus]:
    """Every region with a store; a store that cannot be read is a broken row, and the others are still read.

    A busy store is not broken: `StoreBusy` (raised after the usual wait for the lock) ends the listing with its
    own message, as before.
    """
    rows = []
    for code in all_regions():
        if not store_exists(settings, code):
            continue
        try:
            rows.append(region_status(settings, code))
        except StoreBusy:
            raise
        except Exception as exc:  # isolation: name this region and its cause, go on with the healthy ones
            rows.append(RegionStatus(code, error=failure_cause(exc)))
    return rows


def failure_cause(exc: BaseException) -> str:
    """One line naming what went wrong, e.g. `IOException: IO Error: ... not a valid DuckDB database file!`."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def quarantine_rows(settings: Settings, code: str, *, status: str | None = None, limit: int = 20) -> list[dict]:
    """Quarantined rows with their reasons decoded, newest first."""
    query = (
        "SELECT source_file, source_row, status, hold, reasons, raw_record, quarantined_at FROM quarantine"
        + (" WHERE status = ?" if status else "")
        + " ORDER BY quarantined_at DESC, source_file, source_row LIMIT ?"
    )
    with open_store(settings, code, read_only=True) as con:
        result = con.execute(query, [status, limit] if status else [limit])
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, values, strict=True)) for values in result.fetchall()]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
    return rows
