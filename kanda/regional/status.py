"""`kanda status`: what each regional store holds, in numbers a person can check against their files."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kanda.regional.store import open_store, store_exists
from kanda.settings import Settings
from regions import all_regions


@dataclass
class RegionStatus:
    region: str
    files: int
    rejected_files: int
    events: int
    quarantine_open: int
    quarantine_held: int
    released: int
    unpublished_days: int
    last_publish: str | None


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
    return [region_status(settings, code) for code in all_regions() if store_exists(settings, code)]


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
