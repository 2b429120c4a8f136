"""`kanda regions`: list, draft from a sample, dry-run check (which changes nothing on disk), schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.flow import run_region
from kanda.settings import Settings
from regions import all_regions
from tests.regions.spec_regions import write_regions
from tests.support.files import make_files

runner = CliRunner()

RW_SAMPLE = (
    "ACME MOBILE MONEY - MERCHANT STATEMENT\n"
    "Txn Id,Status,Amount,Fee,Transaction Date,Description,From\n"
    'S1,Completed,"15,000",225,05/10/2026 12:00:00,Payment REF RW-C0001/RW-P00001,0788000001\n'
    "S2,Completed,15000,0,05/10/2026 12:05:00,Payment without a reference,0788000002\n"
    "S3,Completed,15.5,0,05/10/2026 12:10:00,Payment REF RW-C0001/RW-P00001,0788000003\n"
    "S4,Cash Out,4000,0,05/10/2026 12:15:00,Agent withdrawal,\n"
    "S5,Completed,9000,0,05/10/2026 12:20:00,Payment REF RW-C0999/RW-P00001,0788000005\n"
    'S1,Completed,"15,000",225,05/10/2026 12:00:00,Payment REF RW-C0001/RW-P00001,0788000001\n'
    'S1,Completed,"16,000",225,05/10/2026 12:00:00,Payment REF RW-C0001/RW-P00001,0788000001\n'
    "Totals,,59500,450,,,\n"
)


def tree_digest(*roots: Path) -> dict[str, str]:
    """Every file under the roots -> its SHA-256 (and every folder -> 'dir'), to prove nothing changed."""
    state: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            state[str(path)] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def spec_settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    write_regions(tmp_path / "regions", monkeypatch)
    return settings


def test_list_shows_each_region_with_currency_exponent_zone_rail_and_store(spec_settings: Settings) -> None:
    make_files(spec_settings, regions=["RW"], rows=200)
    run_region(spec_settings, "RW", steps=("ingest",))
    result = runner.invoke(app, ["regions", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["code"]: r for r in json.loads(result.output)}
    assert set(rows) == set(all_regions())
    rw = rows["RW"]
    assert (rw["currency"], rw["exponent"], rw["zone"], rw["rail"], rw["spec"]) == (
        "RWF",
        0,
        "Africa/Kigali",
        "spec:rw",
        "inline",
    )
    assert rw["landing"] == str(spec_settings.landing_dir / "rw") and rw["store_bytes"] > 0
    assert (rows["KE"]["exponent"], rows["KE"]["rail"], rows["KE"]["store_bytes"]) == (2, "mpesa_statement", None)
    # Whether a rail's files carry its fee: M-Pesa lists charges as rows of their own, Wave puts fees on the
    # balance statement, not in the session; Stripe's export and Paystack's events state the fee.
    fees = {code: rows[code]["fees_stated"] for code in ("KE", "SN", "EG", "NG")}
    assert fees == {"KE": False, "SN": False, "EG": True, "NG": True}
    table = runner.invoke(app, ["regions", "list"])
    assert "Rwanda" in table.output and "spec:rw (inline)" in table.output


def test_check_is_a_dry_run_that_says_what_each_row_would_become(spec_settings: Settings, tmp_path: Path) -> None:
    settings = spec_settings
    make_files(settings, regions=["RW"], rows=200)  # a registry, so unknown creators are held
    run_region(settings, "RW")  # a real store and publication exist: the dry run must not touch them
    sample = tmp_path / "incoming" / "rw_new.csv"
    sample.parent.mkdir()
    sample.write_text(RW_SAMPLE)
    before = tree_digest(settings.home, sample.parent)

    result = runner.invoke(app, ["regions", "check", "RW", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert tree_digest(settings.home, sample.parent) == before

    assert report["counts"] == {"load": 1, "duplicate_in_file": 1, "quarantine": 3, "hold": 1, "ignored": 3}
    outcomes = {r["source_row"]: (r["outcome"], r["why"]) for r in report["rows"]}
    assert outcomes[1] == ("load", None)
    assert outcomes[2][0] == "quarantine" and "missing_or_unreadable (creator_id=None)" in outcomes[2][1]
    assert outcomes[3][0] == "quarantine" and "amount_minor" in outcomes[3][1]
    assert outcomes[5][0] == "hold" and "unknown_creator (creator_id='RW-C0999')" in outcomes[5][1]
    assert outcomes[6] == ("duplicate", None)
    repeat = "repeat_differs (amount_minor='16000 (this event was first recorded with 15000)')"
    assert outcomes[7] == ("quarantine", repeat)  # S1 again with other money
    assert 4 in report["ignored_rows"]  # the Cash Out row (an ignored vocabulary word)
    fields = {f["field"]: f for f in report["fields"]}
    assert fields["amount"]["columns"] == ["Amount"] and fields["amount"]["first_values"][:3] == [15000, 15000, None]
    assert fields["occurred_at"]["columns"] == ["Transaction Date"]
    assert {p["column"] for p in report["parse_failures"]} >= {"amount_minor", "creator_id"}

    human = runner.invoke(app, ["regions", "check", "RW", str(sample)])
    assert human.exit_code == 0 and "dry run" in human.output and "unknown_creator" in human.output
    assert tree_digest(settings.home, sample.parent) == before


def test_check_on_a_fresh_installation_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "fresh"
    monkeypatch.setenv("KANDA_HOME", str(home))
    monkeypatch.delenv("KANDA_BUYER_SALT", raising=False)
    write_regions(tmp_path / "regions", monkeypatch)
    sample = tmp_path / "rw.csv"
    sample.write_text(RW_SAMPLE)
    result = runner.invoke(app, ["regions", "check", "rw", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["hold"] == 0  # no registry: nothing can be held
    assert not home.exists()


def test_check_reports_a_file_the_rail_cannot_read(spec_settings: Settings, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("Receipt,Amount\nA,1\n")
    result = runner.invoke(app, ["regions", "check", "RW", str(wrong), "--json"])
    assert result.exit_code == 1
    assert "required column(s) missing" in json.loads(result.output)["rejected"]


def test_new_drafts_a_region_that_check_can_run_once_finished(
    spec_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = tmp_path / "kigali.csv"
    sample.write_text(
        "Merchant statement\n"
        "Transaction ID,Date,Status,Amount,Fee,Reference,Payer Email\n"
        "K1,2026-10-05 10:00:00,Successful,12500,190,RW-C0001.RW-P00001,a@b.example\n"
        "K2,2026-10-05 11:00:00,Failed,9000,0,RW-C0002.RW-P00005,c@d.example\n"
        "K3,2026-10-05 12:00:00,Pending,9000,0,RW-C0002.RW-P00005,c@d.example\n"
    )
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    out = drafts / "kq.yaml"
    args = ["regions", "new", "KQ", "--sample", str(sample), "--out", str(out), "--currency", "RWF"]
    result = runner.invoke(app, [*args, "--zone", "Africa/Kigali", "--calling-code", "250", "--name", "Kigali test"])
    assert result.exit_code == 0, result.output
    draft = out.read_text()
    assert 'delimiter: ","  # detected' in draft and "the header is on line 2" in draft
    assert '"Successful": [sale, success]' in draft and '"Failed": [sale, failed]' in draft
    assert 'transaction_id: "Transaction ID"' in draft and 'occurred_at: "Date"' in draft
    assert 'buyer: {of: "Payer Email", kind: email}' in draft
    # The person finishing the draft decides the units and the reference pattern; here the drafted ones fit.
    finished = draft.replace("unit: minor,", "unit: major,").replace(
        r"(?P<creator_id>KQ-C\d{4})\.(?P<product_id>KQ-P\d{5})", r"(?P<creator_id>RW-C\d{4})\.(?P<product_id>RW-P\d{5})"
    )
    out.write_text(finished)
    monkeypatch.setenv("KANDA_REGIONS_DIR", f"{drafts}")
    checked = runner.invoke(app, ["regions", "check", "KQ", str(sample), "--json"])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["counts"]["load"] + report["counts"]["quarantine"] == 3
    fields = {f["field"]: f["first_values"] for f in report["fields"]}
    assert fields["amount"] == [12500, 9000, 9000]  # RWF: exponent 0


def test_schema_is_json_for_editors() -> None:
    result = runner.invoke(app, ["regions", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "kanda rail spec" and "fields" in schema["properties"]


def test_check_quarantines_a_repeat_naming_another_owner_as_ingestion_does(spec_settings: Settings, tmp_path: Path):
    """The dry run holds a repeat to what its event was first recorded with, creator and product included."""
    make_files(spec_settings, regions=["RW"], rows=200)
    sample = tmp_path / "rw_owner.csv"
    sample.write_text(
        "Txn Id,Status,Amount,Fee,Transaction Date,Description,From\n"
        "S1,Completed,15000,225,05/10/2026 12:00:00,Payment REF RW-C0001/RW-P00001,0788000001\n"
        "S1,Completed,15000,225,05/10/2026 12:00:00,Payment REF RW-C0002/RW-P00002,0788000001\n"
    )
    result = runner.invoke(app, ["regions", "check", "RW", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    outcomes = {r["source_row"]: (r["outcome"], r["why"]) for r in json.loads(result.output)["rows"]}
    assert outcomes[1] == ("load", None)
    assert outcomes[2][0] == "quarantine"
    assert "repeat_other_owner (creator_id='RW-C0002 (this event was first recorded with RW-C0001)')" in outcomes[2][1]
