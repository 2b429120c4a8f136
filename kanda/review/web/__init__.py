"""Steward pages (placeholder until the review web feature lands)."""

from __future__ import annotations

from fastapi import FastAPI

from kanda.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the steward pages, sessions and CSRF protection."""
