"""`kanda reports` (placeholder until the reports feature lands)."""

from __future__ import annotations


def reports_command() -> None:
    """Write or deliver creators' daily reports."""
    raise NotImplementedError
