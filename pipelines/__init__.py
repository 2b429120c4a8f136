"""Dagster orchestration for kanda: thin glue around the core functions in `kanda`, `quality` and `regions`.

Nothing here computes data. Assets call the same functions the `kanda` CLI calls (ingest, build models,
publish), so a run in the UI and a run at the terminal do exactly the same work and leave the same ledger.
The dependency only goes one way: core packages never import `pipelines`.
"""
