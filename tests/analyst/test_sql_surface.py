"""Analyst SQL against the corners of DuckDB's grammar that the first guard did not look at, on every path.

`SHOW <name>` is DuckDB's `pragma_show('<name>')`: it describes a table, or prints the value of the setting of that
name. `SHOW temp_directory` passed the statement check (a SHOW is a SELECT over a `SHOW_REF`, which named no table
the check knew of) and answered the reader file's path under KANDA_HOME; `SHOW pg_settings` described system views.
Each such statement is now refused with 403 by the API and exit 1 by `kanda query`, and no answer shows the server's
paths; the SHOW and DESCRIBE analysts use on the rollups still answer.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.settings import Settings

SHOWS_THE_SERVER = [
    "show temp_directory",
    "SHOW Temp_Directory",
    'show "temp_directory"',
    "show /* a setting */ home_directory",
    "show memory_limit",
    "show secret_directory",
    "show extension_directory",
    "show pg_settings",
    "show duckdb_databases",
    "show variables",
    "show snapshot_info",
    "select * from (show temp_directory)",
    "with s as (show temp_directory) select * from s",
    "select (select count(*) from (show temp_directory)) as n",
    "explain select * from (show temp_directory)",
]


@pytest.mark.parametrize("sql", SHOWS_THE_SERVER)
def test_show_of_a_setting_or_system_view_is_refused_by_the_api(client, published: Settings, sql: str):
    response = client.post("/api/sql", json={"sql": sql})
    assert response.status_code == 403, response.text
    assert "describes the server" in response.json()["detail"]
    assert str(published.home) not in response.text


@pytest.mark.parametrize("sql", SHOWS_THE_SERVER)
def test_show_of_a_setting_or_system_view_is_refused_by_kanda_query(published: Settings, sql: str):
    result = CliRunner().invoke(app, ["query", sql, "--format", "json"])
    assert result.exit_code == 1, result.output
    assert "describes the server" in " ".join(result.output.split())
    assert str(published.home) not in result.output


DESCRIBES_THE_ROLLUPS = [
    ("show creator_daily", "column_name", "net_minor"),
    ("show Region_Daily", "column_name", "payments"),
    ("show rollups.product_daily", "column_name", "product_id"),
    ("describe rollups.channel_daily", "column_name", "channel"),
    ("select * from (show publications)", "column_name", "publish_id"),
    ("show tables", "name", "creator_daily"),
    ("show all tables", "name", "region_daily"),
    ("describe", "name", "channel_daily"),
    ("show tables from rollups", "name", "product_daily"),
    ("show databases", "database_name", "rollups"),
    ("summarize rollups.region_daily", "column_name", "rows_loaded"),
]


@pytest.mark.parametrize(("sql", "column", "value"), DESCRIBES_THE_ROLLUPS)
def test_show_and_describe_of_the_rollups_still_answer(client, sql: str, column: str, value: str):
    response = client.post("/api/sql", json={"sql": sql})
    assert response.status_code == 200, response.text
    assert value in [row[column] for row in response.json()["rows"]]
    result = CliRunner().invoke(app, ["query", sql, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert value in result.stdout
