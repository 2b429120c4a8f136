"""Adapters by format name. A new format is one module here plus one line in `ADAPTERS`."""

from __future__ import annotations

from regions.adapters.base import Adapter, AdapterChunk, FileRejected, ReadContext

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
    from regions.adapters import (  # noqa: F401
        bkash,
        gumroad,
        jazzcash,
        momo,
        mpesa,
        paystack,
        stripe,
    )


__all__ = ["ADAPTERS", "Adapter", "AdapterChunk", "FileRejected", "ReadContext", "get_adapter", "register"]
