"""The analysts' read-only HTTP API (placeholder until the analyst feature lands)."""

from __future__ import annotations

from fastapi import FastAPI

from kanda.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the `/api` routes."""
