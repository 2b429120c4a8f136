"""What the session's one `kanda demo` left for the tests that read it (the `demo_run` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoRun:
    home: Path
    stdout: str
    stderr: str
    returncode: int
