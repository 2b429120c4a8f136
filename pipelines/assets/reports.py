"""Creators' daily reports: one asset per region, partitioned by the region's published local days.

A partition is a local day in the region's IANA zone (Africa/Cairo's days follow its DST), so "yesterday" means
the region's yesterday. Each partition calls the same `write_reports` as `kanda reports --deliver`: SMTP when
configured, the outbox otherwise, each creator's report once (a rerun skips what went out before). A day that has
not closed yet fails with that reason, so the schedule's run shows why and can be retried.
"""

import datetime as dt

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    SpecificPartitionsPartitionMapping,
    asset,
)

from kanda.reports.run import write_reports
from pipelines.assets.central import CENTRAL_KEYS
from pipelines.metadata import OWNERS
from pipelines.partitions import report_days
from pipelines.resources import KandaSettings
from regions import RegionConfig, all_regions


def _report_asset(region: RegionConfig) -> AssetsDefinition:
    code = region.code

    @asset(
        name=f"{code.lower()}_creator_reports",
        partitions_def=report_days(region),
        # the region's publish (central tables' partition = region code) must have run for the day
        deps=[AssetDep(key, partition_mapping=SpecificPartitionsPartitionMapping([code])) for key in CENTRAL_KEYS],
        group_name="creator_reports",
        kinds={"email", "python"},
        owners=OWNERS,
        description=(
            f"{region.name}: each creator's report of a local day ({region.zone}), generated from the {code} store"
            " and delivered once (SMTP, or the outbox without SMTP)."
        ),
    )
    def creator_reports(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        summary = write_reports(kanda.load(), day, regions=[code], deliver=True)
        (outcome,) = summary.regions
        if not outcome.ready:
            raise Failure(description=outcome.message, metadata={"status": outcome.status})
        metadata = {
            "mode": MetadataValue.text(summary.mode),
            "reports": MetadataValue.int(outcome.reports),
            "delivered": MetadataValue.int(outcome.written),
            "delivered_before": MetadataValue.int(outcome.skipped),
            "with_held_records": MetadataValue.int(outcome.held_creators),
            "with_restatements": MetadataValue.int(outcome.restated),
            "where": MetadataValue.text(outcome.location or "-"),
        }
        if outcome.failed or outcome.refused:
            raise Failure(
                description=(
                    f"{len(outcome.failed)} report(s) not delivered and {len(outcome.refused)} creator(s) skipped"
                    " (unsafe name or address in the registry); the others went out, a rerun sends only the missing"
                ),
                metadata={
                    **metadata,
                    "failed": MetadataValue.json(outcome.failed),
                    "skipped": MetadataValue.json(outcome.refused),
                },
            )
        return MaterializeResult(metadata=metadata)

    return creator_reports


#: One asset per region, picked up by `load_assets_from_package_module` (it accepts lists of assets).
creator_report_assets: list[AssetsDefinition] = [_report_asset(region) for region in all_regions().values()]
