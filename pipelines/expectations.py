"""Great Expectations suites as Dagster asset checks (placeholder until that feature lands)."""
