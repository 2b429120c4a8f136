"""`kanda keys ...` (placeholder until the analyst feature lands)."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="API keys for analysts.", no_args_is_help=True)
