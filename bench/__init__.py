"""Benchmarks that compare kanda's ingest with the physical reference (a raw DuckDB CSV load)."""
