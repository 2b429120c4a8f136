"""`kanda reports` as an operator runs it: preview by default, --deliver once, --resend, clear exit codes."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.reports import (
    SmtpServer,
    load_and_publish,
    sale,
    smtp_server_fixture,  # noqa: F401 (the smtp_server fixture)
    write_sales,
)

runner = CliRunner()
DAY = dt.date(2026, 10, 5)


@pytest.fixture
def ng(settings: Settings) -> Settings:
    at = dt.datetime(2026, 10, 5, 11, tzinfo=dt.UTC)
    rows = [sale(i, f"NG-C000{i}", f"NG-P0000{4 * i - 3}", 12_500_00, at, buyer=i) for i in (1, 2)]
    write_sales(settings, "NG", rows, "day")
    load_and_publish(settings, "NG")
    return settings


def kanda(*args: str):
    return runner.invoke(app, ["reports", *args], terminal_width=200)


def test_without_deliver_reports_are_previews_and_deliver_sends_each_once(ng: Settings):
    preview = kanda("--date", DAY.isoformat(), "-r", "NG")
    assert preview.exit_code == 0, preview.output
    assert "preview" in preview.output and "--deliver" in preview.output
    assert sorted(p.name for p in (ng.reports_dir / "NG" / DAY.isoformat()).iterdir()) == [
        "NG-C0001.eml",
        "NG-C0002.eml",
    ]
    assert not ng.outbox_dir.exists() or not any(ng.outbox_dir.iterdir())

    first = kanda("--date", DAY.isoformat(), "-r", "NG", "--deliver")
    assert first.exit_code == 0, first.output
    assert len(list((ng.outbox_dir / "NG" / DAY.isoformat()).glob("*.eml"))) == 2
    again = kanda("--date", DAY.isoformat(), "-r", "NG", "--deliver")
    assert again.exit_code == 0
    row = next(line for line in again.output.splitlines() if line.strip().startswith("│ NG") or " NG " in line)
    assert "ready" in row and " 2 " in row  # two reports, both sent before
    resend = kanda("--date", DAY.isoformat(), "--creator", "ng-c0002", "--deliver", "--resend")
    assert resend.exit_code == 0, resend.output


def test_usage_errors_exit_2_and_an_unpublished_day_exits_1_with_the_reason(ng: Settings):
    assert kanda("--date", "5 Oct").exit_code == 2
    assert kanda("--date", DAY.isoformat(), "--resend").exit_code == 2
    assert kanda("--date", DAY.isoformat(), "-r", "XX").exit_code == 2
    assert kanda("--date", DAY.isoformat(), "--creator", "ZZ-C0001").exit_code == 2

    at = dt.datetime(2026, 10, 5, 15, tzinfo=dt.UTC)
    write_sales(ng, "NG", [sale(9, "NG-C0001", "NG-P00002", 1_000_00, at)], "late")
    ingest_landing(ng, "NG")
    result = kanda("--date", DAY.isoformat(), "-r", "NG", "--deliver")
    assert result.exit_code == 1
    assert "not published" in result.output and "kanda publish -r NG" in result.output
    future = kanda("--date", (dt.date.today() + dt.timedelta(days=2)).isoformat(), "-r", "NG")
    assert future.exit_code == 1 and "has not ended yet" in future.output


def test_a_day_is_not_reported_while_an_earlier_day_it_reads_waits_to_be_published(ng: Settings):
    """A report reads more than its day: the day before, the 7-day average, the 30-day chart, corrections. With an
    earlier day rebuilt in the store but not published, those showed (and the delivery record kept as told) a
    figure no publication has. The day waits, naming the earlier one."""
    next_day = DAY + dt.timedelta(days=1)
    write_sales(
        ng, "NG", [sale(5, "NG-C0001", "NG-P00001", 2_000_00, dt.datetime(2026, 10, 6, 11, tzinfo=dt.UTC))], "6"
    )
    load_and_publish(ng, "NG")
    assert kanda("--date", next_day.isoformat(), "-r", "NG").exit_code == 0

    late = sale(9, "NG-C0001", "NG-P00002", 1_000_00, dt.datetime(2026, 10, 5, 15, tzinfo=dt.UTC))
    write_sales(ng, "NG", [late], "late")
    ingest_landing(ng, "NG")  # the 5th changes; nothing publishes it
    result = kanda("--date", next_day.isoformat(), "-r", "NG", "--deliver")
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "2026-10-05, a day the report of 2026-10-06 reads, has data that is not published yet" in said
    assert not ng.outbox_dir.exists() or not any(ng.outbox_dir.rglob("*.eml"))


def test_deliver_sends_through_the_configured_smtp_relay(ng: Settings, smtp_server: SmtpServer):
    result = kanda("--date", DAY.isoformat(), "-r", "NG", "--deliver")
    assert result.exit_code == 0, result.output
    assert "smtp" in result.output
    assert sorted(rcpt[0] for _, rcpt, _ in smtp_server.recorder.received) == sorted(
        m["To"].addresses[0].addr_spec for m in smtp_server.recorder.messages()
    )
    assert len(smtp_server.recorder.received) == 2


def test_a_creator_id_that_names_nobody_is_a_usage_error_not_a_quiet_day(ng: Settings):
    """An unknown creator, one outside the chosen regions, or a comma list read as one id answered "no activity"
    with exit 0, as if the id were right."""
    unknown = kanda("--date", DAY.isoformat(), "--creator", "NG-C9999")
    assert unknown.exit_code == 2 and "not in the creator registry: NG-C9999" in unknown.output
    outside = kanda("--date", DAY.isoformat(), "--creator", "NG-C0001", "-r", "KE")
    assert outside.exit_code == 2 and "not of the chosen region(s) KE: NG-C0001" in outside.output
    both = kanda("--date", DAY.isoformat(), "--creator", "ng-c0001,NG-C0002")
    assert both.exit_code == 0, both.output
    assert kanda("--date", "0001-01-01", "-r", "NG").exit_code == 2  # out of range: a typo, not a store failure
    assert kanda("--date", DAY.isoformat(), "--creator", ",").exit_code == 2  # no id at all
