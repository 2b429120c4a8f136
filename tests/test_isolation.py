"""One region must not stop the others: a corrupted store, two ingests of one folder at once, links in a folder.

Real DuckDB files (corrupted by writing bytes into them), real child processes, real links and pipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from kanda.central.publish import publish_region
from kanda.cli import app
from kanda.regional.ingest import NOT_A_REGULAR_FILE, ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import START, make_files

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone, so a sentence can be looked for whole."""
    return " ".join(text.split())


def corrupt(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"this is not a database, it was overwritten by something else\n" * 200)
    else:  # truncated: a copy cut short, e.g. by a full disk
        with path.open("r+b") as handle:
            handle.truncate(8192)


@pytest.fixture
def ke_healthy_ng_broken(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    make_files(settings, regions=["KE", "NG"], rows=200)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    corrupt(settings.store_path("NG"), request.param)
    return settings


@pytest.mark.parametrize("ke_healthy_ng_broken", ["garbage", "truncated"], indirect=True)
def test_a_corrupted_store_is_named_and_the_healthy_regions_still_publish_verify_and_show(
    ke_healthy_ng_broken: Settings,
):
    settings = ke_healthy_ng_broken

    published = runner.invoke(app, ["publish"])
    assert published.exit_code == 1
    out = flat(published.output)
    assert "KE: published" in out
    assert "NG: FAILED: IOException" in out

    verified = runner.invoke(app, ["verify"])
    assert verified.exit_code == 1, verified.output
    out = flat(verified.output)
    for check in ("ledger_chain", "batch_conservation", "rollups_match_events", "reconciliation"):
        assert f"ok {check} KE:" in out  # every check of the healthy region ran, and passed
    assert f"FAIL store_readable NG: store {settings.store_path('NG')} cannot be read: IOException" in out

    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 1
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 2}
    assert "never" not in rows["KE"] and "BROKEN" not in rows["KE"]  # KE's numbers, with the publish just made
    assert "BROKEN" in rows["NG"]
    assert f"NG: BROKEN: store {settings.store_path('NG')} cannot be read: IOException" in flat(shown.stderr)
    assert "Traceback" not in shown.output


@pytest.mark.parametrize("ke_healthy_ng_broken", ["garbage"], indirect=True)
def test_the_one_region_commands_name_a_corrupted_store_in_one_line(ke_healthy_ng_broken: Settings):
    for args in (["ingest", "-r", "NG"], ["quarantine", "-r", "NG"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        assert f"NG: store {ke_healthy_ng_broken.store_path('NG')} failed: IOException" in flat(result.stderr)


def test_a_store_missing_its_events_table_stays_broken_and_is_never_re_created_empty(settings: Settings):
    """`DROP TABLE sale_events` in a store: the first `kanda status` said BROKEN, but the next writer's open (a
    `kanda verify`) re-created the table empty; from then on the region showed healthy with no events, and reports
    were built from its stale rollups."""
    import duckdb

    make_files(settings, regions=["KE", "NG"], rows=200)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    with duckdb.connect(str(settings.store_path("NG"))) as con:
        con.execute("DROP TABLE sale_events")
    for args in (["verify"], ["ingest", "-r", "NG"], ["status"], ["publish"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        said = flat(result.output) + str(result.exception)  # one line from `main` for a one-region command
        assert "has no sale_events table" in said, args
    with duckdb.connect(str(settings.store_path("NG")), read_only=True) as con:
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "sale_events" not in tables
    shown = runner.invoke(app, ["status"])
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 2}
    assert "BROKEN" in rows["NG"] and "BROKEN" not in rows["KE"]


def test_a_region_whose_file_does_not_load_is_named_by_status_and_verify_not_left_out(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A second region file for NG with a YAML error made NG unavailable (rightly: which file is NG's?), but status,
    verify, publish and reprocess then left NG out and exited 0, though NG's store and data are on this host."""
    make_files(settings, regions=["KE", "NG"], rows=200)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    extra = tmp_path / "regions"
    extra.mkdir()
    (extra / "ng_extra.yaml").write_text("code: NG\nname: [Nigeria\n")
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(extra))  # the region files are read again for it
    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 1, shown.output
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 2}
    assert "BROKEN" in rows["NG"] and "BROKEN" not in rows["KE"]
    assert "region file did not load" in flat(shown.output)
    verified = runner.invoke(app, ["verify"])
    assert verified.exit_code == 1 and "FAIL region_file NG: its store" in flat(verified.output), verified.output
    published = runner.invoke(app, ["publish"])
    assert "region NG is left out" in flat(published.output) and "KE: published" in flat(published.output)
    assert published.exit_code == 1  # a cron job reading 0 would take NG, never published, for NG up to date
    assert flat(published.output).count("region NG is left out") == 1
    reprocessed = runner.invoke(app, ["review", "reprocess"])
    assert reprocessed.exit_code == 1 and "region NG is left out" in flat(reprocessed.output), reprocessed.output
    named = runner.invoke(app, ["publish", "-r", "KE"])  # a region asked for by name is all that was asked
    assert named.exit_code == 0, named.output


def test_a_store_held_open_by_another_program_is_busy_not_broken(settings: Settings):
    """The DuckDB CLI or a notebook holding the file is not damage: an operator told BROKEN might 'repair' it."""
    make_files(settings, regions=["KE", "NG"], rows=50)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True);"
         " sys.stdin.read()", str(settings.store_path("NG"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        shown = runner.invoke(app, ["status"], terminal_width=200)
    finally:
        holder.communicate("", timeout=60)
    assert shown.exit_code == 1
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 2}
    assert "BUSY" in rows["NG"] and "BROKEN" not in shown.output
    assert "another process has" in flat(shown.stderr)
    assert "BUSY" not in rows["KE"]


@pytest.fixture
def gh_and_ke_published(settings: Settings) -> Settings:
    """Two regions ingested and published. GH comes before KE in every command's order, so a GH that fails would
    stop KE too if a command did not isolate its regions."""
    make_files(settings, regions=["GH", "KE"], rows=200)
    for code in ("GH", "KE"):
        ingest_landing(settings, code)
        assert publish_region(settings, code).published
    return settings


@pytest.fixture
def gh_broken(gh_and_ke_published: Settings) -> Settings:
    corrupt(gh_and_ke_published.store_path("GH"), "garbage")
    return gh_and_ke_published


def test_a_corrupted_store_does_not_stop_the_other_regions_reports(gh_broken: Settings):
    settings = gh_broken
    day = START.isoformat()
    for args, folder in (([], settings.reports_dir), (["--deliver"], settings.outbox_dir)):
        result = runner.invoke(app, ["reports", "--date", day, *args], terminal_width=200)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output  # not a traceback
        assert "GH: FAILED: IOException" in flat(result.stderr)
        rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
        assert "failed" in rows["GH"]
        assert "ready" in rows["KE"]
        assert list((folder / "KE" / day).glob("*.eml"))  # KE's reports were written (previewed, then delivered)
        assert not (folder / "GH").exists()


def test_a_regions_unwritable_report_folder_does_not_stop_the_other_regions_reports(gh_and_ke_published: Settings):
    """GH's outbox (or preview) folder is a file: GH's reports cannot be written; KE's still are, and the run
    names GH and exits 1, without a traceback and without calling the whole data folder unusable."""
    settings = gh_and_ke_published
    day = START.isoformat()
    for args, folder in (([], settings.reports_dir), (["--deliver"], settings.outbox_dir)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "GH").write_text("not a folder\n")
        result = runner.invoke(app, ["reports", "--date", day, *args], terminal_width=200)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "GH: FAILED:" in flat(result.stderr) and "cannot be used" not in result.output
        rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
        assert "failed" in rows["GH"] and "ready" in rows["KE"]
        assert list((folder / "KE" / day).glob("*.eml"))


def test_a_corrupted_store_does_not_stop_the_other_regions_expectations(gh_broken: Settings):
    result = runner.invoke(app, ["expectations", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    answer = json.loads(result.stdout)
    (failed,) = answer["failed"]
    assert failed["region"] == "GH" and failed["error"].startswith("IOException") and failed["busy"] is False
    validated = {(r["region"], r["suite"]) for r in answer["results"]}
    assert ("KE", "sale_events_day") in validated  # the healthy region's stored days were validated
    assert ("GH", "sale_events_day") not in validated
    assert all(r["success"] for r in answer["results"])  # the exit code 1 is GH's alone
    assert Path(answer["data_docs"]).exists()  # and Data Docs were built
    assert "GH: FAILED: IOException" in flat(result.stderr)


def test_a_corrupted_store_does_not_stop_the_other_regions_review_queue(gh_broken: Settings):
    result = runner.invoke(app, ["review", "enqueue", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    answer = json.loads(result.stdout)
    assert list(answer["enqueued"]) == ["KE"] and answer["enqueued"]["KE"] > 0  # KE's quarantined rows queued
    assert [(f["region"], f["busy"]) for f in answer["failed"]] == [("GH", False)]
    assert answer["failed"][0]["error"].startswith("IOException")

    named = runner.invoke(app, ["review", "enqueue", "-r", "GH", "-r", "KE"])  # regions named: the same
    assert named.exit_code == 1 and isinstance(named.exception, SystemExit), named.output
    assert "KE: 0 new item(s) queued" in named.stdout  # queued already by the first run
    assert "GH: FAILED: IOException" in flat(named.stderr)


def kanda(*args: str, env: dict[str, str] | None = None, waiting_marker: Path | None = None) -> subprocess.Popen[str]:
    """`kanda ...` in a child process running this checkout's code.

    With `waiting_marker`, the child appends the path of every lock it is about to take to that file: a spy (the
    lock itself is untouched) that lets the test know, without sleeping, that the child has reached the lock.
    """
    spy = ""
    if waiting_marker is not None:
        spy = (
            "import filelock; _take = filelock.FileLock.acquire\n"
            "def acquire(self, *a, **k):\n"
            f"    with open({str(waiting_marker)!r}, 'a') as f: f.write(str(self.lock_file) + '\\n')\n"
            "    return _take(self, *a, **k)\n"
            "filelock.FileLock.acquire = acquire\n"
        )
    code = spy + "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until_at_lock(children: list[subprocess.Popen[str]], markers: list[Path], lock: Path) -> None:
    """Until every child has reached `lock` (or has ended, which the assertions after this then explain)."""
    while not all(
        child.poll() is not None or (marker.exists() and str(lock) in marker.read_text())
        for child, marker in zip(children, markers, strict=True)
    ):
        time.sleep(0.05)  # polling, not a timed assertion: the children get the CPU meanwhile


def test_two_ingests_of_one_landing_folder_at_once_record_nothing_false(settings: Settings, tmp_path: Path):
    make_files(settings, regions=["TZ"], rows=300)
    lock = settings.locks_dir / "tz.lock"
    markers = [tmp_path / "first.waiting", tmp_path / "second.waiting"]
    with open_store(settings, "TZ"):  # both ingests start while the store is held, so both are at the lock at once
        children = [kanda("ingest", "-r", "TZ", "--json", waiting_marker=m) for m in markers]
        wait_until_at_lock(children, markers, lock)
    reports = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err  # exit 1 would mean a file was (falsely) rejected
        reports.append(json.loads(out)["files"])
    statuses = sorted(f["status"] for files in reports for f in files)
    assert statuses == ["loaded"]  # one ingest loaded the file; the other found the folder already empty
    with open_store(settings, "TZ", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM rejected_files").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM ledger WHERE kind = 'file'").fetchall() == [(1,)]
    assert [p.parent.name for p in settings.landing("TZ").rglob("*.csv")] == ["processed"]


def test_a_file_named_on_the_command_line_that_a_landing_ingest_files_away_meanwhile_is_not_rejected(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """`kanda ingest -r TZ landing/tz/x.csv` waiting at the lock behind `kanda ingest -r TZ`, which loads x.csv and
    moves it to processed/: when the named ingest gets the store, the file is gone from where it was named. It was
    ingested, so it is reported so; a "not found" rejection would stay on TZ's record for good. The named ingest's
    wait is played by its clock: it was asked for before the landing ingest finished."""
    import datetime as dt

    from kanda.regional import ingest

    make_files(settings, regions=["TZ"], rows=300)
    (waiting,) = settings.landing("TZ").glob("*.csv")
    asked_at = dt.datetime.now(dt.UTC)
    (landed,) = ingest_landing(settings, "TZ").files  # the landing ingest that got the lock first
    assert landed.status == "loaded" and not waiting.exists()
    with monkeypatch.context() as clock:
        clock.setattr(ingest, "_now", lambda: asked_at)
        result = runner.invoke(app, ["ingest", "-r", "TZ", str(waiting), "--json"])
    assert result.exit_code == 0, result.output
    (named,) = json.loads(result.stdout)["files"]
    assert named["status"] == "already_ingested" and f"batch {landed.batch_id}" in named["reason"]
    with open_store(settings, "TZ", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM rejected_files").fetchall() == [(0,)]
    # Named now, after that ingest: a file of the same name that was never copied is not last month's archived one
    # (rails reuse names), and a file that never was in the folder at all is "not found" too.
    for never in (waiting, waiting.with_name("never-there.csv")):
        missing = runner.invoke(app, ["ingest", "-r", "TZ", str(never), "--json"])
        assert missing.exit_code == 1 and json.loads(missing.stdout)["files"][0]["kind"] == "not_found"


def test_a_busy_store_is_named_busy_not_broken_and_the_other_regions_are_still_shown(gh_and_ke_published: Settings):
    # This test used to expect a busy store to end `status` and `verify` for every region with the one line
    # "Error: the GH store is busy (StoreBusy)". That broke docs/reliability.md's promise that one region never
    # stops another: a long writer in one region (a big ingest) hid the state and the proofs of every healthy
    # region. Now the busy region is named busy (never "broken": nothing is wrong with it), the others are shown
    # and verified, and the exit code is still 1. Real processes, through `kanda.cli.main`, as an operator runs them.
    settings = gh_and_ke_published
    results = {}
    with open_store(settings, "GH"):  # a writer holds the store longer than these commands will wait
        for command in ("status", "verify"):  # one after the other: both also read KE, under its own lock
            child = kanda(command, env={"KANDA_LOCK_WAIT": "1", "COLUMNS": "200"})
            results[command] = (child, *child.communicate(timeout=300))
    for child, out, err in results.values():
        assert child.returncode == 1
        assert "StoreBusy" in out + err and "busy" in out + err
        assert "BROKEN" not in out + err and "cannot be read" not in out + err
        assert "Traceback" not in err and "Error:" not in err  # not the old one-line end of the whole command

    _, out, err = results["status"]
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    assert "BUSY" in rows["GH"]
    assert "BUSY" not in rows["KE"] and "never" not in rows["KE"]  # KE's numbers, with its publish
    assert f"GH: BUSY: store {settings.store_path('GH')} is in use, not read: StoreBusy" in flat(err)

    _, out, err = results["verify"]
    out = flat(out)
    for check in ("ledger_chain", "batch_conservation", "rollups_match_events", "reconciliation"):
        assert f"ok {check} KE:" in out  # every check of the healthy region ran, and passed
    assert f"FAIL store_available GH: store {settings.store_path('GH')} is busy, not verified: StoreBusy" in out
    assert "ok ledger_chain GH:" not in out


def test_a_busy_store_does_not_stop_the_other_regions_reports_expectations_or_review_queue(
    gh_and_ke_published: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = gh_and_ke_published
    monkeypatch.setenv("KANDA_LOCK_WAIT", "0.5")
    with FileLock(str(settings.locks_dir / "gh.lock")):  # another run holds GH's store past the wait
        reports = runner.invoke(app, ["reports", "--date", START.isoformat()], terminal_width=200)
        expectations = runner.invoke(app, ["expectations", "--no-central", "--json"])
        enqueued = runner.invoke(app, ["review", "enqueue", "--json"])
    for result in (reports, expectations, enqueued):
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output  # not a traceback
        assert "GH: BUSY: StoreBusy: the GH store is busy" in flat(result.stderr)
        assert "FAILED" not in result.output and "cannot be read" not in result.output

    rows = {line.split("│")[1].strip(): line for line in reports.stdout.splitlines() if line.count("│") > 2}
    assert "busy" in rows["GH"] and "ready" in rows["KE"]
    assert list((settings.reports_dir / "KE" / START.isoformat()).glob("*.eml"))

    answer = json.loads(expectations.stdout)
    assert [(f["region"], f["busy"]) for f in answer["failed"]] == [("GH", True)]
    assert {r["region"] for r in answer["results"]} == {"KE"} and answer["data_docs"]

    answer = json.loads(enqueued.stdout)
    assert list(answer["enqueued"]) == ["KE"]
    assert [(f["region"], f["busy"]) for f in answer["failed"]] == [("GH", True)]


SECRET = "root:x:0:0:the first line of a file outside the landing folder"


def test_links_and_pipes_in_a_landing_folder_are_rejected_unread(settings: Settings, tmp_path: Path):
    (generated,) = make_files(settings, regions=["KE"], rows=100)
    landing = settings.landing("KE")
    outside = tmp_path / "passwd"
    outside.write_text(SECRET + "\nsecond line\n")
    (landing / "a_link_out.csv").symlink_to(outside)
    (landing / "a_link_in.csv").symlink_to(generated.path)  # even to a file beside it: links are not followed
    (landing / "a_dangling_link.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(landing / "a_pipe.csv")  # reading it would wait forever for a writer

    result = runner.invoke(app, ["ingest", "-r", "KE", "--json"])
    assert result.exit_code == 1  # a file was rejected
    files = {f["file"]: f for f in json.loads(result.stdout)["files"]}
    assert files[generated.path.name]["status"] == "loaded"  # the real file beside them is ingested as usual
    odd = ("a_link_out.csv", "a_link_in.csv", "a_dangling_link.csv", "a_pipe.csv")
    for name in odd:
        assert files[name]["status"] == "rejected"
        assert files[name]["kind"] == NOT_A_REGULAR_FILE
        assert "not read" in files[name]["reason"]
        assert str(tmp_path) not in files[name]["reason"]  # not even where a link points
    for name in odd[:3]:
        assert "symbolic link" in files[name]["reason"]
    assert "pipe" in files["a_pipe.csv"]["reason"]

    assert "root:x" not in result.output
    kept = [p for p in settings.rejected_dir.rglob("*") if p.is_file()]
    assert not any("root:x" in p.read_text(errors="replace") for p in kept)  # nothing of the target was copied
    with open_store(settings, "KE", read_only=True) as con:
        rows = con.execute("SELECT file_name, reason, kept_at FROM rejected_files ORDER BY file_name").fetchall()
    assert sorted(name for name, _, _ in rows) == sorted(odd)
    assert all("root:x" not in reason and kept_at == "" for _, reason, kept_at in rows)

    assert outside.read_text().startswith(SECRET)  # the targets are untouched; only the links left the folder
    assert generated.path.parent.joinpath("processed", generated.path.name).exists()
    assert sorted(p.name for p in landing.iterdir()) == ["processed"]
