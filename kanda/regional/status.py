"""`kanda status`: what each regional store holds, in numbers a person can check against their files.

A store that cannot be read (a corrupted or truncated file) is a row marked broken with its cause, not the end
of the listing: the healthy regions are still shown, so one bad file never hides the state of the others. A store
that another run holds past the lock wait is a row marked busy (nothing is wrong with it), again not the end.

`RegionFailure` is how every command over many regions (status, verify, reports, expectations, review enqueue)
names a region it could not read, busy or broken, while it goes on with the others (docs/reliability.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kanda.regional.store import StoreBusy, open_store, store_exists
from kanda.settings import Settings
from regions import all_regions, unavailable_regions


@dataclass
class RegionStatus:
    region: str
    files: int = 0
    rejected_files: int = 0
    events: int = 0
    quarantine_open: int = 0
    quarantine_held: int = 0
    released: int = 0
    #: quarantined rows a steward rejected: still quarantined, never loaded (the rows' own count, not files')
    quarantine_rejected: int = 0
    unpublished_days: int = 0
    last_publish: str | None = None
    error: str | None = None  # the store could not be read: why (the counts above are then unknown, left at 0)
    busy: bool = False  # with `error`: another run held the store past the wait; nothing is wrong with it

    @property
    def broken(self) -> bool:
        return self.error is not None and not self.busy


def region_status(settings: Settings, code: str) -> RegionStatus:
    with open_store(settings, code, read_only=True) as con:
        files = con.execute("SELECT count(*) FROM ledger WHERE kind = 'file'").fetchall()[0][0]
        rejected = con.execute("SELECT count(*) FROM rejected_files").fetchall()[0][0]
        events = con.execute("SELECT count(*) FROM sale_events").fetchall()[0][0]
        q_open, q_held, q_released, q_rejected = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'held'),"
            " count(*) FILTER (WHERE status = 'released'), count(*) FILTER (WHERE status = 'rejected') FROM quarantine"
        ).fetchall()[0]
        dirty = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
        last = con.execute("SELECT max(published_at) FROM publish_log").fetchall()[0][0]
    return RegionStatus(
        code,
        files=files,
        rejected_files=rejected,
        events=events,
        quarantine_open=q_open,
        quarantine_held=q_held,
        released=q_released,
        quarantine_rejected=q_rejected,
        unpublished_days=dirty,
        last_publish=last.isoformat(timespec="seconds") if last else None,
    )


def all_status(settings: Settings) -> list[RegionStatus]:
    """Every region with a store; a store that cannot be read is a broken row, and the others are still read.

    A busy store is not broken: `StoreBusy` (raised after the usual wait for the lock) makes a row marked busy,
    with the cause, and the other regions are still read. (It used to end the whole listing, which hid the state of
    every healthy region behind one long-running writer.)
    """
    rows = []
    for code, reason in unavailable_regions().items():
        # a store here whose region file did not load: it was left out of the listing, as if all were well
        if settings.serves(code) and settings.store_path(code).exists():
            rows.append(RegionStatus(code, error=f"its region file did not load: {' '.join(reason.split())}"))
    for code in all_regions():
        if not store_exists(settings, code):
            continue
        try:
            rows.append(region_status(settings, code))
        except Exception as exc:  # isolation: name this region and its cause, go on with the healthy ones
            rows.append(RegionStatus(code, error=failure_cause(exc), busy=isinstance(exc, StoreBusy)))
    return rows


def failure_cause(exc: BaseException) -> str:
    """One line naming what went wrong, e.g. `IOException: IO Error: ... not a valid DuckDB database file!`."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@dataclass(frozen=True)
class RegionFailure:
    """A region that a command over many regions could not do, and why; the other regions were still done.

    `busy`: another run held the region's store past the lock wait (`StoreBusy`). Nothing is wrong with the store:
    running the command again once that run has finished does the region. Otherwise `cause` names what failed.
    """

    region: str
    cause: str  # one line, `failure_cause`
    busy: bool = False

    @classmethod
    def of(cls, region: str, exc: BaseException) -> RegionFailure:
        return cls(region, failure_cause(exc), isinstance(exc, StoreBusy))

    @property
    def label(self) -> str:
        return "BUSY" if self.busy else "FAILED"

    def line(self) -> str:
        """What a command prints for the region, in the style of `kanda publish`: `NG: FAILED: IOException: ...`,
        or `NG: BUSY: StoreBusy: the NG store is busy (...); try again when that run has finished`."""
        return f"{self.region}: {self.label}: {self.cause}" + (
            "; try again when that run has finished" if self.busy else ""
        )

    def as_json(self) -> dict[str, str | bool]:
        return {"region": self.region, "error": self.cause, "busy": self.busy}


#: What a quarantined row's `status` can be: `open` (waiting for review), `held` (waiting for something, e.g. its
#: creator to be onboarded), `released` (loaded after all), `rejected` (a steward rejected it for good).
QUARANTINE_STATUSES = ("open", "held", "released", "rejected")


def quarantine_rows(settings: Settings, code: str, *, status: str | None = None, limit: int = 20) -> list[dict]:
    """Quarantined rows with their reasons decoded, newest first; `status` one of `QUARANTINE_STATUSES` (any case).

    An unknown status is refused (ValueError) rather than answered with an empty list, which would read as "nothing
    in quarantine"."""
    if status is not None:
        if status.lower() not in QUARANTINE_STATUSES:
            raise ValueError(f"unknown quarantine status {status!r}; the statuses are {', '.join(QUARANTINE_STATUSES)}")
        status = status.lower()
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
