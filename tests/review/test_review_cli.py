"""`kanda review ...` as an operator runs it: JSON out, filters, re-validation errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.steward_files import ingest_dirty_egypt, ingest_dirty_kenya

runner = CliRunner()


def run(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["review", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_review_commands_end_to_end(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    assert run("enqueue", "--json") == {"enqueued": {"EG": 4}}
    assert run("enqueue", "-r", "EG", "--json") == {"enqueued": {"EG": 0}}

    listed = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")
    assert listed["total"] == 1
    (bad,) = listed["items"]
    assert bad["transaction_id"] == "ch_bad" and bad["status"] == "new"
    assert run("counts", "--by", "status", "--json") == {"new": 4}

    shown = run("show", str(bad["id"]), "--json")
    assert shown["raw_record"]["Amount"] == "25O,00"
    assert shown["revalidation"]["ok"] is False

    invalid = run("fix", str(bad["id"]), "--set", "amount_minor=-25000", "--actor", "ops", "--json", code=1)
    assert [e["rule"] for e in invalid["errors"]] == ["amount_sign_matches_event_type"]
    fixed = run("fix", str(bad["id"]), "--set", "amount_minor=25000", "--approve", "--actor", "ops", "--json")
    assert fixed["ok"] is True and fixed["approved"] is True

    rejected = run("reject", "--rule", "amount_sign_matches_event_type", "-r", "EG", "--reason", "sandbox", "--json")
    assert len(rejected["done"]) == 1 and rejected["skipped"] == []
    refused = run("waive", str(bad["id"]), "--justification", "x", "--json", code=1)
    assert "only possible while it is new or in review" in refused["error"]

    (eg,) = run("reprocess", "--json")["regions"]
    assert eg["loaded"] == [bad["id"]] and len(eg["rejected_recorded"]) == 1 and eg["publish_id"]
    (again,) = run("reprocess", "-r", "EG", "--json")["regions"]
    assert again["loaded"] == [] and again["publish_id"] is None

    history = [(h["actor"], h["action"]) for h in run("show", str(bad["id"]), "--json")["history"]]
    assert history == [
        ("system:enqueue", "enqueue"),
        ("ops", "edit"),  # the refused -25000 edit is kept as work in progress, then replaced
        ("ops", "approve"),  # with the edits typed: saved and approved at once
        ("system:reprocess", "reprocess"),
    ]
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]


def test_fix_and_approve_approves_what_was_typed_not_a_save_in_between(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`fix --set ... --approve` used to save the edits, then approve whatever was saved by then: another steward's
    edit saved in between was approved under this steward's name, and loaded (here 100 times the amount typed). The
    edits are now saved and approved in one transaction, so the approval is of the values typed."""
    from kanda.review import service
    from kanda.review.actor import Actor

    ingest_dirty_egypt(settings, tmp_path / "in")
    run("enqueue", "--json")
    (bad,) = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")["items"]
    save, rival_saved = service.save_edits, []

    def a_rival_saves_right_after(*args, **kwargs):
        verdict = save(*args, **kwargs)
        if not rival_saved:
            rival_saved.append(True)
            save(settings, Actor("bola", "steward", None), bad["id"], {"amount_minor": "2500000"})
        return verdict

    monkeypatch.setattr(service, "save_edits", a_rival_saves_right_after)
    fixed = run("fix", str(bad["id"]), "--set", "amount_minor=25000", "--approve", "--actor", "amina", "--json")
    assert fixed["approved"] is True
    shown = run("show", str(bad["id"]), "--json")
    assert shown["status"] == "fixed" and shown["edits"]["amount_minor"] == "25000"
    assert [(h["actor"], h["action"]) for h in shown["history"]][-1] == ("amina", "approve")
    (eg,) = run("reprocess", "--json")["regions"]
    assert eg["loaded"] == [bad["id"]]
    with open_store(settings, "EG", read_only=True) as con:
        loaded = con.execute("SELECT amount_minor FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall()
    assert loaded == [(25000,)]


def test_usage_errors_exit_2(settings: Settings):
    assert runner.invoke(app, ["review", "reject", "--reason", "everything"]).exit_code == 2  # no ids, no filter
    assert runner.invoke(app, ["review", "list", "-r", "XX"]).exit_code == 2
    assert runner.invoke(app, ["review", "list", "--status", "done"]).exit_code == 2
    assert runner.invoke(app, ["review", "fix", "1", "--set", "amount_minor"]).exit_code == 2
    assert runner.invoke(app, ["review", "show", "99", "--json"]).exit_code == 1


def test_an_integer_beyond_64_bits_cannot_be_read(settings: Settings, tmp_path: Path):
    """A minor-units value too large for the contract's 64-bit integers is refused like any unreadable value:
    the verdict names it, exit 1, no traceback (it used to reach polars as an i128 and crash)."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    run("enqueue", "--json")
    (bad,) = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")["items"]
    huge = "99999999999999999999999"
    for column in ("amount_minor", "fee_minor", "net_minor"):
        for value in (huge, f"-{huge}", "9223372036854775808"):
            result = runner.invoke(app, ["review", "fix", str(bad["id"]), "--set", f"{column}={value}", "--json"])
            assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
            verdict = json.loads(result.stdout)
            assert verdict["ok"] is False
            (unreadable,) = [e for e in verdict["errors"] if e["column"] == column]
            assert unreadable["rule"].startswith("unreadable:") and "64 bits" in unreadable["rule"]
            assert unreadable["value"] == value
    # each value fits, their difference (the derived net) does not
    both = run("fix", str(bad["id"]), "--set", f"amount_minor={2**63 - 1}", "--set", "fee_minor=-1", "--json", code=1)
    (net,) = [e for e in both["errors"] if e["column"] == "net_minor"]
    assert net["rule"].startswith("unreadable:")
    # without --json: a plain verdict on the terminal, not a traceback
    plain = runner.invoke(app, ["review", "fix", str(bad["id"]), "--set", f"amount_minor={huge}"])
    assert plain.exit_code == 1 and isinstance(plain.exception, SystemExit), plain.output
    assert "unreadable" in plain.output and "Traceback" not in plain.output
    # the largest 64-bit value is read (and then judged by the contract's range, not refused as unreadable)
    big = run("fix", str(bad["id"]), "--set", f"amount_minor={2**63 - 1}", "--set", "net_minor=0", "--json", code=1)
    assert not [e for e in big["errors"] if e["rule"].startswith("unreadable")]


def test_reprocess_goes_on_past_a_region_that_fails(settings: Settings, tmp_path: Path):
    """Without --region every region with a store is reprocessed on its own: one that fails is reported by name with
    its error (in --json too), the others' fixes are still loaded and reported, and the exit code is 1."""
    ingest_dirty_egypt(settings, tmp_path / "eg")
    ingest_dirty_kenya(settings, tmp_path / "ke")
    run("enqueue", "--json")
    (eg_bad,) = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")["items"]
    run("fix", str(eg_bad["id"]), "--set", "amount_minor=25000", "--approve", "--json")
    ke_bad = next(i for i in run("list", "--region", "KE", "--json")["items"] if i["transaction_id"] == "SKE0000002")
    run("fix", str(ke_bad["id"]), "--set", "amount_minor=1230000", "--approve", "--json")

    def broken(region: str) -> Path:
        """The region's store replaced by a file that is not a DuckDB database; returns where the real one is."""
        store = settings.store_path(region)
        kept = store.with_name(store.name + ".kept")
        store.rename(kept)
        store.write_bytes(b"not a duckdb database" * 1000)
        return kept

    # EG (first in order) fails: KE, after it, is still reprocessed
    kept = broken("EG")
    result = runner.invoke(app, ["review", "reprocess", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    eg, ke = answer["regions"]
    assert eg["region"] == "EG" and eg["error"] and "loaded" not in eg
    assert ke["region"] == "KE" and ke["error"] is None and ke["loaded"] == [ke_bad["id"]] and ke["publish_id"]
    kept.replace(settings.store_path("EG"))

    # KE (last) fails: EG's result, before it, is still reported; the plain output names the failed region
    kept = broken("KE")
    result = runner.invoke(app, ["review", "reprocess"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = " ".join(result.output.split())
    assert "EG: 1 loaded" in lines and "KE: FAILED:" in lines
    kept.replace(settings.store_path("KE"))

    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]
    with open_store(settings, "KE", read_only=True) as con:
        loaded = "SELECT count(*) FROM sale_events WHERE transaction_id = 'SKE0000002'"
        assert con.execute(loaded).fetchall() == [(1,)]
    (eg, ke) = run("reprocess", "--json")["regions"]  # all healthy again: nothing waiting, exit 0
    assert eg["loaded"] == ke["loaded"] == [] and eg["error"] is None and ke["error"] is None


def test_an_item_id_beyond_64_bits_is_no_such_item(settings: Settings, tmp_path: Path):
    """An id too large for the database's integers is answered like an id that does not exist (exit 1 and the usual
    "no review item" message, in --json too), never a traceback (it used to reach SQLite and overflow)."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    run("enqueue", "--json")
    missing = runner.invoke(app, ["review", "show", "99", "--json"])
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"] == "no review item 99"
    for huge in ("99999999999999999999", str(2**63)):  # (a negative number is read as an option: a usage error)
        for args in (
            ["show", huge],
            ["fix", huge, "--set", "amount_minor=1"],
            ["approve", huge],
            ["waive", huge, "--justification", "x"],
            ["reject", huge, "--reason", "x"],
        ):
            for as_json in ([], ["--json"]):
                result = runner.invoke(app, ["review", *args, *as_json])
                assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.output)
                assert "Traceback" not in result.output
                if as_json:
                    assert json.loads(result.stdout) == {"ok": False, "error": f"no review item {huge}"}
                else:
                    assert "no review item" in " ".join(result.output.split())
    # among other ids (the bulk path) it matches nothing, like an id that does not exist
    huge = ("99999999999999999999", str(2**63))
    nothing = runner.invoke(app, ["review", "reject", "98", *huge, "--reason", "x", "--json"])
    assert nothing.exit_code == 1 and json.loads(nothing.stdout) == {"action": "reject", "done": [], "skipped": []}
    (some,) = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")["items"]
    listed = run("reject", str(some["id"]), *huge, "--reason", "x", "--json")
    assert listed["done"] == [some["id"]] and listed["skipped"] == []


def test_absurd_ages_are_a_usage_error_or_clamped_never_a_traceback(settings: Settings, tmp_path: Path):
    """`--min-age` / `--max-age` that are no number of days (inf, nan, negative) are a usage error naming the option
    (exit 2); a finite age past the calendar is clamped: nothing is older, everything is newer. (These used to end
    in OverflowError or "date value out of range".)"""
    ingest_dirty_egypt(settings, tmp_path / "in")
    run("enqueue", "--json")
    for huge in ("1e10", "1000000", "1e308", "999999999"):
        assert run("list", "--min-age", huge, "--json")["total"] == 0
        assert run("list", "--max-age", huge, "--json")["total"] == 4
        assert run("counts", "--min-age", huge, "--json") == {"all": 0}
        assert run("counts", "--max-age", huge, "--by", "status", "--json") == {"new": 4}
        nothing = run("reject", "--min-age", huge, "--reason", "old", "--json", code=1)
        assert nothing == {"action": "reject", "done": [], "skipped": []}
    for option in ("--min-age", "--max-age"):
        for bad in ("inf", "-inf", "nan", "-1", "-0.5"):
            for args in (["list"], ["counts"], ["reject", "--reason", "x"], ["approve"]):
                result = runner.invoke(app, ["review", *args, f"{option}={bad}"])
                assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (args, result.output)
                assert "Traceback" not in result.output
                assert option in result.output and "finite number of days" in " ".join(result.output.split())
    assert run("counts", "--by", "status", "--json") == {"new": 4}  # nothing was decided


def test_fix_shows_what_it_will_store_in_the_regions_currency_and_local_day(settings: Settings, tmp_path: Path):
    """`--set` takes minor units and ISO instants; what the row will store is shown in the region's terms too, so
    that a number off by the currency's exponent, or a time read in the wrong zone, shows before it is approved."""
    ingest_dirty_kenya(settings, tmp_path / "in")
    run("enqueue", "--json")
    items = {i["transaction_id"]: i["id"] for i in run("list", "--json")["items"]}
    fixed = run("fix", str(items["SKE0000002"]), "--set", "amount_minor=1230000", "--json")
    assert fixed["will_store"]["amount_minor"] == "1230000 minor units (KES 12,300.00)"
    shown = runner.invoke(app, ["review", "fix", str(items["SKE0000004"]), "--set", "occurred_at=2026-10-05 23:30"])
    assert shown.exit_code == 0, shown.output
    assert "will store occurred_at: 2026-10-05 20:30 UTC, local day 2026-10-05" in shown.output
    assert "will store amount_minor: 200000 minor units (KES 2,000.00)" in shown.output


def test_a_decided_item_whose_row_left_the_store_is_named_not_nothing_waiting(settings: Settings, tmp_path: Path):
    """An approved fix whose quarantine row is no longer in the store (a store rebuilt from its files) can never
    load; the run said "nothing waiting", so the steward believed it done while it stayed `fixed` for ever."""
    ingest_dirty_egypt(settings, tmp_path / "in")
    run("enqueue", "--json")
    (bad,) = run("list", "--rule", "missing_or_unreadable", "--region", "EG", "--json")["items"]
    run("fix", str(bad["id"]), "--set", "amount_minor=25000", "--approve", "--json")
    with open_store(settings, "EG") as con:
        con.execute("DELETE FROM quarantine WHERE transaction_id = ?", [bad["transaction_id"]])
    result = runner.invoke(app, ["review", "reprocess", "-r", "EG"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"EG: item(s) {bad['id']} were decided, but their quarantine row is no longer in the region's store" in said
    assert "EG: nothing else waiting" in said
    assert run("show", str(bad["id"]), "--json")["status"] == "fixed"
