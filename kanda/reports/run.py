"""One function for `kanda reports`, the Dagster report assets and the demo: gather, render, deliver, record.

Three modes, chosen by the caller:

- preview (`deliver=False`): every report is rendered to `reports/<region>/<date>/<creator>.eml` for a look; nothing
  is sent and nothing is recorded, so previews never stop the real delivery.
- deliver, no SMTP configured: the outbox, `outbox/<region>/<date>/<creator>.eml`, recorded as delivered.
- deliver with `KANDA_SMTP_HOST`: sent through the relay, recorded as delivered.

Delivered reports are recorded per (region, creator, day); a rerun skips them unless `resend=True`. Creators who
unsubscribed are skipped when delivering (listed, not failed). A creator whose registry name or address could
forge headers (a line break) is refused by name and the others' reports still go out. Likewise a region whose store
cannot be read (corrupted) or is busy (another run holds it past the lock wait) is an outcome naming why, and the
other regions' reports are still written (docs/reliability.md: one region never stops another).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from kanda.regional.status import RegionFailure
from kanda.reports.data import RegionDay, last_closed_day, region_reports
from kanda.reports.delivery import (
    Delivery,
    DeliveryFailed,
    DeliveryLog,
    OutboxTransport,
    RelayUnavailable,
    SmtpTransport,
    message_bytes,
    report_name,
    transport_for,
    write_eml,
)
from kanda.reports.mailing import Mailing, mail_address, recipient_problem
from kanda.reports.model import CreatorReport, Restatement
from kanda.settings import BadSetting, Settings
from regions import all_regions, get_region

logger = logging.getLogger(__name__)

#: Called with (region, reports done, reports to do).
ReportsProgress = Callable[[str, int, int], None]
#: Outbox deliveries are recorded in batches: rewriting the same file after a crash is harmless, a commit per
#: file is not free. SMTP deliveries are recorded one by one, right after the server accepted each.
OUTBOX_RECORD_BATCH = 500
#: Rendering goes to worker processes from this many reports on, in chunks of RENDER_CHUNK; KANDA_REPORT_WORKERS
#: caps the workers (default: one per core).
PARALLEL_FROM = 400
RENDER_CHUNK = 100
RENDER_WORKERS: int | None = None  # read from the environment by `render_workers` (tests set it)


def render_workers() -> int:
    """`KANDA_REPORT_WORKERS` (0 or unset: one per core); read when reports are rendered, so that a value that is
    not a number is one `Error:` line of the command that needs it, not a traceback when the module loads."""
    if RENDER_WORKERS is not None:
        return RENDER_WORKERS
    text = os.environ.get("KANDA_REPORT_WORKERS", "0").strip() or "0"
    if not text.isdigit():
        raise BadSetting(f"KANDA_REPORT_WORKERS must be a whole number of processes (0: one per core), not {text!r}")
    return int(text)


#: How many earlier days a report looks back on for restatements.
RESTATEMENT_DAYS = 7


@dataclass
class RegionOutcome:
    region: str
    local_date: dt.date
    status: str  # ready | not_closed | not_published | no_store | busy | failed
    message: str
    reports: int = 0  # reports gathered (creators with activity, after --creator)
    written: int = 0  # rendered and delivered (or previewed) in this run
    skipped: int = 0  # delivered before: not sent again
    failed: dict[str, str] = field(default_factory=dict)  # creator -> why
    # Skipped, not attempted: the registry's name or address cannot be put in a message safely (creator -> why).
    refused: dict[str, str] = field(default_factory=dict)
    unsubscribed: list[str] = field(default_factory=list)  # skipped: they asked for no more reports (not a failure)
    held_creators: int = 0  # reports of the day that carry a held-records note
    restated: int = 0  # reports that tell of an earlier day's changed figures
    location: str = ""  # the folder written, or the relay
    failure: RegionFailure | None = None  # status busy or failed: the region's store could not be read, and why

    @property
    def ready(self) -> bool:
        return self.status == "ready"


@dataclass
class ReportsSummary:
    mode: str  # preview | outbox | smtp
    regions: list[RegionOutcome]

    @property
    def written(self) -> int:
        return sum(r.written for r in self.regions)

    @property
    def failed(self) -> int:
        return sum(len(r.failed) for r in self.regions)

    @property
    def refused(self) -> int:
        return sum(len(r.refused) for r in self.regions)

    @property
    def ok(self) -> bool:
        """Every region's day was reportable and every report went out (or had gone out before, or its creator
        unsubscribed); a creator refused for an unsafe registry entry makes the run not ok."""
        return all(r.ready for r in self.regions) and not self.failed and not self.refused


def write_reports(
    settings: Settings,
    local_date: dt.date | None = None,
    *,
    regions: list[str] | None = None,
    creators: list[str] | None = None,
    deliver: bool = False,
    resend: bool = False,
    now: dt.datetime | None = None,
    progress: ReportsProgress | None = None,
) -> ReportsSummary:
    """Reports of `local_date` (default: each region's last closed local day) for the regions, or all of them.

    `creators` narrows to those creator ids (a creator id names its region, e.g. `KE-C0001`). A region whose store
    cannot be read or is busy is an outcome with status `failed` or `busy` (and its `failure`); the other regions'
    reports are still written.
    """
    codes = [get_region(c).code for c in regions] if regions else list(all_regions())
    if creators:
        wanted = {c.split("-", 1)[0].upper() for c in creators}
        codes = [c for c in codes if c in wanted]
    mode = "preview" if not deliver else ("outbox" if settings.smtp is None else "smtp")
    # A preview reads the log too: it shows the corrections of days already reported, as delivery would send them.
    log = DeliveryLog(settings)
    mailing = Mailing.from_settings(settings)
    outcomes = []
    try:
        for code in codes:
            day = local_date or last_closed_day(get_region(code), now)
            try:
                gathered = region_reports(settings, code, day, creators=creators, now=now)
            except Exception as exc:  # isolation: name this region and why, go on with the others
                outcomes.append(_failed_region(settings, code, day, exc))
                continue
            try:
                outcomes.append(_deliver_region(settings, gathered, log, deliver, mailing, resend, progress))
            except Exception as exc:  # its outbox or preview folder, say: this region's alone, the others go on
                outcomes.append(_undelivered_region(code, day, exc))
    finally:
        log.close()
    return ReportsSummary(mode, outcomes)


def registered_creators(settings: Settings, ids: list[str]) -> set[str]:
    """Which of `ids` the creator registry holds: a report asked for a creator it lacks would otherwise answer "no
    activity", as if the id were right. A registry that cannot be read answers for every id: ingest names it."""
    import polars as pl

    path = settings.registry_dir / "creators.csv"
    try:
        known = pl.read_csv(path, columns=["creator_id"], infer_schema_length=0)["creator_id"]
    except (OSError, pl.exceptions.PolarsError):
        return set(ids)
    return set(ids) & {str(c).strip().upper() for c in known.drop_nulls()}


def _failed_region(settings: Settings, code: str, day: dt.date, exc: Exception) -> RegionOutcome:
    failure = RegionFailure.of(code, exc)
    logger.warning("%s: reports not gathered: %s", code, failure.cause)
    store = settings.store_path(code)
    message = (
        f"{code}: store {store} is busy, no reports gathered: {failure.cause}; try again when that run has finished"
        if failure.busy
        else f"{code}: store {store} cannot be read, no reports gathered: {failure.cause}"
    )
    return RegionOutcome(code, day, "busy" if failure.busy else "failed", message, failure=failure)


def _undelivered_region(code: str, day: dt.date, exc: Exception) -> RegionOutcome:
    failure = RegionFailure.of(code, exc)
    logger.warning("%s: reports not delivered: %s", code, failure.cause)
    message = f"{code}: reports gathered but not delivered: {failure.cause}; rerun to deliver the rest"
    return RegionOutcome(code, day, "failed", message, failure=failure)


def _deliver_region(
    settings: Settings,
    gathered: RegionDay,
    log: DeliveryLog,
    deliver: bool,
    mailing: Mailing,
    resend: bool,
    progress: ReportsProgress | None,
) -> RegionOutcome:
    state = gathered.readiness
    outcome = RegionOutcome(gathered.region, gathered.local_date, state.reason, state.message)
    reports = gathered.reports
    outcome.reports = len(reports)
    if not state.ready or not reports:
        return outcome
    outcome.held_creators = sum(r.held.count > 0 for r in reports)
    if deliver:
        stopped = log.unsubscribed(gathered.region)
        outcome.unsubscribed = sorted(r.creator_id for r in reports if r.creator_id in stopped)
        reports = [r for r in reports if r.creator_id not in stopped]
        if not resend:
            done = log.sent(gathered.region, gathered.local_date)
            outcome.skipped = sum(r.creator_id in done for r in reports)
            reports = [r for r in reports if r.creator_id not in done]
    reports = _with_restatements(log, reports)
    outcome.restated = sum(bool(r.restated) for r in reports)

    transport: OutboxTransport | SmtpTransport | _Preview = (
        transport_for(settings) if deliver else _Preview(settings.reports_dir)
    )
    outcome.location = (
        transport.location
        if isinstance(transport, SmtpTransport)
        else str(transport.folder / gathered.region / gathered.local_date.isoformat())
    )
    pending: list[Delivery] = []
    addressed = []
    for report in reports:
        problem = recipient_problem(report)
        if problem:  # one creator's bad registry entry is theirs alone: the others' reports still go out
            outcome.refused[report.creator_id] = problem
        elif not report.email:
            outcome.failed[report.creator_id] = "no email address in the creator registry"
        else:
            addressed.append(report)
    # closing(): leaving early (the relay is down) stops the render workers too
    with transport, closing(rendered(addressed, mailing)) as messages:
        for index, (report, data, message_id) in enumerate(messages, start=1):
            if data is None:  # rendering this one report failed: say why, carry on with the rest
                outcome.failed[report.creator_id] = message_id
                continue
            try:
                location = transport.send(
                    data,
                    recipient=mail_address(report.email),
                    name=report_name(report.region, report.local_date, report.creator_id),
                )
            except RelayUnavailable as exc:
                # the relay is down or refusing everything: say so for every report left, rather than retrying each
                outcome.failed[report.creator_id] = str(exc)
                for rest in addressed[index:]:
                    outcome.failed[rest.creator_id] = f"not attempted: {exc}"
                break
            except DeliveryFailed as exc:
                outcome.failed[report.creator_id] = str(exc)
                continue
            outcome.written += 1
            if deliver:
                pending.append(
                    Delivery(
                        report.region,
                        report.creator_id,
                        report.local_date,
                        report.email,
                        message_id,
                        transport.name,
                        location,
                        report.day.net_minor,
                        tuple((r.local_date, r.net_minor) for r in report.restated),
                    )
                )
                if transport.name == "smtp" or len(pending) >= OUTBOX_RECORD_BATCH:
                    log.record(pending)
                    pending = []
            if progress:
                progress(gathered.region, index, len(addressed))
        log.record(pending)  # nothing pending in a preview
    return outcome


def rendered(reports: list[CreatorReport], mailing: Mailing) -> Iterator[tuple[CreatorReport, bytes | None, str]]:
    """Each report as message bytes and its Message-ID, in order; rendered on every core when there are many.

    A report that cannot be rendered comes back as (report, None, why) instead of ending the run: one creator's
    odd data must not stop everyone else's report.

    Rendering (templates, Babel, chart, MIME) is pure CPU per report and needs nothing from the store, so large
    runs spread it over worker processes (spawned: the parent has DuckDB and polars threads, which fork would copy
    mid-flight) in chunks, while this process writes or sends what is done. Small runs stay in process: spawning
    workers costs about a second. As with any spawned pool, a plain script that calls `write_reports` for a large
    run needs the usual `if __name__ == "__main__":` guard (the workers import the main module).
    """
    workers = min(render_workers() or os.cpu_count() or 1, -(-len(reports) // RENDER_CHUNK))
    if workers <= 1 or len(reports) < PARALLEL_FROM:
        for report in reports:
            data, message_id = _render_one(report, mailing)
            yield report, data, message_id
        return
    chunks = [reports[i : i + RENDER_CHUNK] for i in range(0, len(reports), RENDER_CHUNK)]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        for chunk, results in zip(chunks, pool.map(_render_chunk, chunks, itertools.repeat(mailing)), strict=True):
            for report, (data, message_id) in zip(chunk, results, strict=True):
                yield report, data, message_id
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a caller that stops early does not wait for the rest


def _render_chunk(reports: list[CreatorReport], mailing: Mailing) -> list[tuple[bytes | None, str]]:
    return [_render_one(report, mailing) for report in reports]


def _render_one(report: CreatorReport, mailing: Mailing) -> tuple[bytes | None, str]:
    """(message bytes, Message-ID), or (None, why it could not be rendered)."""
    from kanda.reports.message import build_message  # Jinja2, Babel and Pillow: only when rendering

    try:
        message = build_message(
            report,
            mailing.sender,
            reply_to=mailing.reply_to,
            unsubscribe_url=mailing.unsubscribe_url(report),
        )
        return message_bytes(message), str(message.get("Message-ID", ""))
    except Exception as exc:  # any one report's failure is reported with its reason; the run goes on
        return None, f"could not be rendered: {type(exc).__name__}: {exc}"


def _with_restatements(log: DeliveryLog, reports: list[CreatorReport]) -> list[CreatorReport]:
    """Tell a creator when one of the last days now says another net than the report they received for it.

    A late refund, a reversal or a released record restates the day it belongs to; the creator already has a
    report for that day, so the next report says so. The current nets come from the report's own 30-day trend.
    """
    if not reports:
        return reports
    first = reports[0]
    days = [first.local_date - dt.timedelta(days=i) for i in range(1, RESTATEMENT_DAYS + 1)]
    stated = log.stated_net(first.region, days)
    if not stated:
        return reports
    out = []
    for report in reports:
        current = {p.local_date: p.net_minor for p in report.trend}
        changes = [
            Restatement(day, stated[(report.creator_id, day)], current.get(day, 0))
            for day in sorted(days)
            if (report.creator_id, day) in stated and stated[(report.creator_id, day)] != current.get(day, 0)
        ]
        out.append(dataclasses.replace(report, restated=changes) if changes else report)
    return out


class _Preview:
    """`kanda reports` without --deliver: files to look at, under reports/, never recorded as sent."""

    name = "preview"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> _Preview:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, data: bytes, *, recipient: str, name: str) -> str:
        path = self.folder / f"{name}.eml"
        write_eml(path, data)
        return str(path)
