"""`kanda verify`: every proof the system offers, for every region that has a store.

Ledger chain, batch conservation, rollups against events, and central against regional to the minor unit; then
the proofs that need the central layer: every data file the newest publication reads is there and whole, and every
ledger head a publication anchored is still in its region's chain (a store rewritten and re-chained is caught).
A store that cannot be read is a failed check of its region, not the end of the run: the other regions are still
verified, so one corrupted file never hides the state of the healthy ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In, Not

from kanda.central.catalog import (
    LEDGER_ANCHOR,
    damaged_files,
    latest_publication,
    open_catalog,
    publication_rows,
    read_published,
)
from kanda.checks import store_checks as checks
from kanda.checks.store_checks import CheckResult
from kanda.regional.models import ensure_built
from kanda.regional.status import failure_cause
from kanda.regional.store import StoreBusy, open_store, store_exists
from kanda.settings import Settings
from regions import RegionConfig, all_regions
from warehouse_models import published


def published_tables(settings: Settings, *, skip_regions: frozenset[str] = frozenset()) -> dict[str, pa.Table] | None:
    """Every rollup as of the newest publication, or None before the first publish.

    `skip_regions`: regions whose data files are damaged; their partitions are pruned, so the read does not fail
    and the other regions still reconcile (the skipped ones then show nothing published centrally).
    """
    catalog = open_catalog(settings)
    publication = latest_publication(catalog)
    if publication is None:
        return None
    # A rollup added to kanda since the newest publication is missing from it: reconciliation names it.
    tables = [name for name in published() if publication.snapshots[name] is not None]
    row_filter = Not(In("region", set(skip_regions))) if skip_regions else None
    return {name: read_published(catalog, publication, name, row_filter) for name in tables}


def central_data_files(catalog: SqlCatalog) -> tuple[CheckResult | None, frozenset[str]]:
    """Whether every data file the newest publication reads is present and whole, and which regions it is not for.

    A lost or corrupt file would otherwise make reading the publication (and so the whole of `verify`) fail; here
    it is a finding that names the table, the file and the repair. None before the first publish.
    """
    publication = latest_publication(catalog)
    if publication is None:
        return None, frozenset()
    damaged = damaged_files(catalog, publication)
    if not damaged:
        return CheckResult(
            "central_data_files", True, f"every data file of publication {publication.publish_id} is present and whole"
        ), frozenset()
    regions = frozenset(d.region for d in damaged if d.region)
    problems = [f"rollups.{d.table}: {d.path} is {d.problem} (region {d.region or 'unknown'})" for d in damaged]
    repair = "; ".join(f"`kanda publish --region {code} --rebuild`" for code in sorted(regions))
    message = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    return CheckResult(
        "central_data_files",
        False,
        f"{message}. The regional store is the source of truth: republish from it with {repair or 'a rebuild'}",
        metadata={"damaged": [d.__dict__ for d in damaged]},
    ), regions


def anchored_heads(catalog: SqlCatalog) -> dict[str, list[dict]]:
    """Per region, the ledger heads its publications anchored (publications from before anchoring have none)."""
    heads: dict[str, list[dict]] = {}
    for row in publication_rows(catalog):
        if row.get("ledger_seq") is not None:
            heads.setdefault(row["region"], []).append(row)
    return heads


def ledger_anchors(con: duckdb.DuckDBPyConnection, region: RegionConfig, anchors: list[dict]) -> CheckResult:
    """Every ledger head anchored centrally is still in the regional chain: same seq, batch, hash and totals.

    The chain alone proves nothing against someone who can write the store: they can delete an event and
    recompute every hash. They cannot change the heads already published, and a recomputed chain no longer
    passes through them.
    """
    chain = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT seq, batch_id, row_hash, sum(rows_read) OVER w, sum(loaded) OVER w, sum(quarantined) OVER w,"
            " sum(duplicates) OVER w FROM ledger WINDOW w AS (ORDER BY seq)"
        ).fetchall()
    }
    names = [field.name for field in LEDGER_ANCHOR[1:]]
    problems = []
    for anchor in anchors:
        seq, batch = anchor["ledger_seq"], anchor["ledger_batch_id"]
        found = chain.get(seq)
        where = f"publication {anchor['publish_id']} anchored batch {batch} at ledger row {seq}"
        if found is None:
            problems.append(f"{where}, which the regional ledger no longer has")
            continue
        differ = [name.removeprefix("ledger_") for name, got in zip(names, found, strict=True) if anchor[name] != got]
        if differ:
            problems.append(f"{where}; the regional chain differs there in {', '.join(differ)} (history rewritten?)")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        text = f"{region.code}: " + "; ".join(problems[:3]) + more
        return CheckResult("ledger_anchors", False, text, metadata={"anchors": len(anchors), "broken": len(problems)})
    return CheckResult(
        "ledger_anchors",
        True,
        f"{region.code}: the chain passes through all {len(anchors)} anchored head(s)",
        metadata={"anchors": len(anchors)},
    )


def reconcile(con: duckdb.DuckDBPyConnection, region: RegionConfig, central: dict[str, pa.Table] | None) -> CheckResult:
    """Central rollups against the regional ones (built in `con`); nothing published counts as an empty centre."""
    regional = checks.regional_totals(con)
    unpublished = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
    totals = checks.central_totals(central, region.code) if central else {name: (0, 0, 0) for name in published()}
    return checks.reconciliation(region, regional, totals, unpublished)


def verify(settings: Settings, regions: list[str] | None = None) -> list[CheckResult]:
    codes = [c.upper() for c in regions] if regions else [c for c in all_regions() if store_exists(settings, c)]
    catalog = open_catalog(settings)
    files_check, damaged_regions = central_data_files(catalog)
    central = published_tables(settings, skip_regions=damaged_regions)
    anchors = anchored_heads(catalog)
    results: list[CheckResult] = [files_check] if files_check else []
    for code in codes:
        region = all_regions()[code]
        with _store_failure_reported(results, region, settings), open_store(settings, code) as con:
            ensure_built(con)
            results.append(checks.ledger_chain(con, region))
            results.append(ledger_anchors(con, region, anchors.get(code, [])))
            results.append(checks.batch_conservation(con, region))
            results.append(checks.rollups_match_events(con, region))
            results.append(checks.usd_agrees_across_rollups(con, region))
            results.append(reconcile(con, region, central))
    return results


@contextmanager
def _store_failure_reported(results: list[CheckResult], region: RegionConfig, settings: Settings) -> Iterator[None]:
    """Turn an error while reading one region's store into a failed `store_readable` check naming the cause.

    A busy store is not broken: `StoreBusy` (after the usual wait for the lock) still ends the run with its own
    message, as before. Checks that completed before the failure keep their results.
    """
    try:
        yield
    except StoreBusy:
        raise
    except Exception as exc:
        results.append(store_unreadable(region, settings, exc))


def store_unreadable(region: RegionConfig, settings: Settings, exc: Exception) -> CheckResult:
    cause = failure_cause(exc)
    return CheckResult(
        "store_readable",
        False,
        f"{region.code}: store {settings.store_path(region.code)} cannot be read: {cause}",
        metadata={"cause": cause},
    )
