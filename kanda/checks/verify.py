"""`kanda verify`: every proof the system offers, for every region that has a store.

Ledger chain, batch conservation, rollups against events, and central against regional to the minor unit.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from kanda.central.catalog import latest_publication, open_catalog, read_published
from kanda.checks import store_checks as checks
from kanda.checks.store_checks import CheckResult
from kanda.regional.models import ensure_built
from kanda.regional.store import open_store, store_exists
from kanda.settings import Settings
from regions import RegionConfig, all_regions
from warehouse_models import PUBLISHED


def published_tables(settings: Settings) -> dict[str, pa.Table] | None:
    """Every rollup as of the newest publication, or None before the first publish."""
    catalog = open_catalog(settings)
    publication = latest_publication(catalog)
    if publication is None:
        return None
    # A rollup added to kanda since the newest publication is missing from it: reconciliation names it.
    published = [name for name in PUBLISHED if publication.snapshots[name] is not None]
    return {name: read_published(catalog, publication, name) for name in published}


def reconcile(con: duckdb.DuckDBPyConnection, region: RegionConfig, central: dict[str, pa.Table] | None) -> CheckResult:
    """Central rollups against the regional ones (built in `con`); nothing published counts as an empty centre."""
    regional = checks.regional_totals(con)
    unpublished = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
    totals = checks.central_totals(central, region.code) if central else {name: (0, 0, 0) for name in PUBLISHED}
    return checks.reconciliation(region, regional, totals, unpublished)


def verify(settings: Settings, regions: list[str] | None = None) -> list[CheckResult]:
    codes = [c.upper() for c in regions] if regions else [c for c in all_regions() if store_exists(settings, c)]
    central = published_tables(settings)
    results: list[CheckResult] = []
    for code in codes:
        region = all_regions()[code]
        with open_store(settings, code) as con:
            ensure_built(con)
            results.append(checks.ledger_chain(con, region))
            results.append(checks.batch_conservation(con, region))
            results.append(checks.rollups_match_events(con, region))
            results.append(checks.usd_agrees_across_rollups(con, region))
            results.append(reconcile(con, region, central))
    return results
