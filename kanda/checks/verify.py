"""`kanda verify`: every proof the system offers, for every region that has a store.

Ledger chain, batch conservation, rollups against events, and central against regional to the minor unit; then
the proofs that need the central layer: every data file the newest publication reads is there and whole, and every
ledger head a publication anchored is still in its region's chain (a store rewritten and re-chained is caught).
A store that cannot be read is a failed check of its region, not the end of the run: the other regions are still
verified, so one corrupted file never hides the state of the healthy ones. A store that another run holds past the
lock wait is a failed `store_available` check of its region (busy, not broken), and again the others are verified.

Past one machine the regional stores live on their region hosts and the central host has none. There `verify`
checks what the central layer alone can prove (every publication's snapshots exist, every data file is whole,
each region's anchored ledger heads are present and only grow, the rollups of each region agree with one another)
and names, as a warning, each published region whose regional proofs it could not run. Seeing nothing is never a
pass: with no store and no publication, verify fails and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In, Not

from kanda.central.anchors import anchor_problems, anchored_heads
from kanda.central.catalog import (
    NAMESPACE,
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
from regions import RegionConfig, all_regions, unavailable_regions
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


def ledger_anchors(con: duckdb.DuckDBPyConnection, region: RegionConfig, anchors: list[dict]) -> CheckResult:
    """Every ledger head anchored centrally is still in the regional chain: same seq, batch, hash and totals.

    The chain alone proves nothing against someone who can write the store: they can delete an event and
    recompute every hash. They cannot change the heads already published, and a recomputed chain no longer
    passes through them.
    """
    problems = anchor_problems(con, anchors)
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


def reconcile_region(settings: Settings, con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """The reconciliation `verify` runs for one region, on its own: the newest publication read around other
    regions' damaged data files (each region's own finding and repair, as in `verify`), so that one region's lost
    file never fails every other region's check; the region's own damaged file is its failure, naming the repair."""
    files_check, damaged = central_data_files(open_catalog(settings))
    if files_check is not None and region.code in damaged:
        return CheckResult("reconciliation", False, f"{region.code}: {files_check.message}", files_check.metadata)
    return reconcile(con, region, published_tables(settings, skip_regions=damaged))


def reconcile(con: duckdb.DuckDBPyConnection, region: RegionConfig, central: dict[str, pa.Table] | None) -> CheckResult:
    """Central rollups against the regional ones (built in `con`); nothing published counts as an empty centre."""
    regional = checks.regional_totals(con)
    unpublished = con.execute("SELECT count(DISTINCT local_date) FROM dirty_days").fetchall()[0][0]
    totals = checks.central_totals(central, region.code) if central else {name: (0, 0, 0) for name in published()}
    return checks.reconciliation(region, regional, totals, unpublished)


def verify(settings: Settings, regions: list[str] | None = None) -> list[CheckResult]:
    catalog = open_catalog(settings)
    history = publication_rows(catalog)
    published_regions = {row["region"] for row in history}
    absent: list[str] = []
    if regions:
        wanted = [c.upper() for c in regions]
        # A named region whose store is on another host is checked centrally only, and one with neither a store
        # here nor a publication is said to have nothing to verify: never with a new empty store.
        codes = [c for c in wanted if store_exists(settings, c)]
        absent = [c for c in wanted if c not in codes and c not in published_regions]
        wanted = [c for c in wanted if c not in absent]
    else:
        wanted = sorted(published_regions | {c for c in all_regions() if store_exists(settings, c)})
        codes = [c for c in all_regions() if store_exists(settings, c)]
    elsewhere = [c for c in wanted if c not in codes]
    files_check, damaged_regions = central_data_files(catalog)
    central = published_tables(settings, skip_regions=damaged_regions)
    anchors = anchored_heads(catalog)
    results: list[CheckResult] = [files_check] if files_check else []
    results.extend(
        CheckResult(
            "store_present",
            False,
            f"{code}: no store at {settings.store_path(code)} and nothing of {code} published: nothing to verify",
        )
        for code in absent
    )
    results.extend(
        CheckResult(
            "region_file",
            False,
            f"{code}: its store {settings.store_path(code)} is here, but its region file did not load, so it was"
            f" not checked: {' '.join(reason.split())}",
        )
        for code, reason in unavailable_regions().items()
        if settings.serves(code) and settings.store_path(code).exists()
    )
    if not codes and not history:
        results.append(
            CheckResult(
                "nothing_verified",
                False,
                f"no regional store in {settings.stores_dir} and nothing published in the central catalog"
                f" {settings.masked_catalog_url}: nothing could be verified (wrong KANDA_HOME or KANDA_CATALOG_URL?)",
            )
        )
        return results
    if elsewhere:
        results.extend(central_checks(catalog, history, central, elsewhere, anchors))
    for code in codes:
        region = all_regions()[code]
        with _store_failure_reported(results, region, settings), open_store(settings, code) as con:
            ensure_built(con)
            results.append(checks.ledger_chain(con, region))
            results.append(checks.ledger_money(con, region))
            results.append(ledger_anchors(con, region, anchors.get(code, [])))
            results.append(checks.batch_conservation(con, region))
            results.append(checks.rollups_match_events(con, region))
            results.append(checks.usd_agrees_across_rollups(con, region))
            results.append(checks.money_back_within_sale(con, region))
            results.append(checks.failed_after_success(con, region))
            results.append(checks.dollar_records(con, region))
            results.append(reconcile(con, region, central))
            results.append(checks.central_rows(con, region, central))
    return results


def central_checks(
    catalog: SqlCatalog,
    history: list[dict],
    central: dict[str, pa.Table] | None,
    regions: list[str],
    anchors: dict[str, list[dict]],
) -> list[CheckResult]:
    """What the central layer proves about regions whose stores are not on this host, and what it cannot."""
    results = [publications_complete(catalog, history)]
    results.extend(anchors_present(code, anchors.get(code, []), history) for code in regions)
    results.extend(rollups_consistent(central or {}, code) for code in regions)
    results.append(
        CheckResult(
            "regional_not_checked",
            False,
            f"not checked on this host: ledger chains, batch conservation, rollups against events and central against"
            f" regional totals of {', '.join(regions)} (their stores are on their region hosts: run `kanda verify`"
            " there)",
            severity="warn",
            metadata={"regions": regions},
        )
    )
    return results


def publications_complete(catalog: SqlCatalog, history: list[dict]) -> CheckResult:
    """Every snapshot a publication names exists in its table: each publication is readable as it was made."""
    missing = []
    for name in published():
        named = {row[f"{name}_snapshot"]: row["publish_id"] for row in history if row.get(f"{name}_snapshot")}
        if not named:
            continue
        table = catalog.load_table(f"{NAMESPACE}.{name}")
        missing += [
            f"{publish_id} names {name} snapshot {snapshot}, which the table no longer has"
            for snapshot, publish_id in named.items()
            if table.snapshot_by_id(snapshot) is None
        ]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        return CheckResult("publications_complete", False, "; ".join(missing[:3]) + more)
    return CheckResult(
        "publications_complete",
        True,
        f"all {len(history)} publication(s) name snapshots their tables have",
        metadata={"publications": len(history)},
    )


def anchors_present(region: str, anchors: list[dict], history: list[dict]) -> CheckResult:
    """The region's publications anchor ledger heads, and the anchored history only grows (seq and every total)."""
    published = [row for row in history if row["region"] == region]
    if not published:
        return CheckResult("anchors_present", False, f"{region}: nothing published centrally")
    if not anchors:
        return CheckResult(
            "anchors_present", False, f"{region}: none of its {len(published)} publication(s) anchors a ledger head"
        )
    totals = ["ledger_seq", "ledger_rows_read", "ledger_loaded", "ledger_quarantined", "ledger_duplicates"]
    shrunk = [
        f"{later['publish_id']} anchors {name.removeprefix('ledger_')} {later[name]} after {earlier[name]}"
        for earlier, later in pairwise(anchors)
        for name in totals
        if later[name] < earlier[name]
    ]
    head = anchors[-1]
    if shrunk:
        return CheckResult(
            "anchors_present", False, f"{region}: anchored history went backwards: {'; '.join(shrunk[:3])}"
        )
    if head["ledger_rows_read"] < head["ledger_loaded"] + head["ledger_quarantined"] + head["ledger_duplicates"]:
        return CheckResult(
            "anchors_present", False, f"{region}: anchored head {head['ledger_batch_id']} counts more rows out than in"
        )
    return CheckResult(
        "anchors_present",
        True,
        f"{region}: {len(anchors)} anchored ledger head(s), never shrinking; newest: ledger row {head['ledger_seq']},"
        f" {head['ledger_rows_read']:,} rows read, {head['ledger_loaded']:,} loaded",
        metadata={"anchors": len(anchors), "head_seq": head["ledger_seq"]},
    )


def rollups_consistent(central: dict[str, pa.Table], region: str) -> CheckResult:
    """The region's published rollups agree with one another on every day: the same orders and money (local minor
    units) in every money rollup, and the same payments and failed payments in region_daily as in channel_daily
    summed over channels.

    Per day, not only in total: money moved between two days of one table (a wrong row published, a file
    rewritten) keeps every total, and on a host without the region's store this is the only check that can see it."""
    import pyarrow.compute as pc

    def per_day(name: str, figures: tuple[str, ...]) -> dict | None:
        table = central.get(name)
        if table is None:
            return None
        rows = table.filter(pc.equal(table["region"], region))
        summed = rows.group_by("local_date").aggregate([(f, "sum") for f in figures]).to_pylist()
        return {row["local_date"]: tuple(row[f"{f}_sum"] or 0 for f in figures) for row in summed}

    def differences(figures: tuple[str, ...], days: dict[str, dict]) -> list[str]:
        """The days on which the tables' figures differ (a day missing from a table counts as 0 there)."""
        zero = (0,) * len(figures)
        every = sorted(set().union(*days.values()))
        found = []
        for day in every:
            seen = {name: by_day.get(day, zero) for name, by_day in days.items()}
            if len(set(seen.values())) > 1:
                changed = [
                    f"{figure} " + " vs ".join(f"{name} {values[i]:,}" for name, values in seen.items())
                    for i, figure in enumerate(figures)
                    if len({values[i] for values in seen.values()}) > 1
                ]
                found.append(f"{day}: {', '.join(changed)}")
        return found

    def common(names: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The figures every published table of `names` has (a table read as of an older kanda may lack one)."""
        present = [central[name].column_names for name in names if name in central]
        return tuple(f for f in wanted if all(f in columns for columns in present))

    problems = []
    # Local minor units only: USD is compared where the events are (`usd_agrees_across_rollups` on the region host).
    money = common(
        checks.MONEY_TABLES, ("orders", "gross_minor", "refunds_minor", "reversals_minor", "fees_minor", "net_minor")
    )
    money_days = {name: days for name in checks.MONEY_TABLES if (days := per_day(name, money)) is not None}
    problems += differences(money, money_days)
    counts = common(checks.PAYMENT_TABLES, ("payments", "failed_payments"))
    count_days = {name: days for name in checks.PAYMENT_TABLES if (days := per_day(name, counts)) is not None}
    if len(count_days) == len(checks.PAYMENT_TABLES):
        problems += differences(counts, count_days)
    if problems:
        more = f" (and {len(problems) - 3} more days)" if len(problems) > 3 else ""
        return CheckResult(
            "rollups_consistent",
            False,
            f"{region}: the published rollups disagree on {len(problems)} day(s): " + "; ".join(problems[:3]) + more,
        )
    region_days = money_days.get("region_daily", {}) if "net_minor" in money else {}
    net = sum(figures[money.index("net_minor")] for figures in region_days.values())
    return CheckResult(
        "rollups_consistent",
        True,
        f"{region}: the published rollups agree on every day (net {net:,} minor units in each)",
        metadata={"net_minor": net},
    )


@contextmanager
def _store_failure_reported(results: list[CheckResult], region: RegionConfig, settings: Settings) -> Iterator[None]:
    """Turn an error while reading one region's store into a failed `store_readable` check naming the cause.

    A busy store is not broken: `StoreBusy` (after the usual wait for the lock) is a failed `store_available`
    check saying so, and the other regions are still verified (it used to end the whole run, so one long writer hid
    every other region's proofs). Checks that completed before the failure keep their results.
    """
    try:
        yield
    except StoreBusy as exc:
        results.append(store_busy(region, settings, exc))
    except Exception as exc:
        results.append(store_unreadable(region, settings, exc))


def store_busy(region: RegionConfig, settings: Settings, exc: StoreBusy) -> CheckResult:
    cause = failure_cause(exc)
    return CheckResult(
        "store_available",
        False,
        f"{region.code}: store {settings.store_path(region.code)} is busy, not verified: {cause}; run `kanda verify`"
        " again when that run has finished",
        metadata={"cause": cause, "busy": True},
    )


def store_unreadable(region: RegionConfig, settings: Settings, exc: Exception) -> CheckResult:
    cause = failure_cause(exc)
    return CheckResult(
        "store_readable",
        False,
        f"{region.code}: store {settings.store_path(region.code)} cannot be read: {cause}",
        metadata={"cause": cause},
    )
