"""`kanda demo`: the whole pipeline on embedded defaults, from generated files to verified central rollups."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from babel.numbers import format_currency
from rich.console import Console

from kanda import flow
from kanda.checks.verify import verify
from kanda.settings import Settings
from regions import all_regions
from regions.synthetic.generate import generate


@dataclass
class RegionSummary:
    region: str
    files: int = 0
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    ignored: int = 0
    net_local: str = ""
    net_usd: str = ""


@dataclass
class DemoSummary:
    regions: list[RegionSummary] = field(default_factory=list)
    verified: bool = False
    reports_day: dt.date | None = None  # the demo's last day, whose creator reports went to the outbox
    reports_written: int = 0
    reports_before: int = 0  # already in the outbox from an earlier demo run (sent once, never twice)
    outbox: Path | None = None
    expectations_run: int = 0  # Great Expectations verdicts (one per region and day, and per region and table)
    expectations_failed: int = 0
    data_docs: Path | None = None  # the Data Docs index page, so the quality pages are not empty after a demo


def run_demo(settings: Settings, *, rows: int, days: int, seed: int, console: Console) -> DemoSummary:
    settings.ensure_dirs()
    start = dt.date.today() - dt.timedelta(days=days)
    with console.status(f"generating {days} days x {rows:,} rows for {len(all_regions())} regions"):
        generate(
            landing_dir=settings.landing_dir,
            registry_dir=settings.registry_dir,
            start=start,
            days=days,
            rows_per_region=rows,
            seed=seed,
        )
    summary = DemoSummary()
    observers = flow.installed_observers()  # the Dagster instance under KANDA_HOME sees what the demo did
    for code in all_regions():
        with console.status(f"{code}: ingesting and publishing"):
            # the whole region flow; quarantined rows end in the stewards' review queue
            run = flow.run_region(settings, code, observers=observers)
        report = run.ingest
        assert report is not None
        s = RegionSummary(code, files=len(report.files))
        for f in report.files:
            s.rows_in += f.rows_in
            s.loaded += f.loaded
            s.quarantined += f.quarantined
            s.duplicates += f.duplicates
            s.ignored += f.ignored
        summary.regions.append(s)
    with console.status("verifying ledger, conservation and central totals"):
        results = verify(settings)
    summary.verified = all(r.passed or r.severity == "warn" for r in results)
    _add_totals(settings, summary)
    with console.status("running the Great Expectations suites and building Data Docs"):
        _run_expectations(settings, summary)
    with console.status("writing creators' reports of the last day to the outbox"):
        _write_reports(settings, summary, start + dt.timedelta(days=days - 1))
    return summary


def _write_reports(settings: Settings, summary: DemoSummary, day: dt.date) -> None:
    """The last day's creator reports as `.eml` files in the outbox, even where SMTP is configured: demo
    creators have made-up addresses."""
    from kanda.reports.run import write_reports

    result = write_reports(dataclasses.replace(settings, smtp=None), day, deliver=True)
    summary.reports_day = day
    summary.reports_written = result.written
    summary.reports_before = sum(r.skipped for r in result.regions)
    summary.outbox = settings.outbox_dir


def _run_expectations(settings: Settings, summary: DemoSummary) -> None:
    """What `kanda expectations` does for every region, so the steward's quality pages and Data Docs have
    something to show after a first demo."""
    from kanda.checks.gx_runner import run_suites

    # One GX context and one validation per suite for all regions: GX's cost is per validation, not per row.
    results, summary.data_docs = run_suites(settings, all_regions())
    summary.expectations_run = len(results)
    summary.expectations_failed = sum(not r.success for r in results)


def _add_totals(settings: Settings, summary: DemoSummary) -> None:
    """Net per region as published centrally, formatted in the region's own locale."""
    from kanda.central.query import run_query

    # A USD total only where every row has a rate: SQL's sum skips the rows without one, and a region short of
    # rates would show a plausible, too small figure (or $0.00 with none at all).
    totals = run_query(
        settings,
        "SELECT region, sum(net_minor) AS net,"
        " CASE WHEN count(net_usd_minor) = count(*) THEN sum(net_usd_minor) END AS usd"
        " FROM rollups.creator_daily GROUP BY 1",
    ).to_pylist()
    by_region = {row["region"]: row for row in totals}
    for s in summary.regions:
        region = all_regions()[s.region]
        row = by_region.get(s.region)
        if row:
            local = Decimal(row["net"]).scaleb(-region.exponent)
            s.net_local = format_currency(local, region.currency, locale=region.locale)
            usd = None if row["usd"] is None else Decimal(row["usd"]).scaleb(-2)
            s.net_usd = "no USD rate" if usd is None else format_currency(usd, "USD", locale="en_US")
