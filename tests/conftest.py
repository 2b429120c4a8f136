"""Shared fixtures: every test gets its own KANDA_HOME, so stores, catalogs and locks never leak between tests.

The one exception is `demo_run`: the README's main command, run once per test run (shared by the pytest-xdist
workers) in a home of its own that the tests reading it never change (each demo costs about 40 s on two cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from kanda.settings import Settings, load_settings
from tests.support.demo import DemoRun

#: The modules whose tests read `demo_run`: one worker takes them all, so no worker waits on the demo's lock while
#: another runs it (about a minute of an idle core).
DEMO_MODULES = frozenset(
    {"tests/test_cli.py", "tests/pipelines/test_definitions.py", "tests/reports/test_demo_reports.py"}
)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadscope` (a module's tests on one worker), with the demo's modules as one unit of work."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class DemoModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "demo_run" if nodeid.split("::")[0] in DEMO_MODULES else super()._split_scope(nodeid)

    return DemoModulesTogether(config, log)


@pytest.fixture(scope="session", autouse=True)
def no_home_outside_the_test_run(tmp_path_factory: pytest.TempPathFactory):
    """A test that loads settings without the `settings` fixture would otherwise use the shell's KANDA_HOME (an
    operator's real data) or `./.kanda` in the checkout: point every such load at a home of the session's own."""
    saved = os.environ.get("KANDA_HOME")
    os.environ["KANDA_HOME"] = str(tmp_path_factory.mktemp("session") / "home")
    yield
    if saved is None:
        os.environ.pop("KANDA_HOME", None)
    else:
        os.environ["KANDA_HOME"] = saved


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KANDA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KANDA_BUYER_SALT", "test-salt")
    monkeypatch.delenv("KANDA_CATALOG_URL", raising=False)
    monkeypatch.delenv("KANDA_WAREHOUSE", raising=False)
    monkeypatch.delenv("KANDA_REGIONS", raising=False)  # a developer's host setting would narrow the commands
    monkeypatch.setenv("KANDA_BATCH_ROWS", "400")
    current = load_settings()
    current.ensure_dirs()
    return current


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright. CI installs Chromium and must run these tests: there, a missing
    browser fails; on a developer machine without Chromium the browser tests are skipped with the fix."""
    import os

    from kanda.web.browser import chromium_path, launch_chromium

    if chromium_path() is None:
        message = "no Chromium: `apt-get install chromium` (as .ci/run does) or set KANDA_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`kanda demo` as a new user runs it: the installed command, in a real process, on an empty home, with none of
    the shell's KANDA_* or DAGSTER_HOME settings. Tests that read it must not change its home.

    Run once for the whole test run: the first pytest-xdist worker to need it runs it under a file lock in the
    run's shared temporary folder and leaves its output there; the others wait for the lock and read that."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's own base folder is in
    shared = root / "kanda-demo"
    with FileLock(str(root / "kanda-demo.lock")):
        record = shared / "run.json"
        if record.exists():
            saved = json.loads(record.read_text(encoding="utf-8"))
            return DemoRun(Path(saved["home"]), saved["stdout"], saved["stderr"], saved["returncode"])
        home = shared / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_") and k != "DAGSTER_HOME"}
        env.update(KANDA_HOME=str(home), COLUMNS="200")
        kanda = shutil.which("kanda", path=str(Path(sys.executable).parent)) or "kanda"
        command = [kanda, "demo", "--rows", "400", "--days", "3"]
        shared.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        run = DemoRun(home, done.stdout, done.stderr, done.returncode)
        saved = {"home": str(home), "stdout": run.stdout, "stderr": run.stderr, "returncode": run.returncode}
        record.write_text(json.dumps(saved), encoding="utf-8")
        return run
