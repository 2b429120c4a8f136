"""Settings read without pydantic-settings are the ones pydantic-settings reads; a bad value is refused the same.

`kanda.settings.environment` reads plain values itself (so that a one-shot `kanda query` need not import pydantic) and
hands everything else to the pydantic-settings model made from the same list of variables. These tests hold the two
to the same answer: a value read here is the value pydantic-settings gives, and a value it refuses is never read here.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

import kanda.settings
from kanda.settings import GROUPS, KANDA, SMTP, Settings, _plain, environment, load_settings

VARIABLES = [(group, v) for group in GROUPS.values() for v in group.variables]
#: Characters that make numbers, flags and paths, and the ones that make them ambiguous.
TEXT = st.text(alphabet="0123456789.-+_ eEinfINFtrueFALSyonffYN~/a\t", max_size=8)


def pydantic_reads(group, variable, text: str) -> object:
    """What the pydantic-settings model reads for one variable set to `text` (ValidationError if it refuses it)."""
    with mock.patch.dict(os.environ, {variable.variable(group.prefix): text}, clear=True):
        return getattr(kanda.settings, group.title)().model_dump()[variable.name]


@given(text=TEXT)
@example(text="600")
@example(text="0")
@example(text="007")
@example(text="0.5")
@example(text="TRUE")
@example(text="")
def test_a_value_read_without_pydantic_is_the_value_pydantic_settings_reads(text: str):
    for group, variable in VARIABLES:
        value = _plain(variable, text)
        if value is kanda.settings._DOUBT:
            continue  # pydantic-settings reads it (or refuses it with its message)
        expected = pydantic_reads(group, variable, text)  # raises if pydantic-settings would have refused it
        assert (type(value), value) == (type(expected), expected), (variable.name, text)


def test_every_setting_read_plainly_matches_the_pydantic_settings_model(tmp_path: Path):
    environ = {
        "KANDA_HOME": str(tmp_path / "home"),
        "KANDA_CATALOG_URL": "postgresql://kanda:secret@db/catalog",
        "KANDA_WAREHOUSE": "s3://bucket/warehouse",
        "KANDA_BUYER_SALT": "salt",
        "KANDA_DUCKDB_MEMORY": "1GB",
        "KANDA_BATCH_ROWS": "400",
        "KANDA_LOCK_WAIT": "0.5",
        "KANDA_REGIONS": "ke, ng",
        "KANDA_CATALOG_PROPERTIES": '{"s3.region": "eu-west-1"}',
        "KANDA_SMTP_HOST": "mail.example",
        "KANDA_SMTP_PORT": "2525",
        "KANDA_SMTP_STARTTLS": "false",
        "KANDA_SMTP_FROM": "reports <r@example.org>",
        "KANDA_NOT_A_SETTING": "ignored",
    }
    with mock.patch.dict(os.environ, environ, clear=True):
        for group in (KANDA, SMTP):
            assert environment(group) == getattr(kanda.settings, group.title)().model_dump()
        settings = load_settings()
    assert settings.batch_rows == 400 and settings.lock_wait_seconds == 0.5 and settings.served == ("KE", "NG")
    assert settings.smtp is not None and (settings.smtp.port, settings.smtp.starttls) == (2525, False)


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("KANDA_LOCK_WAIT", "soon"),
        ("KANDA_LOCK_WAIT", "-1"),
        ("KANDA_BATCH_ROWS", "0"),
        ("KANDA_SMTP_PORT", "25x"),
        ("KANDA_INGEST_MEMORY", "lots"),
        ("KANDA_DUCKDB_MEMORY", "2000"),  # no unit: DuckDB would refuse it only when a store opens
    ],
)
def test_a_bad_value_is_refused_by_pydantic_settings_naming_the_variable(settings: Settings, variable: str, text: str):
    with mock.patch.dict(os.environ, {variable: text}), pytest.raises(ValidationError) as refused:
        load_settings()
    assert refused.value.title in GROUPS
    assert [error["input"] for error in refused.value.errors()] == [text]


def test_a_variable_in_lower_case_is_read_as_pydantic_settings_reads_it(settings: Settings):
    with mock.patch.dict(os.environ, {"kanda_batch_rows": "1_000"}):  # not the plain form: pydantic-settings reads it
        os.environ.pop("KANDA_BATCH_ROWS", None)
        assert load_settings().batch_rows == 1000


def test_the_analyst_memory_cap_leaves_room_for_every_core_and_duckdbs_own_limit(monkeypatch: pytest.MonkeyPatch):
    """A fixed 8 GiB cap failed ordinary work on many-core machines (every core adds thread stacks, malloc arenas
    and pool threads) and under a large KANDA_DUCKDB_MEMORY; `auto` grows with both."""
    from kanda.memory_cap import auto_limit

    gib = 1024**3
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert auto_limit("2GB") == 8.5 * gib
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert auto_limit("2GB") == 24 * gib and auto_limit("16GB") == 52 * gib
    assert load_settings().analyst_memory == "auto"
