"""Asset checks: the same proofs `kanda verify` runs, recorded by the region runs in Dagster.

The checks live in `kanda.checks.store_checks`; this module only opens the store (read-only, under the region lock),
hands the connection over, and translates a `CheckResult` into an `AssetCheckResult` with the right severity.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    Failure,
    MetadataValue,
    asset_check,
)

from kanda.checks import store_checks as checks
from kanda.checks.store_checks import CheckResult
from kanda.checks.verify import reconcile_region
from kanda.regional.store import open_store
from pipelines.assets.central import central_key
from pipelines.assets.regional import regional_rollups, regional_sales
from pipelines.resources import KandaSettings
from regions import RegionConfig, all_regions, get_region

# The checks are not partitioned (partitioned checks are a preview in Dagster 1.13, and kanda loads without preview
# or beta warnings): each runs inside a region's run, names its region in its description and metadata, and the
# latest verdict per region is what `kanda verify` prints.


def region_of(context: AssetCheckExecutionContext) -> RegionConfig:
    """The region of the run the check executes in (the run's partition). A run launched without one (a check's
    or a job's own launch button) fails naming the tag, not with a bare KeyError."""
    code = context.op_execution_context.run.tags.get("dagster/partition")
    if code not in all_regions():
        raise Failure(
            f"this check runs inside a region's run: launch it with a region partition (the tag dagster/partition"
            f" set to one of {', '.join(sorted(all_regions()))}), not {code!r}"
        )
    return get_region(code)


def run_started(context: AssetCheckExecutionContext) -> dt.datetime:
    """When the check's run started (when it was created, if it has no start yet): batches the ledger finished
    from then on are this run's, since a region's runs go one at a time."""
    run = context.op_execution_context
    record = run.instance.get_run_record_by_id(run.run_id)
    if record is not None and record.start_time is not None:
        return dt.datetime.fromtimestamp(record.start_time, dt.UTC)
    if record is not None:
        return record.create_timestamp
    return dt.datetime.now(dt.UTC)


def to_dagster(result: CheckResult, region: str) -> AssetCheckResult:
    """Carry the check's verdict, sentence and numbers over; `severity="warn"` becomes a WARN check failure."""
    severity = AssetCheckSeverity.WARN if result.severity == "warn" else AssetCheckSeverity.ERROR
    return AssetCheckResult(
        passed=result.passed,
        severity=severity,
        description=result.message,
        metadata={"region": region, **{key: _metadata_value(value) for key, value in result.metadata.items()}},
    )


def _metadata_value(value: Any) -> Any:
    """Scalars pass through as-is; nested numbers (e.g. per-table totals) are kept as JSON."""
    return MetadataValue.json(value) if isinstance(value, dict | list | tuple) else value


def _store_check(
    context: AssetCheckExecutionContext,
    kanda: KandaSettings,
    check: Callable[[duckdb.DuckDBPyConnection, RegionConfig], CheckResult],
) -> AssetCheckResult:
    """Run a `kanda.checks.store_checks` function on the partition's store, opened read-only under the region's lock."""
    region = region_of(context)
    with open_store(kanda.load(), region.code, read_only=True) as con:
        return to_dagster(check(con, region), region.code)


@asset_check(
    asset=regional_sales,
    blocking=True,
    description="Every batch balances and the store holds exactly what the ledger says; blocks rollups if not.",
)
def batch_conservation(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.batch_conservation)


@asset_check(
    asset=regional_sales,
    description="Share of input rows quarantined, against the region's warn and error thresholds.",
)
def quarantine_rate(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    # this run's files: a dirty file is news for the run that loaded it, whatever the history's rate
    since = run_started(context)
    return _store_check(context, kanda, lambda con, region: checks.quarantine_rate(con, region, since=since))


@asset_check(
    asset=regional_rollups,
    description="The rollups add up to the loaded events (computed independently of the models), with USD rates.",
)
def rollups_match_events(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.rollups_match_events)


@asset_check(
    asset=regional_rollups,
    description="USD totals agree to the cent across region_daily, creator_daily and product_daily.",
)
def usd_agrees_across_rollups(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    return _store_check(context, kanda, checks.usd_agrees_across_rollups)


@asset_check(
    asset=central_key("region_daily"),
    description="The newest central publication equals the regional rollups: rows, net and net USD, to the unit.",
)
def reconciliation(context: AssetCheckExecutionContext, kanda: KandaSettings) -> AssetCheckResult:
    """The same reconciliation as `kanda verify`; a region with nothing published compares with an empty centre."""
    settings = kanda.load()
    region = region_of(context)
    with open_store(settings, region.code, read_only=True) as con:
        try:
            return to_dagster(reconcile_region(settings, con, region), region.code)
        except duckdb.CatalogException:
            return AssetCheckResult(passed=False, description=f"{region.code}: rollups not built yet")


#: The checks that run inside every region flow run.
FLOW_CHECKS = [batch_conservation, quarantine_rate, rollups_match_events, usd_agrees_across_rollups, reconciliation]
