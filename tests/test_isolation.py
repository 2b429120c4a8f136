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
from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.ingest import NOT_A_REGULAR_FILE, ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import make_files

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


def test_a_busy_store_is_not_broken_status_and_verify_still_say_busy(settings: Settings):
    make_files(settings, regions=["GH"], rows=50)
    ingest_landing(settings, "GH")
    with open_store(settings, "GH"):  # a writer holds the store longer than these commands will wait
        children = [kanda(command, env={"KANDA_LOCK_WAIT": "1"}) for command in ("status", "verify")]
        results = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 1
        assert "StoreBusy" in err and "busy" in err
        assert "BROKEN" not in out + err and "cannot be read" not in out + err
        assert "Traceback" not in err


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
