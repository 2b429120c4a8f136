"""SQL models, run in layer order (staging -> facts -> rollups) inside each regional store.

Plain SQL files, one model each, named by layer; `kanda.regional.models` runs them. Seeds (small reference tables
shipped as CSV, like dbt's) live in `seeds/`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LAYERS = ("staging", "facts", "rollups")
#: The rollups published to the central layer, with the key that identifies a row within a region and day.
PUBLISHED: dict[str, tuple[str, ...]] = {
    "creator_daily": ("region", "local_date", "creator_id", "currency"),
    "product_daily": ("region", "local_date", "creator_id", "product_id", "currency"),
    "region_daily": ("region", "local_date", "currency"),
    "channel_daily": ("region", "local_date", "channel", "currency"),
}


def root() -> Path:
    return Path(str(resources.files("warehouse_models")))


def model_files() -> list[Path]:
    return [path for layer in LAYERS for path in sorted((root() / layer).glob("*.sql"))]


def seed(name: str) -> Path:
    return root() / "seeds" / f"{name}.csv"


def fingerprint() -> str:
    """A short hash of every model and seed file: a changed model makes the next publish build again."""
    import hashlib

    digest = hashlib.sha256()
    for path in [*model_files(), *sorted((root() / "seeds").glob("*.csv"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
