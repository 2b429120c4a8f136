"""A creator's day that mixes a rail stating its fees (a Stripe export) with one that states none (an M-Pesa
statement): the report shows the stated fees as an amount marked "partly reported", so that its column adds up to
the Net, and says that Net is before the other payments' fees. Days of one kind of rail read as before.

Built on real stores: a test region QX is read first as an M-Pesa region, then as a Stripe one (its region file
changed, as an operator would), the same creator selling through both on the middle day.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kanda.regional.store import open_store
from kanda.reports.data import build_reports
from kanda.reports.message import build_message
from kanda.reports.model import CreatorReport
from kanda.settings import Settings
from regions import get_region
from tests.support.builders import region_file
from tests.support.reports import load_and_publish, parts, sale, write_sales

NAIROBI = ZoneInfo("Africa/Nairobi")
DAY_1, DAY_2, DAY_3 = dt.date(2026, 10, 4), dt.date(2026, 10, 5), dt.date(2026, 10, 6)
CREATOR = "QX-C0001"
SENDER = "kanda reports <reports@kanda.invalid>"
PARTLY_NOTE = (
    "Some of your payments came through a provider that does not report its fees to kanda: Fees shows only the fees"
    " that were reported, and Net is before the others."
)
NONE_NOTE = "Your payment provider does not report its fees to kanda, so Net is before its charges."


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=NAIROBI)


@pytest.fixture
def reports(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[dt.date, CreatorReport]:
    """The creator's reports of an M-Pesa-only day, a mixed day and a Stripe-only day."""
    same = {"code": "QX", "name": "Qenya", "landing": "qx", "language": "en", "locale": "en_KE"}
    mpesa = region_file(tmp_path / "mpesa", "ke", **same)
    stripe = region_file(tmp_path / "stripe", "eg", **same, currency="KES", zone="Africa/Nairobi", calling_code='"254"')

    monkeypatch.setenv("KANDA_REGIONS_DIR", str(mpesa))
    rows = [
        sale(1, CREATOR, "QX-P00001", 1_500_00, at(DAY_1, 9)),
        sale(2, CREATOR, "QX-P00001", 1_000_00, at(DAY_2, 9)),
        sale(3, CREATOR, "QX-P00002", 2_000_00, at(DAY_2, 10), buyer=2),
    ]
    write_sales(settings, "QX", rows, "statement")
    load_and_publish(settings, "QX")
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(stripe))
    rows = [
        sale(4, CREATOR, "QX-P00001", 4_000_00, at(DAY_2, 11), fee=120_00, buyer=3),
        sale(4, CREATOR, "QX-P00001", -500_00, at(DAY_2, 12), event="refund", buyer=3),  # a partial refund
        sale(6, CREATOR, "QX-P00002", 3_000_00, at(DAY_3, 11), fee=90_00, buyer=4),
    ]
    write_sales(settings, "QX", rows, "stripe")
    load_and_publish(settings, "QX")

    region = get_region("QX")
    with open_store(settings, "QX", read_only=True) as con:
        return {
            day: next(r for r in build_reports(con, region, day) if r.creator_id == CREATOR)
            for day in (DAY_1, DAY_2, DAY_3)
        }


def received(report: CreatorReport) -> tuple[str, str, list[dict[str, str]]]:
    """The plain text, the HTML and the CSV rows of the report's message, as a mail client reads them."""
    by_type = parts(build_message(report, SENDER, now=dt.datetime(2026, 10, 8, tzinfo=dt.UTC)))
    lines = by_type["text/csv"].get_content()
    lines = lines.decode("utf-8") if isinstance(lines, bytes) else lines
    rows = list(csv.DictReader(io.StringIO(lines)))
    return by_type["text/plain"].get_content(), by_type["text/html"].get_content(), rows


def figure(text: str, label: str) -> str:
    match = re.search(rf"^  {re.escape(label)}:\s+(.+)$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def test_a_mixed_day_shows_the_stated_fees_partly_reported_so_the_column_adds_up_to_net(reports):
    mixed = reports[DAY_2]
    day = mixed.day
    # the rollup's answer for such a day: not every fee stated, the stated one counted, Net after it
    assert (mixed.fees_stated, day.fees_minor, day.net_minor) == (False, 120_00, 6_380_00)
    assert day.gross_minor - day.refunds_minor - day.reversals_minor - day.fees_minor == day.net_minor

    text, html, rows = received(mixed)
    assert figure(text, "Gross sales") == "Ksh7,000.00" and figure(text, "Refunds") == "-Ksh500.00"
    assert figure(text, "Fees") == "-Ksh120.00 (partly reported)"
    assert figure(text, "Net") == "Ksh6,380.00"
    assert re.search(r">Fees</td>\s*<td[^>]*>-Ksh120\.00 \(partly reported\)</td>", html), html
    for body in (text, html):
        assert PARTLY_NOTE in body
        assert "not reported" not in body and NONE_NOTE not in body
    # the attachment's fee column adds up to the fees shown, its net column to the Net
    assert sum(Decimal(r["fee"]) for r in rows) == Decimal("120.00")
    assert sum(Decimal(r["net"]) for r in rows) == Decimal("6380.00")

    text, html, _ = received(dataclasses.replace(mixed, language="sw"))
    assert figure(text, "Ada") == "-Ksh120.00 (zimeripotiwa kwa sehemu)"
    assert "Ada inaonyesha tu ada zilizoripotiwa, na Mapato halisi ni kabla ya ada nyingine." in text


def test_days_of_one_kind_of_rail_read_as_before(reports):
    none_stated, all_stated = reports[DAY_1], reports[DAY_3]
    assert (none_stated.fees_stated, none_stated.day.fees_minor) == (False, 0)
    text, html, _ = received(none_stated)
    assert figure(text, "Fees") == "not reported"
    for body in (text, html):
        assert NONE_NOTE in body and "partly" not in body

    assert (all_stated.fees_stated, all_stated.day.fees_minor) == (True, 90_00)
    text, html, _ = received(all_stated)
    assert figure(text, "Fees") == "-Ksh90.00" and figure(text, "Net") == "Ksh2,910.00"
    for body in (text, html):
        assert "not reported" not in body and "partly" not in body and "does not report its fees" not in body
