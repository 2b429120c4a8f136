"""`kanda review` refuses what a careless operator types that the contract would let through: ids with characters
no one can see or tell apart, and reasons or values longer than the append-only audit log should keep."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kanda.cli import app
from kanda.settings import Settings
from tests.support.steward_files import ingest_dirty_egypt

runner = CliRunner()


def review(*args: str) -> tuple[int, str]:
    """Exit code and output, the usage box's borders and line breaks taken out."""
    result = runner.invoke(app, ["review", *args])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_a_typed_id_no_one_can_read_or_a_reason_too_long_to_keep_is_a_usage_error(settings: Settings, tmp_path: Path):
    ingest_dirty_egypt(settings, tmp_path / "in")
    review("enqueue")
    listed = json.loads(review("list", "--region", "EG", "--json")[1])
    ids = {i["transaction_id"]: i["id"] for i in listed["items"]}
    bad = str(ids["ch_bad"])

    for typed in ("ch_bad\u200b", "ch_b\u0430d", "ｃh_bad"):  # zero-width space, Cyrillic a, full-width c
        fix = ("--set", f"transaction_id={typed}", "--set", "amount_minor=25000", "--approve")  # else it would pass
        code, output = review("fix", bad, *fix)
        assert code == 2 and "plain characters" in output, (typed, output)
    code, output = review("fix", bad, "--set", "channel=" + "x" * 300)
    assert code == 2 and "a field takes at most 256" in output
    essay = "The buyer called twice." * 100
    for args in (("reject", bad, "--reason", essay), ("waive", str(ids["ch_future"]), "--justification", essay)):
        code, output = review(*args)
        assert code == 2 and "2,300 characters" in output, args
    code, output = review("fix", bad, "--set", "amount_minor=25000", "--approve", "--reason", essay)
    assert code == 2 and "2,300 characters" in output

    shown = json.loads(review("show", bad, "--json")[1])
    assert shown["status"] == "new" and shown["edits"] == {}
    assert [h["action"] for h in shown["history"]] == ["enqueue"]
    code, output = review("fix", bad, "--set", "amount_minor=25000", "--approve", "--reason", essay[:2000])
    assert code == 0, output

    # A time at the calendar's edge has no UTC instant Python can hold: unreadable, as any other (it was a traceback).
    for edge in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"):
        code, output = review("fix", str(ids["ch_future"]), "--set", f"occurred_at={edge}")
        assert code == 1 and "still broken: unreadable: an ISO time" in output, (edge, output)
