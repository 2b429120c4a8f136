"""Native files for tests, generated into a home's landing folders as `kanda generate` does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kanda.settings import Settings
from regions.synthetic.core import DirtMix
from regions.synthetic.generate import GeneratedFile, generate

START = dt.date(2026, 10, 5)


def make_files(
    settings: Settings,
    *,
    regions: list[str] | None = None,
    rows: int = 600,
    days: int = 3,
    seed: int = 7,
    dirt: DirtMix | None = None,
    start: dt.date = START,
) -> list[GeneratedFile]:
    """Generate native files into the landing folders and the registry, as `kanda generate` does."""
    return generate(
        landing_dir=settings.landing_dir,
        registry_dir=settings.registry_dir,
        regions=regions,
        start=start,
        days=days,
        rows_per_region=rows,
        seed=seed,
        dirt=dirt or DirtMix().scaled(3),
    )


def ingest_written(settings: Settings, region: str, path: Path, content: str, *, registry_rows: int = 50):
    """The region's registry (as `make_files` generates it), then `path` written with `content` and ingested: a
    hand-written file through the whole boundary in one step. Returns its file report."""
    from kanda.regional.ingest import ingest_files

    make_files(settings, regions=[region], rows=registry_rows)
    path.write_text(content)
    (report,) = ingest_files(settings, region, [path]).files
    return report
