"""Writers render truth chunks (`regions.synthetic.core.truth_chunks`) in each rail's native file format.

A writer streams: it appends chunk after chunk to an open file, so file size is bounded by disk, not memory.
It adds its format's own dirt (BOM, Totals rows, page headers, separators, header variants) and renders each truth
row's `corruption` in its format's way. Each module registers one function under its `source_format` name; a
declarative rail (a `spec.yaml`, or a spec inline in a region file) gets the spec engine's writer.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from regions import RegionConfig

#: (path, truth chunks, region, rng) -> None. The file name and extension are chosen by the caller from
#: `EXTENSIONS`.
Writer = Callable[[Path, Iterator[pl.DataFrame], RegionConfig, np.random.Generator], None]

WRITERS: dict[str, Writer] = {}
EXTENSIONS: dict[str, str] = {}


def register(format_name: str, extension: str) -> Callable[[Writer], Writer]:
    def wrap(writer: Writer) -> Writer:
        WRITERS[format_name] = writer
        EXTENSIONS[format_name] = extension
        return writer

    return wrap


def get_writer(format_name: str) -> tuple[Writer, str]:
    from regions.rails import inline_spec, rail_names, spec_rail_path

    spec = inline_spec(format_name)
    if spec is None and format_name not in WRITERS and (path := spec_rail_path(format_name)) is not None:
        from regions.spec.model import load_spec

        spec = load_spec(path)
    if spec is not None and not (Path(__file__).parents[1] / "rails" / format_name / "writer.py").exists():
        from regions.spec.writer import write_spec

        return functools.partial(write_spec, spec), spec.format

    here = Path(__file__).parents[1] / "rails"
    for name in rail_names():
        if (here / name / "writer.py").exists():
            importlib.import_module(f"regions.rails.{name}.writer")

    return WRITERS[format_name], EXTENSIONS[format_name]
