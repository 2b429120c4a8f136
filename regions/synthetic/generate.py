"""`kanda generate`: the registry plus one native file per region, streamed to disk chunk by chunk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig, all_regions
from regions.synthetic.core import DirtMix, Registry, make_registry, truth_chunks
from regions.synthetic.writers import get_writer

#: Called with (region code, rows written so far) after each chunk.
GenerateProgress = Callable[[str, int], None]


@dataclass
class GeneratedFile:
    region: str
    path: Path
    rows: int


def generate(
    *,
    landing_dir: Path,
    registry_dir: Path,
    regions: list[str] | None = None,
    start: dt.date,
    days: int,
    rows_per_region: int,
    seed: int,
    dirt: DirtMix | None = None,
    creators_per_region: int = 12,
    chunk_rows: int = 250_000,
    progress: GenerateProgress | None = None,
    txn_offset: int = 0,
) -> list[GeneratedFile]:
    """Write the registry and each region's file into its landing folder under `landing_dir`; deterministic by seed.

    `txn_offset` numbers the files' transactions from after that many (new sales following an earlier file).
    """
    registry = make_registry(seed, creators_per_region=creators_per_region)
    chosen = [all_regions()[c.upper()] for c in regions] if regions else list(all_regions().values())
    registry.write(registry_dir, [r.code for r in chosen] if regions else None)
    files = []
    for region in chosen:
        files.append(
            write_region_file(
                region,
                registry,
                landing_dir,
                start=start,
                days=days,
                rows=rows_per_region,
                seed=seed,
                dirt=dirt or DirtMix(),
                chunk_rows=chunk_rows,
                progress=progress,
                txn_offset=txn_offset,
            )
        )
    return files


def write_region_file(
    region: RegionConfig,
    registry: Registry,
    landing_dir: Path,
    *,
    start: dt.date,
    days: int,
    rows: int,
    seed: int,
    dirt: DirtMix,
    chunk_rows: int = 250_000,
    progress: GenerateProgress | None = None,
    name: str | None = None,
    txn_offset: int = 0,
) -> GeneratedFile:
    """One region's file; `txn_offset` starts its transaction numbers further on (a later file of new sales)."""
    writer, extension = get_writer(region.source_format)
    folder = region.landing_folder(landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    later = f"_after{txn_offset}" if txn_offset else ""  # never the earlier file's name: it would be overwritten
    path = folder / (name or f"{region.code.lower()}_{start:%Y%m%d}_{days}d_seed{seed}{later}.{extension}")
    chunks = truth_chunks(
        region,
        registry,
        start=start,
        days=days,
        rows=rows,
        seed=seed,
        dirt=dirt,
        chunk_rows=chunk_rows,
        txn_offset=txn_offset,
    )
    writer(path, _counted(chunks, region.code, progress), region, np.random.default_rng([seed, 99]))
    return GeneratedFile(region.code, path, rows)


def _counted(chunks: Iterator[pl.DataFrame], region: str, progress: GenerateProgress | None) -> Iterator[pl.DataFrame]:
    done = 0
    for chunk in chunks:
        yield chunk
        done += chunk.height
        if progress:
            progress(region, done)
