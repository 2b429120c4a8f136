"""`kanda verify` never passes by seeing nothing (a central host pointed at the wrong catalog, an empty folder)."""

from __future__ import annotations

from typer.testing import CliRunner

from kanda.cli import app
from kanda.settings import Settings


def test_verify_with_no_store_and_nothing_published_fails_and_says_why(settings: Settings):
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "nothing could be verified" in " ".join(result.output.split())  # the console wraps long lines


def test_verify_of_a_named_region_with_nothing_here_says_so_and_creates_no_store(settings: Settings):
    """`kanda verify -r GH` where GH has no store and was never published used to create an empty GH store, which
    `status` and `publish` then listed as a region of this host."""
    result = CliRunner().invoke(app, ["verify", "-r", "GH"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "GH: no store at" in said and "nothing to verify" in said
    assert not settings.store_path("GH").exists()
