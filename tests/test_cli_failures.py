"""Failures a user causes, said in one `Error:` line (exit 1) or a usage error (exit 2), never a traceback: an
unusable KANDA_HOME, a broken registry record, a region file that does not validate, an impossible port."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.cli import _own_failure, app
from kanda.settings import BadSetting, Settings, UnusableHome, load_settings
from regions.yamlfile import SpecError
from tests.support.files import make_files

runner = CliRunner()

MAIN = "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"


def kanda(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console script's `main` in a real process, with these KANDA_* settings and no others from the shell."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KANDA_")}
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        env={**base, "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    return line


# --- an unusable KANDA_HOME --------------------------------------------------------------------------------------


def homes(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Data directories that cannot be used, and what the error should say about each."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    found = {
        "under a regular file": (afile / "home", f"{afile} is not a directory"),
        "a regular file": (afile, f"{afile} is not a directory"),
    }
    if Path("/proc/self").exists():
        found["in /proc"] = (Path("/proc/kanda-home"), "No such file or directory")
    return found


@pytest.mark.parametrize("case", ["under a regular file", "a regular file", "in /proc"])
@pytest.mark.parametrize("salt", ["kept in the home", "given"])
def test_an_unusable_home_is_one_error_line(tmp_path: Path, case: str, salt: str):
    """Without a given salt `load_settings` keeps one in the home; with one, the first folder a command makes."""
    if case not in homes(tmp_path):
        pytest.skip("no /proc here")
    home, reason = homes(tmp_path)[case]
    env = {"KANDA_HOME": str(home)} | ({"KANDA_BUYER_SALT": "s"} if salt == "given" else {})
    for args in (("status",), ("ingest", "-r", "KE"), ("generate", "-r", "KE", "--rows", "5", "--days", "1")):
        if salt == "given" and args == ("status",):
            continue  # `status` of a home that does not exist lists nothing and creates nothing: no error to give
        line = one_error_line(kanda(*args, **env))
        assert line.startswith(f"Error: KANDA_HOME {home} cannot be used: ") and reason in line, (args, line)
        assert line.endswith("(UnusableHome)")


def test_a_read_only_home_is_named_with_the_systems_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A read-only file system (root ignores a mode of 555, so the system's refusal is simulated)."""
    monkeypatch.delenv("KANDA_BUYER_SALT", raising=False)
    home = tmp_path / "home"

    def read_only(self: Path, *args, **kwargs) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(UnusableHome, match=rf"^KANDA_HOME {home} cannot be used: Read-only file system$"):
        load_settings(home)
    monkeypatch.setenv("KANDA_BUYER_SALT", "s")
    settings = load_settings(home)
    with pytest.raises(UnusableHome, match=rf"cannot be used: Read-only file system: {home}/stores$"):
        settings.ensure_dirs()


def test_a_system_refusal_under_the_home_is_one_line_and_elsewhere_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    monkeypatch.setenv("KANDA_HOME", str(home))
    refused = PermissionError(errno.EACCES, "Permission denied", str(home / "stores" / "ke.duckdb"))
    assert _own_failure(refused) == (
        f"KANDA_HOME {home} cannot be used: Permission denied: {home}/stores/ke.duckdb (PermissionError)"
    )
    assert _own_failure(PermissionError(errno.EACCES, "Permission denied", "/etc/elsewhere")) is None
    assert _own_failure(FileNotFoundError(errno.ENOENT, "No such file", str(home / "x"))) is None


# --- kanda's own failures ----------------------------------------------------------------------------------------


def test_a_spec_error_is_one_line_with_every_problem():
    problems = ["rw.yaml:3: zone: 'Africa/Kigal' is not an IANA time zone", "rw.yaml:5: currency: required"]
    assert _own_failure(SpecError(problems)) == f"{problems[0]}; {problems[1]} (SpecError)"


def test_a_broken_registry_record_stops_only_its_own_region(settings: Settings):
    make_files(settings, regions=["KE", "NG"], rows=40)
    creators = settings.registry_dir / "creators.csv"
    line = creators.read_text().count("\n") + 1
    with creators.open("a") as handle:
        handle.write('NG-C0099,NG,Bad "Name,x@y.z,en,en_NG,NGN,extra,extra2\n')
    env = {"KANDA_HOME": str(settings.home), "KANDA_BUYER_SALT": "test-salt"}
    ke = kanda("ingest", "-r", "KE", "--json", **env)
    assert ke.returncode == 0, ke.stderr
    assert "Traceback" not in ke.stderr and f"line {line} skipped" in ke.stderr
    error = one_error_line(kanda("ingest", "-r", "NG", **env))
    assert error.startswith(f"Error: NG: registry file {creators}: ")
    assert f"line {line}: 9 fields where the header has 7" in error and error.endswith("(RegistryError)")
    assert list(settings.landing("NG").iterdir())  # NG's file waits for the fix


def test_a_bad_product_price_is_one_line_naming_the_record(settings: Settings):
    make_files(settings, regions=["NG"], rows=40)
    products = settings.registry_dir / "products.csv"
    line = products.read_text().count("\n") + 1
    with products.open("a") as handle:
        handle.write("NG-P09999,NG-C0001,NG,Broken price,12.5x,NGN\n")
    error = one_error_line(kanda("ingest", "-r", "NG", KANDA_HOME=str(settings.home), KANDA_BUYER_SALT="test-salt"))
    assert f"products.csv: NG's record(s) cannot be read: line {line}: price_minor '12.5x'" in error


# --- usage errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "65536"], "--port"),
        (["--port", "0"], "--port"),
        (["--port", "-1"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--workers", "100000"], "--workers"),
    ],
)
def test_serve_refuses_an_impossible_port_or_worker_count(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(k))
    result = runner.invoke(app, ["serve", *args], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert started == []
    assert runner.invoke(app, ["serve", "--port", "65535", "--workers", "2"]).exit_code == 0
    assert started[-1]["port"] == 65535 and started[-1]["workers"] == 2


# --- servers and settings out of reach ---------------------------------------------------------------------------


def test_a_database_out_of_reach_or_bad_catalog_properties_is_one_error_line(tmp_path: Path):
    """A PostgreSQL URL whose server is down gave a 300-line traceback from every command that opens the app
    database; the line says what cannot be reached and which settings name it."""
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    home = {"KANDA_HOME": str(tmp_path / "home"), "KANDA_BUYER_SALT": "s"}
    down = {"KANDA_APP_DB_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/kanda"}
    for args in (("users", "list"), ("review", "list")):
        line = one_error_line(kanda(*args, **home, **down))
        assert line.startswith("Error: a database kanda uses cannot be reached") and "KANDA_APP_DB_URL" in line
    bad = one_error_line(kanda("query", "select 1", **home, KANDA_CATALOG_PROPERTIES="not json"))
    assert "KANDA_CATALOG_PROPERTIES is not JSON" in bad and bad.endswith("(BadSetting)")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        # the form hosting providers print; SQLAlchemy knows only postgresql://
        ("postgres://kanda:s3cret@db.internal:5432/catalog", "write postgresql://"),
        ("postgresql://kanda:s3cret@db.internal:notaport/catalog", "the port 'notaport' is not a number"),
    ],
)
def test_a_database_url_sqlalchemy_cannot_use_is_one_line_without_its_password(tmp_path: Path, url: str, said: str):
    """Both used to end `kanda verify` and `kanda serve` in a traceback from SQLAlchemy's dialect loader."""
    for command in (["verify"], ["status"]):
        line = one_error_line(kanda(*command, KANDA_HOME=str(tmp_path / "home"), KANDA_CATALOG_URL=url))
        assert "KANDA_CATALOG_URL" in line and said in line and "s3cret" not in line, line


def test_report_settings_that_cannot_be_used_are_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """KANDA_PUBLIC_URL that is not http(s), and KANDA_REPORT_WORKERS that is not a number, ended in a traceback
    (the second one as `kanda.reports.run` was imported, whatever the command)."""
    from kanda.reports import run

    done = kanda("reports", "--date", "2026-10-05", KANDA_HOME=str(tmp_path / "home"), KANDA_PUBLIC_URL="ftp://x")
    assert "KANDA_PUBLIC_URL must be an http(s) URL without spaces, not 'ftp://x'" in one_error_line(done)
    monkeypatch.setenv("KANDA_REPORT_WORKERS", "two")
    with pytest.raises(BadSetting, match="KANDA_REPORT_WORKERS must be a whole number of processes"):
        run.render_workers()
    monkeypatch.setenv("KANDA_REPORT_WORKERS", "3")
    assert run.render_workers() == 3


def test_a_landing_folder_that_cannot_be_listed_is_an_error_not_no_files_waiting(settings: Settings):
    """A landing folder the ingest may not list (no read permission, or a file where the folder should be) was read
    as an empty one: "no files waiting", exit 0, while the region's files waited unseen."""
    make_files(settings, regions=["NG"], rows=40)
    landing = settings.landing("NG")
    for entry in landing.iterdir():
        entry.unlink()
    landing.rmdir()
    landing.write_text("not a folder")
    env = {"KANDA_HOME": str(settings.home), "KANDA_BUYER_SALT": "test-salt"}
    error = one_error_line(kanda("ingest", "-r", "NG", **env))
    assert str(landing) in error and "Not a directory" in error


def test_another_regions_broken_registry_record_does_not_stop_a_stewards_review(settings: Settings):
    """Ingestion reads around another region's broken registry record (above); the review read the whole shared
    file strictly, so one region's broken record stopped every region's `kanda review show` and approvals with a
    traceback."""
    from kanda.review.revalidate import known_creators, registry_choices

    make_files(settings, regions=["KE", "NG"], rows=40)
    with (settings.registry_dir / "creators.csv").open("a") as handle:
        handle.write('NG-C0099,NG,Bad "Name,x@y.z,en,en_NG,NGN,extra,extra2\n')
    known = known_creators(settings.registry_dir, {"KE", "NG"})
    assert "KE" in known and len(known["KE"]) > 0
    assert "NG" not in known  # its own broken record: not known here, so not held here (its ingest names it)
    creators, products = registry_choices(settings.registry_dir, "KE")
    assert creators and products and all(c.startswith("KE-") for c, _ in creators)


def test_a_region_file_naming_another_regions_landing_folder_by_its_full_path_takes_none_of_its_files(
    settings: Settings, tmp_path: Path
):
    """Region files naming the same landing folder were refused only as written: a new region QX whose `landing`
    was the absolute path of NG's folder took NG's file into QX's store (every row quarantined there) and left NG
    "no files waiting", exit 0 both times."""
    from tests.support.builders import region_file

    make_files(settings, regions=["NG"], rows=40)
    waiting = sorted(p.name for p in settings.landing("NG").iterdir())
    extra = region_file(tmp_path / "regions", "ng", code="QX", landing=str(settings.landing("NG")))
    env = {"KANDA_HOME": str(settings.home), "KANDA_BUYER_SALT": "test-salt", "KANDA_REGIONS_DIR": str(extra)}
    error = one_error_line(kanda("ingest", "-r", "QX", **env))
    assert "is region NG's landing folder too" in error and error.endswith("(LandingTaken)")
    assert sorted(p.name for p in settings.landing("NG").iterdir()) == waiting
    ng = kanda("ingest", "-r", "NG", "--json", **env)
    assert ng.returncode == 0, ng.stderr
    assert '"loaded": ' in ng.stdout and not (settings.home / "stores" / "qx.duckdb").exists()


def test_a_full_disk_in_a_librarys_own_words_is_one_line():
    """A staging folder on a full disk failed the ingest with a traceback: polars' Parquet writer says "No space
    left on device" in a ComputeError, not an OSError. The store was as before and a rerun finished the job."""
    import polars as pl

    full = pl.exceptions.ComputeError("parquet: External format error: No space left on device (os error 28)")
    assert _own_failure(full).startswith("a disk kanda writes to is full")
    assert _own_failure(pl.exceptions.ComputeError("a bug")) is None
