"""Analysts' access to the central rollups: HTTP API, API keys and the BI snapshot file."""
