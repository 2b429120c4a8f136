"""Who is acting on the review queue, and what they may see and change.

Region scoping and roles are enforced where the actions are (the review service), not only in the pages, so the
web, the CLI and any future client get the same rules: a Kenya steward can neither read nor change a Nigeria
record, and a viewer changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["steward", "viewer"]


class PermissionDenied(PermissionError):
    """The actor may not do this (wrong role, or a region outside their scope)."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role
    regions: frozenset[str] | None = None  # None: every region

    def can_see(self, region: str) -> bool:
        return self.regions is None or region.upper() in self.regions

    def can_change(self, region: str) -> bool:
        return self.role == "steward" and self.can_see(region)

    def require_change(self, region: str) -> None:
        if not self.can_change(region):
            raise PermissionDenied(f"{self.name} ({self.role}) may not change {region.upper()} records")
