"""`kanda review ...` as an operator runs it: JSON out, filters, re-validation errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.steward_files import ingest_dirty_egypt

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
        ("ops", "edit"),
        ("ops", "approve"),
        ("system:reprocess", "reprocess"),
    ]
    with open_store(settings, "EG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE transaction_id = 'ch_bad'").fetchall() == [(1,)]


def test_usage_errors_exit_2(settings: Settings):
    assert runner.invoke(app, ["review", "reject", "--reason", "everything"]).exit_code == 2  # no ids, no filter
    assert runner.invoke(app, ["review", "list", "-r", "XX"]).exit_code == 2
    assert runner.invoke(app, ["review", "list", "--status", "done"]).exit_code == 2
    assert runner.invoke(app, ["review", "fix", "1", "--set", "amount_minor"]).exit_code == 2
    assert runner.invoke(app, ["review", "show", "99", "--json"]).exit_code == 1
