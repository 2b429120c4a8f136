"""Where kanda keeps its runtime data, read from the environment once.

Everything a run writes lives under one data directory (`KANDA_HOME`, default `./.kanda`) so that a checkout stays
clean and a whole installation can be moved or wiped as one folder. The central catalog is any SQLAlchemy URL:
a SQLite file under `KANDA_HOME` by default, PostgreSQL at scale.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    warehouse_uri: str
    buyer_salt: str
    duckdb_memory_limit: str
    batch_rows: int
    lock_wait_seconds: float = 600.0

    @property
    def stores_dir(self) -> Path:
        return self.home / "stores"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def rejected_dir(self) -> Path:
        return self.home / "rejected"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    def store_path(self, region: str) -> Path:
        return self.stores_dir / f"{region.lower()}.duckdb"

    def landing(self, region: str) -> Path:
        from regions import get_region  # regions imports kanda.money; imported here to keep settings leaf-level

        return get_region(region).landing_folder(self.landing_dir)

    def ensure_dirs(self) -> None:
        for folder in (self.stores_dir, self.landing_dir, self.rejected_dir, self.registry_dir, self.locks_dir):
            folder.mkdir(parents=True, exist_ok=True)


def _salt(home: Path) -> str:
    """A per-installation salt for buyer references, unless one is given.

    Buyer hashes must be stable across runs (duplicates and repeat buyers are recognised by them) yet useless
    outside this installation, so the salt is created once and kept beside the data it protects.
    """
    given = os.environ.get("KANDA_BUYER_SALT")
    if given:
        return given
    path = home / "buyer_salt"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(16)
    path.write_text(salt)
    path.chmod(0o600)
    return salt


def load_settings(home: Path | str | None = None) -> Settings:
    """Settings from the environment; `home` overrides `KANDA_HOME` (the catalog and warehouse follow it)."""
    home = Path(home if home is not None else os.environ.get("KANDA_HOME", ".kanda")).expanduser().resolve()
    catalog_url = os.environ.get("KANDA_CATALOG_URL", f"sqlite:///{home / 'catalog' / 'catalog.db'}")
    warehouse = os.environ.get("KANDA_WAREHOUSE", (home / "warehouse").as_uri())
    return Settings(
        home=home,
        catalog_url=catalog_url,
        warehouse_uri=warehouse,
        buyer_salt=_salt(home),
        duckdb_memory_limit=os.environ.get("KANDA_DUCKDB_MEMORY", "2GB"),
        batch_rows=int(os.environ.get("KANDA_BATCH_ROWS", "500000")),
        lock_wait_seconds=float(os.environ.get("KANDA_LOCK_WAIT", "600")),
    )
