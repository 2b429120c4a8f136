"""The folders are the layers: each imports only from layers below it, and no module imports itself in a circle.

Read from the source (every `import` and `from ... import`, including those inside functions), so a lazy import
cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("regions", "quality", "warehouse_models", "kanda", "pipelines")

#: Lowest first. A module may import its own layer or any layer below; the audiences may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("regions", "warehouse_models"),
    ("quality",),
    ("kanda", "kanda.settings", "kanda.cli_support", "kanda.csv_safety", "kanda.mail"),
    ("kanda.regional",),
    ("kanda.central",),
    ("kanda.checks",),
    ("kanda.reports", "kanda.review", "kanda.analyst"),
    ("kanda.flow",),
    ("kanda.cli", "kanda.demo", "kanda.web"),
    ("pipelines",),
]
AUDIENCES = ("kanda.reports", "kanda.review", "kanda.analyst")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules this module imports (resolved to the longest known module name)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    best, depth = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best >= 0, f"{name} belongs to no layer: add it to LAYERS"
    return best


def audience_of(name: str) -> str | None:
    return next((a for a in AUDIENCES if name == a or name.startswith(a + ".")), None)


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_every_import_points_down_or_sideways_within_a_layer():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} -> {target}")
            elif audience_of(name) and audience_of(target) and audience_of(name) != audience_of(target):
                upward.append(f"{name} -> {target} (one audience importing another)")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_regions_quality_and_models_import_nothing_from_kanda():
    offenders = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if name.split(".")[0] in {"regions", "quality", "warehouse_models"}
        for target in targets
        if target.split(".")[0] in {"kanda", "pipelines"}
    ]
    assert not offenders, offenders


def test_nothing_imports_pipelines():
    offenders = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if not name.startswith("pipelines")
        for target in targets
        if target.startswith("pipelines")
    ]
    assert not offenders, offenders


def test_no_import_cycles():
    # Package __init__ modules are left out: importing `a.b` runs `a/__init__`, which is not a design dependency.
    edges = {
        name: {t for t in targets if not (ROOT / t.replace(".", "/") / "__init__.py").exists()}
        for name, targets in graph().items()
    }
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_checker_sees_an_upward_import(tmp_path: Path):
    """The rule is not vacuous: an upward import in a lower layer is caught."""
    path = tmp_path / "store.py"
    path.write_text("from kanda.central.publish import publish_region\n")
    targets = imports_of("kanda.regional.store", path, set(modules()))
    assert "kanda.central.publish" in targets
    assert layer_of("kanda.central.publish") > layer_of("kanda.regional.store")
