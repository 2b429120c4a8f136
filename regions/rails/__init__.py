"""Rails by format name. Each rail is one folder here (`<rail>/spec.yaml` or `<rail>/reader.py`, `<rail>/samples/`,
perhaps `<rail>/writer.py`); the folders are discovered, so a new rail registers itself by existing.

A rail folder holding a `spec.yaml` (and no `reader.py`) is a declarative rail: the spec engine reads it, and
writes it unless a `writer.py` beside the spec renders what the generic writer cannot (refunds folded onto their
charge's row). Its format name is the spec's `name` (the folder name by default), so a rail that became a spec
keeps the `source_format` its regions, stores and notations already use.

A region file may also carry its rail spec inline (`source_format: spec:<code>`); such a rail is looked up
through the region, so it follows `KANDA_REGIONS_DIR` rather than being registered once per process.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from regions.rails.base import Adapter, AdapterChunk, FileRejected, ReadContext

if TYPE_CHECKING:
    from regions import RegionConfig

ADAPTERS: dict[str, Adapter] = {}
#: Rail folders whose `spec.yaml` is registered (read once per process).
_SPEC_FOLDERS: set[str] = set()
#: A region file's inline rail is named `spec:<region code, lower case>`.
INLINE_PREFIX = "spec:"


def register(adapter: Adapter) -> Adapter:
    ADAPTERS[adapter.format_name] = adapter
    return adapter


def get_adapter(format_name: str) -> Adapter:
    inline = inline_spec(format_name)
    if inline is not None:
        from regions.spec.engine import SpecAdapter

        return SpecAdapter(inline, format_name)
    _load_builtin()
    try:
        return ADAPTERS[format_name]
    except KeyError:
        known = sorted({*ADAPTERS, *inline_rail_names()})
        raise KeyError(f"no adapter for source format {format_name!r}; known: {known}") from None


def states_fees(region: RegionConfig) -> bool:
    """Whether the region's rail states fees in its files. When it does not, its events carry fee 0 and net is
    before the rail's charges: the store's `region_info`, the reports, `kanda regions list` and the GX suites all
    ask here, so they cannot disagree."""
    return get_adapter(region.source_format).states_fees


def fees_by_rail() -> dict[str, bool]:
    """Whether each rail states fees, by format name (what the events' `source` holds): every shipped rail and
    every region's inline rail. Each batch records its rails' answers at its commit (`batch_rails`), which the
    rollups' `fees_stated` reads per event, so events keep the answer of the reader that read them."""
    _load_builtin()
    flags = {name: adapter.states_fees for name, adapter in ADAPTERS.items()}
    flags |= {name: get_adapter(name).states_fees for name in inline_rail_names()}
    return dict(sorted(flags.items()))


def source_states_fees(source: str | None, rails: dict[str, bool] | None = None) -> bool:
    """Whether the rail named by an event's `source` states fees (`rails`: a `fees_by_rail()` already read). A
    rail kanda does not know (any more) does not count as stating them, as in the models."""
    return (fees_by_rail() if rails is None else rails).get(source or "", False)


def running_total_rails() -> frozenset[str]:
    """The rails (by format name, what the events' `source` holds) whose files restate money going back as a
    running total (`Adapter.running_totals`): every shipped rail and every region's inline rail."""
    _load_builtin()
    names = [name for name, adapter in ADAPTERS.items() if adapter.running_totals]
    return frozenset(names + [name for name in inline_rail_names() if get_adapter(name).running_totals])


def inline_spec(format_name: str):  # -> RailSpec | None (not annotated: regions.spec imports regions)
    """The rail spec a region file carries inline under this format name, if any."""
    from regions import all_regions

    for region in all_regions().values():
        if region.rail_spec is not None and region.source_format == format_name:
            return region.rail_spec
    return None


def inline_rail_names() -> list[str]:
    from regions import all_regions

    return sorted(r.source_format for r in all_regions().values() if r.rail_spec is not None)


def _load_builtin() -> None:
    # Imported lazily so that reading one region's config does not import every format's dependencies.
    here = Path(__file__).parent
    for name in rail_names():
        if (here / name / "reader.py").exists():
            importlib.import_module(f"regions.rails.{name}.reader")
        else:
            from regions.spec.engine import SpecAdapter
            from regions.spec.model import load_spec

            if name in _SPEC_FOLDERS:
                continue
            spec = load_spec(here / name / "spec.yaml")
            _SPEC_FOLDERS.add(name)
            if spec.name not in ADAPTERS:
                register(SpecAdapter(spec, spec.name))


def spec_rail_path(name: str) -> Path | None:
    """The `spec.yaml` of a shipped declarative rail, by folder name."""
    path = Path(__file__).parent / name / "spec.yaml"
    return path if path.exists() else None


def rail_names() -> list[str]:
    """Every rail folder under `regions/rails/`: a package with a `reader` module, or a `spec.yaml`."""
    here = Path(__file__).parent
    return sorted({p.parent.name for pattern in ("*/reader.py", "*/spec.yaml") for p in here.glob(pattern)})


__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterChunk",
    "FileRejected",
    "ReadContext",
    "fees_by_rail",
    "get_adapter",
    "inline_spec",
    "rail_names",
    "register",
    "running_total_rails",
    "source_states_fees",
    "states_fees",
]
