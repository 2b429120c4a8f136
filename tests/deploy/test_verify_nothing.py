"""`kanda verify` never passes by seeing nothing (a central host pointed at the wrong catalog, an empty folder)."""

from __future__ import annotations

from typer.testing import CliRunner

from kanda.cli import app
from kanda.settings import Settings


def test_verify_with_no_store_and_nothing_published_fails_and_says_why(settings: Settings):
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "nothing could be verified" in " ".join(result.output.split())  # the console wraps long lines
