"""`kanda demo` ends with the creators' reports of its last day in the outbox, and says where they are."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from kanda.settings import load_settings
from regions import all_regions
from tests.support.demo import DemoRun
from tests.support.reports import parts


@pytest.mark.slow  # the whole demo (shared with the other demo tests: `demo_run`)
def test_the_demo_writes_the_last_days_reports_to_the_outbox_once(demo_run: DemoRun):
    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    settings = load_settings(demo_run.home)
    last = dt.date.today() - dt.timedelta(days=1)
    assert f"creator reports of {last.isoformat()} in {settings.outbox_dir}/<region>/" in demo_run.stdout
    files = sorted(settings.outbox_dir.glob(f"*/{last.isoformat()}/*.eml"))
    assert {f.parent.parent.name for f in files} == set(all_regions())  # every region has reports
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert set(parts(message)) >= {"text/plain", "text/html", "image/png", "text/csv"}
    written = int(demo_run.stdout.split("reports: ")[1].split()[0])
    assert written == len(files)

    from kanda.demo import DemoSummary, _write_reports

    again = DemoSummary()
    _write_reports(settings, again, last)  # a second demo in the same home sends nothing twice
    assert (again.reports_written, again.reports_before) == (0, len(files))
