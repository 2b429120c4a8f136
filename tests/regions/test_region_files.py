"""One region must never stop the others: a region file that does not validate leaves out only its own region.

The set of regions (`all_regions`) skips such a file and records it (`broken_regions`: path -> why); asking for its
region names the file and the problem; reading one file (`load_region_file`), `all_regions(strict=True)` and
`kanda regions check` stay strict. The commands then work for every healthy region.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.settings import Settings
from regions import (
    RegionUnavailable,
    all_regions,
    broken_regions,
    get_region,
    load_region_file,
    unavailable_regions,
)
from regions.yamlfile import SpecError
from tests.regions.spec_regions import RW_YAML, UG_YAML, write_regions
from tests.support.files import make_files

ROOT = Path(__file__).resolve().parents[2]
NOT_YAML = "code: XX\nname: B\ncurrency: [unclosed\n"
ON_MARS = RW_YAML.replace("code: RW", "code: YY").replace("zone: Africa/Kigali", "zone: Mars/Olympus")


@pytest.fixture
def broken_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """UG is healthy; xx.yaml is not YAML; yy.yaml is well-formed with a zone that does not exist."""
    return write_regions(tmp_path / "regions", monkeypatch, ug=UG_YAML, xx=NOT_YAML, yy=ON_MARS)


def test_a_broken_region_file_leaves_out_only_its_own_region(broken_dir: Path) -> None:
    regions = all_regions()
    assert {"KE", "NG", "EG", "UG"} <= set(regions)
    assert not {"XX", "YY"} & set(regions)
    assert broken_regions() == {
        str(broken_dir / "xx.yaml"): f"{broken_dir / 'xx.yaml'}:4: expected ',' or ']', but got '<stream end>'",
        str(broken_dir / "yy.yaml"): f"{broken_dir / 'yy.yaml'}:5: zone: 'Mars/Olympus' is not an IANA time zone"
        " (e.g. Africa/Kigali)",
    }
    assert set(unavailable_regions()) == {"XX", "YY"}
    assert get_region("ug").currency == "UGX"


def test_asking_for_a_broken_region_names_its_file_and_the_problem(broken_dir: Path) -> None:
    with pytest.raises(RegionUnavailable) as caught:
        get_region("xx")
    assert str(caught.value) == (
        f"region XX cannot be used: {broken_dir / 'xx.yaml'}:4: expected ',' or ']', but got '<stream end>'"
    )
    assert isinstance(caught.value, SpecError)  # the CLI's one-line `Error:` for region files covers it
    with pytest.raises(RegionUnavailable, match=r"region YY cannot be used: .*yy\.yaml:5: zone: 'Mars/Olympus'"):
        get_region("YY")
    with pytest.raises(KeyError, match=r"unknown region 'QQ'.*did not load: .*xx\.yaml"):
        get_region("QQ")


def test_reading_one_region_file_and_the_strict_set_stay_strict(broken_dir: Path) -> None:
    with pytest.raises(SpecError, match=r"xx\.yaml:4: expected ',' or ']'"):
        load_region_file(broken_dir / "xx.yaml")
    with pytest.raises(SpecError, match=r"yy\.yaml:5: zone: 'Mars/Olympus' is not an IANA time zone"):
        load_region_file(broken_dir / "yy.yaml")
    with pytest.raises(SpecError) as caught:
        all_regions(strict=True)
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [
        str(broken_dir / "xx.yaml"),
        str(broken_dir / "yy.yaml"),
    ]


def test_a_broken_file_is_logged_once_by_path_and_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_regions(tmp_path / "regions", monkeypatch, xx=NOT_YAML)
    with caplog.at_level(logging.WARNING, logger="regions"):
        all_regions()
        all_regions()
    (record,) = [r for r in caplog.records if r.name == "regions"]
    assert f"{folder / 'xx.yaml'}:4: expected ','" in record.getMessage()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (RW_YAML.replace("quarantine_rate: {warn: 0.05, error: 0.25}", "quarantine_rate: 5"), "TypeError"),
        (RW_YAML.encode("utf-8").replace(b"Rwanda", b"Rw\xe9nda"), "cannot be read"),
        ("- just\n- a list\n", "a region file is a mapping of keys"),
    ],
    ids=["value of the wrong kind", "not UTF-8", "not a mapping"],
)
def test_any_problem_with_a_file_is_a_spec_error_that_stops_only_its_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes, problem: str
) -> None:
    folder = write_regions(tmp_path / "regions", monkeypatch, ug=UG_YAML)
    path = folder / "rw.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SpecError, match=problem):
        load_region_file(path)
    assert "UG" in all_regions() and "RW" not in all_regions()
    assert problem in broken_regions()[str(path)]
    with pytest.raises(RegionUnavailable, match=problem):
        get_region("RW")


def test_a_code_defined_twice_makes_that_region_unusable_and_names_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_regions(tmp_path / "regions", monkeypatch, ke=RW_YAML.replace("code: RW", "code: KE"), ug=UG_YAML)
    assert "KE" not in all_regions()  # which of the two was meant is not for kanda to guess
    assert {"NG", "UG"} <= set(all_regions())
    shipped = Path(__file__).resolve().parents[2] / "regions" / "config" / "ke.yaml"
    reason = broken_regions()[str(folder / "ke.yaml")]
    assert reason == f"{folder / 'ke.yaml'}:1: code: region KE is already defined in {shipped}"
    with pytest.raises(RegionUnavailable, match=r"ke\.yaml:1: code: region KE is already defined in .*ke\.yaml"):
        get_region("KE")


def test_a_region_that_claims_another_regions_landing_folder_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """A copied region file that kept `landing: gh` would ingest Ghana's files into its own store, silently."""
    copy = UG_YAML.replace("code: UG", "code: XA") + "landing: gh\n"
    folder = write_regions(tmp_path / "regions", monkeypatch, xa=copy, ug=UG_YAML)
    assert "XA" not in all_regions() and {"GH", "UG"} <= set(all_regions())
    reason = broken_regions()[str(folder / "xa.yaml")]
    assert "landing: folder 'gh' is already region GH's landing folder" in reason
    with pytest.raises(RegionUnavailable, match="already region GH's landing folder"):
        get_region("XA")
    make_files(settings, regions=["GH"], rows=20)
    refused = CliRunner().invoke(app, ["ingest", "-r", "XA"])
    assert refused.exit_code == 1 and "already region GH's landing folder" in " ".join(refused.output.split())
    assert list(settings.landing("GH").glob("*.*"))  # Ghana's file is still waiting for Ghana


def test_regions_of_other_hosts_may_share_a_landing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two region hosts each mounting their own /srv/drop: each host runs one of the regions (KANDA_REGIONS), so the
    paths are different folders, and neither region is refused."""
    shared = UG_YAML + "landing: /srv/drop\n"
    write_regions(
        tmp_path / "regions",
        monkeypatch,
        xa=shared.replace("code: UG", "code: XA"),
        xb=shared.replace("code: UG", "code: XB"),
    )
    monkeypatch.setenv("KANDA_REGIONS", "XB")
    assert get_region("XB").landing == "/srv/drop"
    monkeypatch.delenv("KANDA_REGIONS")  # one host running both: that is a clash again
    with pytest.raises(RegionUnavailable, match="already region XA's landing folder"):
        get_region("XB")


def test_a_broken_file_claiming_a_shipped_code_makes_that_region_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's second KE that does not validate is no reason to run KE on the shipped file unnoticed."""
    folder = write_regions(tmp_path / "regions", monkeypatch, kenya=NOT_YAML.replace("XX", "KE"))
    assert "KE" not in all_regions() and "NG" in all_regions()
    with pytest.raises(RegionUnavailable, match=r"region KE cannot be used: .*kenya\.yaml:4:"):
        get_region("KE")
    assert list(broken_regions()) == [str(folder / "kenya.yaml")]


# ------------------------------------------------------------------------------------------------- the commands
runner = CliRunner()


def test_the_commands_work_for_the_healthy_regions_beside_a_broken_file(settings: Settings, broken_dir: Path) -> None:
    make_files(settings, regions=["KE"], rows=200)
    ingested = runner.invoke(app, ["ingest", "-r", "KE"])
    assert ingested.exit_code == 0, ingested.output
    published = runner.invoke(app, ["publish", "-r", "KE"])
    assert published.exit_code == 0, published.output
    assert "KE" in published.stdout and "Traceback" not in published.output
    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert "KE" in shown.stdout


def test_regions_check_of_a_broken_region_fails_naming_the_file(tmp_path: Path, broken_dir: Path) -> None:
    """A real process: what an operator finishing a region file sees (the log line names the file and why)."""
    sample = tmp_path / "sample.csv"
    sample.write_text("a,b\n1,2\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KANDA_REGIONS_DIR": str(broken_dir), "KANDA_HOME": str(tmp_path)}
    code = "import sys; from kanda.cli import main; sys.argv = ['kanda', *sys.argv[1:]]; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "regions", "check", "XX", str(sample)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"{broken_dir / 'xx.yaml'}:4: expected ',' or ']'" in " ".join((done.stdout + done.stderr).split())


def test_regions_list_shows_the_healthy_regions_and_names_each_broken_file(broken_dir: Path) -> None:
    result = CliRunner().invoke(app, ["regions", "list", "--json"])
    assert result.exit_code == 1  # the others are listed, and the operator is told something is wrong
    codes = {row["code"] for row in json.loads(result.stdout)}
    assert "UG" in codes and "KE" in codes and not codes & {"XX", "YY"}
    assert f"not loaded: {broken_dir / 'xx.yaml'}" in result.stderr
    assert f"not loaded: {broken_dir / 'yy.yaml'}" in result.stderr and "Mars/Olympus" in result.stderr
    checked = CliRunner().invoke(app, ["regions", "check", "YY", str(broken_dir / "ug.yaml")])
    assert checked.exit_code == 1 and "Mars/Olympus" in " ".join(checked.stderr.split())
