"""The architecture page and the README must keep naming what the code actually has."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.definitions import defs
from regions import all_regions
from warehouse_models import PUBLISHED, model_files

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
README = (ROOT / "README.md").read_text()


def test_architecture_diagram_names_every_region_table_and_asset():
    diagram = re.search(r"```mermaid\n(.*?)```", ARCHITECTURE, re.S).group(1)
    for code in all_regions():
        assert code in diagram
    for table in PUBLISHED:
        assert table in diagram
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    for asset in assets:
        assert asset in ARCHITECTURE, f"asset {asset} is not described in docs/architecture.md"


def test_architecture_lists_every_sql_model():
    for path in model_files():
        assert path.stem in ARCHITECTURE, f"model {path.stem} is not described in docs/architecture.md"


def test_readme_keeps_the_two_commands_and_every_region():
    assert "pip install -e . && .venv/bin/kanda demo" in README
    assert "pip install -e '.[test]' && .venv/bin/pytest" in README
    assert "pip install -e '.[test]' && .venv/bin/pytest" in (ROOT / ".ci" / "run").read_text()
    for region in all_regions().values():
        assert f"{region.code} {region.name}" in README


def test_the_diagram_shows_every_layer_and_the_flow_in_order():
    """The diagram stays true to the tree: every package of kanda and every flow step appears in it, and the page
    writes the flow in the order `kanda.flow` runs it."""
    from kanda.flow import STEPS

    diagram = re.search(r"```mermaid\n(.*?)```", ARCHITECTURE, re.S).group(1)
    packages = sorted(p.name for p in (ROOT / "kanda").iterdir() if (p / "__init__.py").exists())
    for package in packages:
        assert f"kanda/{package}" in diagram, f"kanda/{package} is missing from the architecture diagram"
    for step in STEPS:
        assert step in diagram, f"flow step {step} is missing from the architecture diagram"
    assert " -> ".join(STEPS) in ARCHITECTURE
