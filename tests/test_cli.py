"""The `kanda` command as a user runs it: JSON reports, exit codes, query formats, and the demo end to end."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from kanda.checks.gx_runner import latest_results
from kanda.cli import app
from kanda.cli.query import plain_arguments
from kanda.regional.store import open_store
from kanda.settings import Settings, load_settings
from regions import all_regions
from tests.support.demo import DemoRun
from tests.support.files import make_files

runner = CliRunner()


def test_ingest_json_report_and_exit_codes(settings: Settings, tmp_path: Path):
    (generated,) = make_files(settings, regions=["EG"], rows=200)
    ok = runner.invoke(app, ["ingest", "--region", "eg", str(generated.path), "--json"])
    assert ok.exit_code == 0, ok.output
    (entry,) = json.loads(ok.stdout)["files"]
    assert entry["status"] == "loaded"
    assert entry["rows_in"] == entry["loaded"] + entry["quarantined"] + entry["duplicates"]
    assert set(entry) >= {"file", "status", "rows_in", "loaded", "quarantined", "duplicates", "reason"}

    bad = tmp_path / "empty.csv"
    bad.write_text("")
    mixed = runner.invoke(app, ["ingest", "-r", "EG", str(generated.path), str(bad), "--json"])
    assert mixed.exit_code == 1
    statuses = [(f["status"], f["kind"], f["reason"]) for f in json.loads(mixed.stdout)["files"]]
    assert statuses[0][0] == "already_ingested"
    assert statuses[1][:2] == ("rejected", "empty_file") and statuses[1][2].startswith("the file is empty")

    assert runner.invoke(app, ["ingest", "-r", "XX", str(generated.path)]).exit_code == 2
    assert runner.invoke(app, ["ingest", str(generated.path)]).exit_code == 2  # --region is required


def test_an_option_taking_one_value_refuses_a_second(settings: Settings):
    """Click kept the last of a repeated option: `kanda ingest -r EG -r KE` ingested KE alone with exit 0, and EG's
    files waited unseen while the publish after it went out."""
    make_files(settings, regions=["EG", "KE"], rows=50)
    twice = runner.invoke(app, ["ingest", "-r", "EG", "-r", "KE"])
    assert twice.exit_code == 2 and "given more than once" in twice.output, twice.output
    assert not any(settings.store_path(code).exists() for code in ("EG", "KE"))  # nothing half-done
    assert runner.invoke(app, ["query", "select 1", "-f", "json", "--format", "csv"]).exit_code == 2
    assert plain_arguments(["select 1", "-f", "json", "--format", "csv"]) is None  # the fast path defers to Typer
    assert runner.invoke(app, ["publish", "-r", "EG", "-r", "KE"]).exit_code == 0  # a repeatable option still is


def test_query_formats_and_refusals(settings: Settings):
    make_files(settings, regions=["KE"], rows=200)
    assert runner.invoke(app, ["query", "select 1"]).exit_code == 1  # nothing published yet, said plainly
    assert runner.invoke(app, ["ingest", "-r", "KE"]).exit_code == 0
    assert runner.invoke(app, ["publish", "-r", "KE"]).exit_code == 0
    as_csv = runner.invoke(
        app, ["query", "select region, count(*) as n from rollups.region_daily group by 1", "-f", "csv"]
    )
    assert as_csv.exit_code == 0
    assert as_csv.stdout.splitlines()[0] == "region,n"
    as_json = runner.invoke(app, ["query", "select region from rollups.creator_daily limit 1", "--format", "json"])
    assert json.loads(as_json.stdout) == [{"region": "KE"}]
    refused = runner.invoke(app, ["query", "drop table rollups.creator_daily"])
    assert refused.exit_code == 1 and "read-only" in refused.output
    assert runner.invoke(app, ["query", "select 1", "--format", "xml"]).exit_code == 2
    # wider than the console (a pipe gets 120 columns): Rich cut cells to `34150…`, a plausible wrong figure
    wide = ", ".join(f"3415000123456 as gross_{name}" for name in "abcdefghijklmnopqrst")
    shown = runner.invoke(app, ["query", f"select {wide}"])
    assert shown.exit_code == 0 and "…" not in shown.stdout
    assert sum(ch.isdigit() for ch in shown.stdout) == 20 * len("3415000123456")
    # a repeated column name: CSV raised a traceback, JSON silently kept only the last column
    for fmt in ("csv", "json", "table"):
        twice = runner.invoke(app, ["query", "select 1 as a, 2 as a", "--format", fmt])
        assert twice.exit_code == 1 and "repeats the column name(s) a" in twice.output, (fmt, twice.output)


def test_verify_fails_loudly_when_the_store_was_tampered_with(settings: Settings):
    make_files(settings, regions=["PK"], rows=200)
    runner.invoke(app, ["ingest", "-r", "PK"])
    runner.invoke(app, ["publish", "-r", "PK"])
    assert runner.invoke(app, ["verify"]).exit_code == 0
    with open_store(settings, "PK") as con:
        con.execute("DELETE FROM sale_events WHERE rowid IN (SELECT rowid FROM sale_events LIMIT 1)")
    result = runner.invoke(app, ["verify"], terminal_width=200)
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_demo_end_to_end_as_a_new_user_runs_it(demo_run: DemoRun):
    """The README's main command, in a real process, then the query from the issue and `kanda verify`."""
    kanda = shutil.which("kanda", path=str(Path(sys.executable).parent)) or "kanda"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_") and k != "DAGSTER_HOME"}
    env.update(KANDA_HOME=str(demo_run.home), COLUMNS="200")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kanda, *args], env=env, capture_output=True, text=True, timeout=300, check=False)

    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    assert "all checks passed" in demo_run.stdout
    assert len(all_regions()) >= 20  # every shipped region takes part
    for code in all_regions():
        assert code in demo_run.stdout
    # the Great Expectations suites ran too: the quality pages and Data Docs have something to show
    assert re.search(r"^expectations: \d+ validations, all met$", demo_run.stdout, re.MULTILINE), demo_run.stdout
    (docs,) = re.findall(r"^Data Docs: file://(\S+)", demo_run.stdout, re.MULTILINE)
    assert Path(docs).is_file() and Path(docs).name == "index.html"
    home = load_settings(demo_run.home)
    assert {r["region"] for r in latest_results(home)} == set(all_regions())
    query = run("query", "select region, sum(net_usd_minor) from rollups.creator_daily group by 1", "-f", "json")
    assert query.returncode == 0, query.stderr
    rows = json.loads(query.stdout)
    assert sorted(r["region"] for r in rows) == sorted(all_regions())
    assert all(r["sum(net_usd_minor)"] > 0 for r in rows)
    assert run("verify").returncode == 0
    again = run("ingest", "-r", "KE", str(next((demo_run.home / "landing/ke/processed").iterdir())), "--json")
    assert json.loads(again.stdout)["files"][0]["status"] == "already_ingested"


def test_generate_is_deterministic_and_takes_per_kind_dirt(settings: Settings):
    args = ["generate", "-r", "PK", "--rows", "300", "--start", "2026-10-01", "--days", "2"]
    assert runner.invoke(app, [*args, "--dirt-mix", "duplicate=0.3,corrupt=0"]).exit_code == 0
    path = next(settings.landing("PK").glob("*.jsonl"))
    first = path.read_bytes()
    assert runner.invoke(app, [*args, "--dirt-mix", "duplicate=0.3,corrupt=0"]).exit_code == 0
    assert path.read_bytes() == first  # same seed and options, same file
    (result,) = json.loads(runner.invoke(app, ["ingest", "-r", "PK", "--json"]).stdout)["files"]
    assert result["duplicates"] > 0.15 * result["rows_in"]  # the requested share of redeliveries shows up
    assert runner.invoke(app, [*args, "--dirt-mix", "bogus=1"]).exit_code == 2


def test_a_later_generated_file_holds_new_transactions_with_after(settings: Settings):
    """Every generated file of a region numbered its transactions from one: a second file (a later day's export)
    was nearly all duplicates of the first, so trying kanda on more days showed a pipeline loading nothing."""

    def ingested(*extra: str) -> dict:
        args = ["generate", "-r", "KE", "--rows", "300", "--days", "2", *extra]
        assert runner.invoke(app, args).exit_code == 0
        (report,) = json.loads(runner.invoke(app, ["ingest", "-r", "KE", "--json"]).stdout)["files"]
        return report

    first = ingested("--start", "2026-10-01")
    later = ingested("--start", "2026-10-03", "--after", "300")
    assert later["file"] != first["file"] and later["loaded"] > 0.9 * later["rows_in"]
    again = ingested("--start", "2026-10-05")  # without --after: the first file's ids again
    assert again["duplicates"] > 0.9 * again["rows_in"]


def test_generate_for_one_region_leaves_the_other_regions_registry_records_alone(settings: Settings):
    """An operator's own creators of other regions (and their addresses, which reports go to) survive a
    `kanda generate -r KE`; only KE's records are replaced."""
    creators = settings.registry_dir / "creators.csv"
    settings.registry_dir.mkdir(parents=True, exist_ok=True)
    creators.write_text(  # saved by a spreadsheet: a BOM, and a column of the operator's own
        "\ufeffcreator_id,region,name,email,currency,language,display_name\n"
        'NG-C0001,NG,"Ada, Lagos",ada@example.ng,NGN,en,Ada\n'
        "KE-C0099,KE,Old Kenyan,old@example.ke,KES,en,\n"
    )
    args = ["generate", "-r", "KE", "--rows", "100", "--days", "1"]
    assert runner.invoke(app, args).exit_code == 0
    rows = list(csv.DictReader(creators.open(encoding="utf-8-sig")))
    assert [r for r in rows if r["region"] == "NG"] == [
        {**{k: "" for k in rows[0]}, "creator_id": "NG-C0001", "region": "NG", "name": "Ada, Lagos",
         "email": "ada@example.ng", "currency": "NGN", "language": "en", "display_name": "Ada"}
    ]  # fmt: skip
    kenyan = [r["creator_id"] for r in rows if r["region"] == "KE"]
    assert "KE-C0099" not in kenyan and "KE-C0001" in kenyan  # KE's records are the generated ones
    assert {r["region"] for r in rows} == {"NG", "KE"}
    products = list(csv.DictReader((settings.registry_dir / "products.csv").open()))
    assert {r["region"] for r in products} == {"KE"}


def test_a_busy_store_is_a_message_not_a_traceback(settings: Settings):
    make_files(settings, regions=["GH"], rows=50)
    code = "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"
    with open_store(settings, "GH"):  # another writer holds the store longer than this one will wait
        busy = subprocess.run(
            [sys.executable, "-c", code, "ingest", "-r", "GH"],
            env={**os.environ, "KANDA_LOCK_WAIT": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert busy.returncode == 1
    (line,) = busy.stderr.splitlines()  # one line, whatever the terminal width; no traceback
    assert line.startswith("Error: ") and "busy" in line and "(StoreBusy)" in line


def test_a_region_host_lists_only_its_own_regions_by_default(settings: Settings, monkeypatch):
    """On a host with KANDA_REGIONS=KE, `kanda publish` said "no store yet" for each of the other regions, whose
    stores are on other hosts; without --region a command takes the host's regions."""
    monkeypatch.setenv("KANDA_REGIONS", "KE")
    done = runner.invoke(app, ["publish"])
    assert done.exit_code == 0, done.output
    assert "KE: no store yet" in done.output and "NG:" not in done.output
    assert runner.invoke(app, ["publish", "-r", "NG"]).exit_code == 0  # asked for by name: still taken
    monkeypatch.setenv("KANDA_REGIONS", "KEN")  # a typo made every command quietly do nothing
    typo = runner.invoke(app, ["publish"])
    assert typo.exit_code == 2 and "KANDA_REGIONS names unknown region(s) KEN" in typo.output, typo.output
