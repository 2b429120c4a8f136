"""`pip install kanda` (not only an editable checkout) ships every file the packages read at run time: the rail
specs, the Data Docs assets, templates, translations, SQL models. A wheel that missed the rail specs made
`kanda regions list` fail with a traceback on an installed kanda."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kanda", "regions", "quality", "pipelines", "warehouse_models")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the tracked files")
def test_a_built_wheel_ships_every_data_file_of_the_packages(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES, "pyproject.toml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    source = tmp_path / "src"
    for name in tracked:  # a copy of the tracked files: building in the checkout would leave build/ behind
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(  # in pip's own build environment (setuptools from pyproject's build-system), as an install does
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
    )
    (wheel,) = tmp_path.glob("kanda-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = [n for n in tracked if n != "pyproject.toml" and not n.endswith(".py")]
    assert [n for n in data if n not in shipped] == []
    assert any(n.endswith("rails/stripe/spec.yaml") for n in shipped)  # the listing above is not empty
