"""`kanda serve`: one HTTP server for the steward pages and the analysts' read-only API."""
