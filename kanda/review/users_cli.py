"""`kanda users ...` (placeholder until the steward accounts land)."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Steward and viewer accounts.", no_args_is_help=True)
