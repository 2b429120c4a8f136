"""A newcomer's first hour: what `kanda ingest`, `publish`, `generate --help`, errors and `review reprocess
--actor` look like to someone who has just cloned the project."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kanda import flow
from kanda.central.query import run_query
from kanda.cli import app
from kanda.cli_support import FileBytes, estimated_rows, transfer_bar
from kanda.regional.ingest import pending_files
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from tests.support.files import make_files
from tests.support.steward_files import ingest_dirty_egypt

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def table_rows(output: str) -> dict[str, list[str]]:
    """A Rich table's rows by their first cell (the footer row too, under its label)."""
    rows = {}
    for line in output.splitlines():
        if line.count("│") > 2:
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if cells[0]:
                rows[cells[0]] = cells
    return rows


def test_ingest_ends_with_a_table_whose_total_matches_the_store(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    first = make_files(settings, regions=["KE"], rows=900, seed=1)[0].path
    first.rename(first.with_name("ke_first.csv"))
    make_files(settings, regions=["KE"], rows=700, seed=2)
    waiting = pending_files(settings, get_region("KE"))
    assert len(waiting) == 2
    size = sum(p.stat().st_size for p in waiting)
    # a payment listed again as Reversed gives its sale again (a counted duplicate) before its reversal
    events = 1_600 + sum(p.read_text(encoding="utf-8-sig").count(",Reversed,") for p in waiting)
    fed = []  # the progress callback the CLI handed to the region flow (the real flow runs)
    real = flow.run_region

    def watched(*args, **kwargs):
        fed.append(kwargs["progress"])
        return real(*args, **kwargs)

    monkeypatch.setattr(flow, "run_region", watched)
    result = runner.invoke(app, ["ingest", "-r", "KE"], terminal_width=160)
    assert result.exit_code == 0, result.output

    (progress,) = fed
    assert isinstance(progress, FileBytes)
    assert progress.total == size  # a known total, before the first row
    assert progress.completed == progress.total
    rows = table_rows(result.stdout)
    assert "KE: ingestion" in result.stdout
    assert {"ke_first.csv", waiting[1].name} <= rows.keys()
    total = rows["total"]
    with open_store(settings, "KE", read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM sale_events").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    assert total[1] == "2 files"
    assert total[2] == f"{events:,}"  # rows in: every event of both files
    assert (total[3], total[4]) == (f"{loaded:,}", f"{quarantined:,}")
    counted = sum(int(c.replace(",", "")) for c in total[3:6])
    assert counted == events  # loaded + quarantined + duplicates: nothing lost, nothing doubled


@pytest.mark.parametrize("region", ["KE", "GH"])  # a streamed CSV and an XLSX workbook
def test_ingest_progress_moves_through_a_file_towards_its_known_total(settings: Settings, region: str):
    make_files(settings, regions=[region], rows=2_000)  # KANDA_BATCH_ROWS=400: several chunks
    waiting = pending_files(settings, get_region(region))
    size = waiting[0].stat().st_size
    with transfer_bar() as bar:
        progress = FileBytes(bar, f"ingest {region}", waiting)
        seen = []

        def watch(name: str, rows: int) -> None:
            progress(name, rows)
            seen.append(progress.completed)

        flow.run_region(settings, region, steps=("ingest",), progress=watch)
        progress.finish()
        task = bar.tasks[0]
    assert task.total == size
    assert seen == sorted(seen) and len(seen) > 2
    assert any(0 < done < task.total * 0.9 for done in seen)  # it moved during the file, not only at its end
    assert task.completed == task.total
    assert 1_500 <= estimated_rows(waiting[0].parent / "processed" / waiting[0].name) <= 2_600


def test_publish_ends_with_a_table_of_rows_per_rollup(settings: Settings):
    make_files(settings, regions=["NG"], rows=300)
    assert runner.invoke(app, ["ingest", "-r", "NG"]).exit_code == 0
    result = runner.invoke(app, ["publish", "-r", "NG", "-r", "TZ"], terminal_width=160)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    published = run_query(settings, "SELECT count(*) AS n FROM rollups.creator_daily WHERE region = 'NG'")
    assert rows["NG"][1] == "published"
    assert rows["NG"][3] == f"{published.to_pylist()[0]['n']:,}"  # creator daily rows, as the central layer says
    assert rows["NG"][-1].startswith("NG-")
    assert rows["TZ"][1] == "no store yet"
    again = table_rows(runner.invoke(app, ["publish", "-r", "NG"], terminal_width=160).stdout)
    assert again["NG"][1] == "up to date"


def test_generate_help_reads_like_a_person_wrote_it():
    result = runner.invoke(app, ["generate", "--help"], terminal_width=120)
    text = result.stdout
    assert result.exit_code == 0
    assert not re.search(r"<[a-z]+[^>]*>", text), text  # no <list[str]>, <int range>, <bool> ...
    lines = {line.split()[1]: " ".join(line.split()[1:]) for line in text.splitlines() if line.startswith("│ --")}
    assert lines["--region"].startswith("--region -r CODE Region code")
    assert lines["--start"].startswith("--start YYYY-MM-DD First local day")
    assert lines["--dirt-mix"].startswith("--dirt-mix KIND=SHARE,... Exact shares per kind")
    assert lines["--help"] == "--help Show this message and exit. │"


def _commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, typer.core.TyperGroup):
            yield from _commands(command, (*path, name))


def test_no_help_page_shows_bool_beside_a_flag():
    for path in _commands(typer.main.get_command(app)):
        text = runner.invoke(app, [*path, "--help"], terminal_width=120).stdout
        assert "<bool>" not in text, path


def test_usage_errors_are_typers_box_and_kandas_errors_one_line(settings: Settings):
    usage = runner.invoke(app, ["ingest", "-r", "XX"])
    assert usage.exit_code == 2
    assert "Usage:" in usage.output and "unknown region(s) XX" in usage.output
    assert not re.search(r"^Error:", usage.output, re.MULTILINE)  # the box only, no extra line
    for args in (["generate", "--dirt-mix", "bogus=1"], ["publish", "--rebuild"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Usage:" in result.output, args

    # kanda's own failures, as the console script prints them: one line, no traceback
    code = "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"
    said = {
        "KANDA_LOCK_WAIT": ("soon", "Input should be a valid number, unable to parse string as a number"),
        # refused with the settings, not by DuckDB's parser once a store opens
        "KANDA_INGEST_MEMORY": ("lots", "should be a memory size such as 512MB, 1.5GB or 50%"),
    }
    for variable, (value, message) in said.items():
        bad = subprocess.run(
            [sys.executable, "-c", code, "status"],
            env={**os.environ, variable: value},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert bad.returncode == 1
        assert bad.stderr.splitlines() == [f"Error: {variable}={value!r}: {message}"]


def test_review_reprocess_records_the_actor_it_was_given(settings: Settings, tmp_path: Path):
    def review(*args: str) -> dict:
        result = runner.invoke(app, ["review", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    ingest_dirty_egypt(settings, tmp_path / "in")
    review("enqueue")
    (bad,) = review("list", "--rule", "missing_or_unreadable", "--region", "EG")["items"]
    review("fix", str(bad["id"]), "--set", "amount_minor=25000", "--approve", "--actor", "ops")

    (eg,) = review("reprocess", "-r", "EG", "--actor", "amina")["regions"]
    assert eg["loaded"] == [bad["id"]]
    history = [(h["actor"], h["action"]) for h in review("show", str(bad["id"]))["history"]]
    assert history[-1] == ("amina", "reprocess")


def test_dependencies_sit_where_they_are_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    extras = {name: " ".join(deps) for name, deps in project["optional-dependencies"].items()}
    assert "openpyxl" not in base and "openpyxl" in extras["test"]
    assert "matplotlib" not in base and {"matplotlib", "jupyterlab"} <= set(re.findall(r"[a-z]+", extras["notebook"]))
    assert "tenacity" in base
    runtime = [
        p for d in ("kanda", "regions", "quality", "pipelines", "warehouse_models") for p in (ROOT / d).rglob("*.py")
    ]
    for path in runtime:  # what a plain `pip install -e .` must be able to import
        imports = re.findall(r"^\s*(?:import|from) (openpyxl|matplotlib)\b", path.read_text(), re.MULTILINE)
        assert not imports, path
