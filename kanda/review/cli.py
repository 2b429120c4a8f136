"""`kanda review ...` (placeholder until the review feature lands)."""

from __future__ import annotations

import typer

review_app = typer.Typer(help="Review quarantined records.", no_args_is_help=True)
