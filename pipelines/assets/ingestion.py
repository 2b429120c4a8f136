"""Ingestion layer: every file waiting in a region's landing folder, loaded into that region's store."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from kanda.regional.ingest import IngestReport, ingest_landing
from pipelines.partitions import region_partitions
from pipelines.resources import KandaSettings

COUNTS = ("rows_in", "loaded", "quarantined", "duplicates", "ignored")


@asset(
    partitions_def=region_partitions,
    group_name="regional_ingestion",
    kinds={"duckdb", "python"},
    description=(
        "Native payment files from the region's landing folder, validated against the sale contract and loaded"
        " into the regional DuckDB store (bad rows quarantined, duplicates counted, each file exactly once)."
    ),
)
def regional_sales(context: AssetExecutionContext, kanda: KandaSettings) -> MaterializeResult:
    """Ingest the whole landing folder in one run, as the sensor batches it: one store open, one lock."""
    report = ingest_landing(kanda.load(), context.partition_key)
    metadata = ingest_metadata(report)
    for name, reason in metadata["rejected"].data.items():
        context.log.warning(f"{report.region}: rejected {name}: {reason}")
    return MaterializeResult(metadata=metadata)


def ingest_metadata(report: IngestReport) -> dict[str, MetadataValue]:
    """Totals over the files of this run, the per-file results, and why any file was refused whole."""
    totals = {name: sum(getattr(f, name) for f in report.files) for name in COUNTS}
    released = report.released.loaded if report.released else 0
    return {
        "files": MetadataValue.int(len(report.files)),
        **{name: MetadataValue.int(value) for name, value in totals.items()},
        "already_ingested": MetadataValue.int(sum(f.status == "already_ingested" for f in report.files)),
        "released_held": MetadataValue.int(released),
        "rejected": MetadataValue.json({f.file: f.reason for f in report.files if f.status == "rejected"}),
        "file_results": MetadataValue.json([f.as_json() for f in report.files]),
    }
