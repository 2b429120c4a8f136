"""`kanda verify`: every proof the system offers, for every region that has a store.

Ledger chain, batch conservation, rollups against events, and central against regional to the minor unit.
"""

from __future__ import annotations

from kanda.central import latest_publication, open_catalog, read_published
from kanda.models import build_models
from kanda.settings import Settings
from kanda.store import open_store, store_exists
from quality import checks
from quality.checks import CheckResult
from regions import all_regions
from warehouse_models import PUBLISHED


def verify(settings: Settings, regions: list[str] | None = None) -> list[CheckResult]:
    codes = [c.upper() for c in regions] if regions else [c for c in all_regions() if store_exists(settings, c)]
    catalog = open_catalog(settings)
    publication = latest_publication(catalog)
    central_tables = {name: read_published(catalog, publication, name) for name in PUBLISHED} if publication else None
    results: list[CheckResult] = []
    for code in codes:
        region = all_regions()[code]
        with open_store(settings, code) as con:
            build_models(con)
            results.append(checks.ledger_chain(con, region))
            results.append(checks.batch_conservation(con, region))
            results.append(checks.rollups_match_events(con, region))
            regional = checks.regional_totals(con)
            unpublished = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
        if central_tables is None:
            results.append(CheckResult("reconciliation", False, f"{code}: nothing published yet"))
        else:
            central = checks.central_totals(central_tables, code)
            results.append(checks.reconciliation(region, regional, central, unpublished))
    return results
