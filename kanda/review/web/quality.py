"""The per-region quality pages: quarantine-rate trend, the review queue's state, and the latest data-quality
(Great Expectations) results with a link to the Data Docs site.

The trend comes from the published central rollups (`rollups.region_daily` through `kanda.central.query.run_query`),
never from a regional store: a page view must not take a region's lock and hold up its ingestion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kanda.review.accounts import Account
from kanda.review.web.chart import quarantine_chart
from kanda.review.web.render import render
from kanda.review.web.security import PageError, SignedIn, data_docs_regions
from kanda.settings import Settings
from regions import all_regions, get_region

router = APIRouter()
#: Results shown on a region's page (central rollups first, then the newest days).
GX_ROWS = 40


@dataclass(frozen=True)
class DayRate:
    day: dt.date
    rows_loaded: int
    rows_quarantined: int
    rate: float


def visible_regions(account: Account) -> list[str]:
    return [code for code in all_regions() if account.actor.can_see(code)]


def quarantine_trend(settings: Settings, regions: list[str]) -> dict[str, list[DayRate]] | None:
    """Each region's published days, oldest first; None when nothing has been published yet."""
    from kanda.central.query import NothingPublished, run_query

    if not regions:
        return {}
    listed = ", ".join(f"'{code}'" for code in regions)  # codes come from the region registry, never from input
    try:
        table = run_query(
            settings,
            "SELECT region, local_date, rows_loaded, rows_quarantined, quarantine_rate FROM rollups.region_daily"
            f" WHERE region IN ({listed}) ORDER BY region, local_date",
        )
    except NothingPublished:
        return None
    trend: dict[str, list[DayRate]] = {code: [] for code in regions}
    for row in table.to_pylist():
        trend[row["region"]].append(
            DayRate(row["local_date"], row["rows_loaded"], row["rows_quarantined"], float(row["quarantine_rate"]))
        )
    return trend


def gx_results(settings: Settings, region: str) -> list[dict]:
    """The newest Great Expectations result per suite and day for the region, and for its central rollups.

    `latest_results` reads the small summaries the GX runner keeps beside its context: no GX import on a page view.
    """
    from kanda.checks.gx_runner import latest_results

    return latest_results(settings, region=region)[:GX_ROWS]


@router.get("/quality", response_class=HTMLResponse)
def quality_index(request: Request, account: SignedIn) -> HTMLResponse:
    settings = request.app.state.settings
    regions = visible_regions(account)
    trend = quarantine_trend(settings, regions)
    summary = []
    for code in regions:
        days = (trend or {}).get(code, [])
        loaded = sum(d.rows_loaded for d in days)
        flagged = sum(d.rows_quarantined for d in days)
        config = get_region(code)
        rate = flagged / (loaded + flagged) if loaded + flagged else None
        level = (
            None
            if rate is None
            else "error"
            if rate >= config.quarantine_error
            else "warn"
            if rate >= config.quarantine_warn
            else "ok"
        )
        summary.append(
            {"region": config, "days": len(days), "loaded": loaded, "flagged": flagged, "rate": rate, "level": level}
        )
    return render(request, "quality_index.html", account, nav="quality", summary=summary, published=trend is not None)


@router.get("/quality/{region}", response_class=HTMLResponse)
def quality_region(region: str, request: Request, account: SignedIn) -> HTMLResponse:
    settings = request.app.state.settings
    code = region.upper()
    if code not in all_regions():
        raise PageError(404, "No such region", f"There is no region {region!r}.")
    if not account.actor.can_see(code):
        raise PageError(403, "Not your region", f"{account.name} may not see {code} records.")
    config = get_region(code)
    trend = quarantine_trend(settings, [code])
    days = (trend or {}).get(code, [])
    chart = (
        quarantine_chart([(d.day, d.rate) for d in days], warn=config.quarantine_warn, error=config.quarantine_error)
        if days
        else None
    )
    from kanda.review.web.pages import status_counts

    gx = gx_results(settings, code)
    return render(
        request,
        "quality.html",
        account,
        nav="quality",
        region=config,
        days=days,
        chart=chart,
        published=trend is not None,
        counts=status_counts(settings, account, code),
        gx=gx,
        # a result validated with regions the account may not see has a page it may not open: no dead link
        readable_docs={r["docs_path"] for r in gx if _may_read(account, r.get("docs_path"))},
        data_docs=_data_docs_index(settings),
    )


def _may_read(account: Account, docs_path: str | None) -> bool:
    regions = data_docs_regions(docs_path or "")
    return bool(docs_path) and (regions is None or all(account.actor.can_see(r) for r in regions))


def _data_docs_index(settings: Settings) -> bool:
    from kanda.checks.gx_runner import data_docs_dir

    return (data_docs_dir(settings) / "index.html").exists()
