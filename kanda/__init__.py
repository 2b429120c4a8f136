"""kanda: regional creator-sales pipeline. Core logic is plain Python and SQL; Dagster glue lives in `pipelines/`."""

__version__ = "0.1.0"
