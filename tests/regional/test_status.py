"""`kanda quarantine` (kanda/regional/status.py): a status filter it does not know is a usage error, never an empty
answer that reads as "nothing in quarantine"."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.regional.status import QUARANTINE_STATUSES, quarantine_rows
from kanda.settings import Settings
from tests.support.files import make_files

runner = CliRunner()


def flat(text: str) -> str:
    """Output with Rich's line wrapping and the usage box's borders undone."""
    return " ".join(text.replace("│", " ").split())


def test_an_unknown_quarantine_status_is_a_usage_error_and_a_known_one_in_any_case_filters(settings: Settings):
    make_files(settings, regions=["KE"], rows=200)
    ingest_landing(settings, "KE")
    every = quarantine_rows(settings, "KE", limit=1000)
    assert every  # the generated file has dirty rows: an empty answer below would mean the filter found nothing

    bogus = runner.invoke(app, ["quarantine", "-r", "KE", "--status", "bogus"], terminal_width=200)
    assert bogus.exit_code == 2, bogus.output
    assert "unknown status 'bogus'; choose from open, held, released, rejected" in flat(bogus.output)
    assert "nothing in quarantine" not in bogus.output
    with pytest.raises(ValueError, match="unknown quarantine status 'bogus'"):
        quarantine_rows(settings, "KE", status="bogus")

    for status in QUARANTINE_STATUSES:
        expected = sum(row["status"] == status for row in every)
        for spelled in (status, status.upper()):
            shown = runner.invoke(app, ["quarantine", "-r", "KE", "--status", spelled, "--limit", "1000", "--json"])
            assert shown.exit_code == 0, shown.output
            rows = [json.loads(line) for line in shown.stdout.splitlines()]
            assert len(rows) == expected and all(row["status"] == status for row in rows)
