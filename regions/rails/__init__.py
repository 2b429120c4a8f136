"""Rails by format name. Each rail is one folder here (`<rail>/reader.py`, `<rail>/writer.py`, `<rail>/samples/`);
the folders are discovered, so a new rail registers itself by existing."""

from __future__ import annotations

import importlib
from pathlib import Path

from regions.rails.base import Adapter, AdapterChunk, FileRejected, ReadContext

ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    ADAPTERS[adapter.format_name] = adapter
    return adapter


def get_adapter(format_name: str) -> Adapter:
    _load_builtin()
    try:
        return ADAPTERS[format_name]
    except KeyError:
        raise KeyError(f"no adapter for source format {format_name!r}; known: {sorted(ADAPTERS)}") from None


def _load_builtin() -> None:
    # Imported lazily so that reading one region's config does not import every format's dependencies.
    for name in rail_names():
        importlib.import_module(f"regions.rails.{name}.reader")


def rail_names() -> list[str]:
    """Every rail folder under `regions/rails/` (a package with a `reader` module)."""
    here = Path(__file__).parent
    return sorted(p.parent.name for p in here.glob("*/reader.py"))


__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterChunk",
    "FileRejected",
    "ReadContext",
    "get_adapter",
    "rail_names",
    "register",
]
