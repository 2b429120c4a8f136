"""The one resource every asset, check and sensor shares: where kanda's data lives.

Declared once in `definitions.py` under the key `kanda`. By default it resolves `KANDA_HOME` (and the other
`KANDA_*` variables) exactly like the CLI, so the UI and the terminal act on the same stores; `home` lets a test
or a second deployment point at another data directory without touching the process environment of others.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from kanda.settings import Settings, load_settings


class KandaSettings(ConfigurableResource):
    """kanda `Settings` for this deployment, optionally with another data directory than `KANDA_HOME`."""

    home: str | None = Field(
        default=None,
        description="Data directory to use instead of KANDA_HOME (default: KANDA_HOME, else ./.kanda).",
    )

    def load(self) -> Settings:
        """The settings, derived the same way as the CLI's (catalog and warehouse follow `home`)."""
        return load_settings(self.home)
