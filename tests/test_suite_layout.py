"""What the parallel test run relies on that pytest itself cannot check."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import DEMO_MODULES

ROOT = Path(__file__).resolve().parents[1]


def takes_fixture(path: Path, name: str) -> bool:
    """Whether a function (test or fixture) of the module asks for the fixture `name` as a parameter."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    return any(name in {arg.arg for arg in function.args.args} for function in functions)


def test_every_module_that_reads_the_demo_is_scheduled_with_the_others():
    """A module reading `demo_run` outside `DEMO_MODULES` would run on another worker, which then waits idle on the
    demo's lock while the first runs it; a module listed that no longer reads it holds its worker for nothing."""
    readers = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if takes_fixture(path, "demo_run")
    }
    assert readers == DEMO_MODULES
