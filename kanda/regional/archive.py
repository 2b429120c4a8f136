"""Where a region's landed files are kept once read (`processed/`), and how a kept file is known again: by its
content hash, which the ledger records for every file batch."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kanda.settings import Settings


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def processed_dir(settings: Settings, region: str) -> Path:
    return settings.landing(region) / "processed"


def kept_under_batch(done: Path, name: str, tag: str) -> Path:
    """The name a file is kept under when an earlier file of its name, with other content, is kept already (rails
    reuse export names: `statement.csv` every month)."""
    path = Path(name)
    return done / f"{path.stem}.{tag}{path.suffix}"


def archived_copy(settings: Settings, region: str, batch_id: str, file_name: str, digest: str) -> Path | None:
    """The kept copy of a batch's file, if it is still there with the content the batch read."""
    done = processed_dir(settings, region)
    for path in (done / Path(file_name).name, kept_under_batch(done, file_name, batch_id)):
        if path.is_file() and file_hash(path) == digest:
            return path
    return None
