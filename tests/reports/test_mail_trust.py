"""What a creator can trust in their mail, end to end (real store, publish, outbox or SMTP relay, `kanda serve`):

- the attachment adds up to the e-mail: pending and failed attempts, and the pending event before a success, are
  not lines of it, and only a payment that did not go through is counted as an attempt;
- one creator whose registry name holds a line break is skipped by name, and everyone else still gets their report;
- the unsubscribe link (and a mail client's one-click POST) stops that creator's reports, and delivery honours it.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import re
from decimal import Decimal
from email.message import EmailMessage
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kanda.cli import app as cli_app
from kanda.regional.store import open_store
from kanda.reports.run import write_reports
from kanda.settings import Settings, load_settings
from kanda.web.app import create_app
from tests.support.reports import (
    SmtpServer,
    edit_registry,
    load_and_publish,
    parts,
    sale,
    smtp_server_fixture,  # noqa: F401 (the smtp_server fixture)
    write_sales,
)

LAGOS = ZoneInfo("Africa/Lagos")
DAY = dt.date(2026, 10, 5)
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
INJECTED = "Ada Obi\r\nBcc: victim@evil.example"


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 10, 5, hour, minute, tzinfo=LAGOS)


def the_day(settings: Settings) -> None:
    """NG-C0001 has a pending payment that then succeeded, a failed one, and a sale partly refunded the same day;
    NG-C0002 and NG-C0003 one sale each."""
    c = "NG-C0001"
    rows = [
        sale(1, c, "NG-P00001", 10_000_00, at(9), status="pending", buyer=1),
        sale(1, c, "NG-P00001", 10_000_00, at(9, 5), buyer=1),
        sale(2, c, "NG-P00002", 5_000_00, at(10), status="failed", buyer=2),
        sale(3, c, "NG-P00003", 20_000_00, at(11), buyer=3),
        sale(3, c, "NG-P00003", -3_000_00, at(15), event="refund", buyer=3),
        sale(4, "NG-C0002", "NG-P00005", 12_500_00, at(12), buyer=4),
        sale(5, "NG-C0003", "NG-P00009", 7_000_00, at(13), buyer=5),
    ]
    write_sales(settings, "NG", rows, "day")
    load_and_publish(settings, "NG")


def outbox_message(settings: Settings, creator: str) -> EmailMessage:
    path = settings.outbox_dir / "NG" / DAY.isoformat() / f"{creator}.eml"
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def csv_rows(message: EmailMessage) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(parts(message)["text/csv"].get_content())))


def minor(text: str) -> int:
    return int(Decimal(text).scaleb(2))


def test_the_attachment_adds_up_to_the_figures_the_mail_states(settings: Settings):
    the_day(settings)
    summary = write_reports(settings, DAY, regions=["NG"], deliver=True, now=LATER)
    assert summary.ok, summary
    with open_store(settings, "NG", read_only=True) as con:
        net, gross, fees, refunds = con.execute(
            "SELECT net_minor, gross_minor, fees_minor, refunds_minor FROM creator_daily"
            " WHERE creator_id = 'NG-C0001' AND local_date = ?",
            [DAY],
        ).fetchone()
        events = con.execute("SELECT count(*) FROM sale_events WHERE creator_id = 'NG-C0001'").fetchone()[0]
    assert events == 5  # the store holds every event; the mail lists the three that moved money

    message = outbox_message(settings, "NG-C0001")
    rows = csv_rows(message)
    assert sorted((r["transaction_id"][-2:], r["event_type"], r["status"]) for r in rows) == [
        ("01", "sale", "success"),
        ("03", "refund", "success"),
        ("03", "sale", "success"),
    ]
    assert sum(minor(r["net"]) for r in rows) == net  # what the issue asked: the net column equals the e-mail
    assert sum(minor(r["amount"]) for r in rows if r["event_type"] == "sale") == gross
    assert -sum(minor(r["amount"]) for r in rows if r["event_type"] == "refund") == refunds
    assert sum(minor(r["fee"]) for r in rows) == fees

    stated = f"₦{Decimal(net).scaleb(-2):,.2f}"
    for body in (parts(message)["text/plain"].get_content(), parts(message)["text/html"].get_content()):
        flat = re.sub(r"\s+", " ", body)
        assert f"Net: {stated}" in flat or f">{stated}<" in body  # the headline figure
        assert (
            "lists the 3 payments that make up these figures (sales, refunds and reversals): "
            f"its net column adds up to {stated}." in flat
        )
        # the failed payment; the pending one that then succeeded is a listed sale, not an attempt that moved nothing
        assert "1 pending or failed payment attempt is not listed: it moved no money." in flat


def test_a_creator_with_a_line_break_in_their_name_is_skipped_and_everyone_else_is_served(
    settings: Settings, smtp_server: SmtpServer
):
    edit_registry(settings, "NG-C0002", name=INJECTED)
    the_day(settings)
    with open_store(settings, "NG", read_only=True) as con:
        assert con.execute("SELECT name FROM creators WHERE creator_id = 'NG-C0002'").fetchone()[0] == INJECTED

    summary = write_reports(load_settings(), DAY, regions=["NG"], deliver=True, now=LATER)

    (outcome,) = summary.regions
    assert outcome.written == 2 and not outcome.failed  # NG-C0003 comes after the bad one and is still served
    assert list(outcome.refused) == ["NG-C0002"]
    assert "line break" in outcome.refused["NG-C0002"] and "registry" in outcome.refused["NG-C0002"]
    assert not summary.ok
    received = smtp_server.recorder.received
    assert sorted(rcpt for _, rcpts, _ in received for rcpt in rcpts) == sorted(
        m["To"].addresses[0].addr_spec for m in smtp_server.recorder.messages()
    )
    assert len(received) == 2
    for _, rcpts, data in received:
        assert b"victim@evil.example" not in data and "victim@evil.example" not in rcpts
        assert b"Ada Obi" not in data

    # the operator's view: exit 1, the skipped creator named with the reason; a rerun sends nothing twice
    result = CliRunner().invoke(
        cli_app, ["reports", "--date", DAY.isoformat(), "-r", "NG", "--deliver"], terminal_width=200
    )
    assert result.exit_code == 1, result.output
    skipped = [line for line in result.output.splitlines() if "NG-C0002" in line]
    assert skipped and "skipped" in skipped[0] and "line break" in " ".join(result.output.split())
    assert len(smtp_server.recorder.received) == 2


def unsubscribe_path(message: EmailMessage) -> str:
    (url,) = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    return urlsplit(url).path


def test_unsubscribing_stops_the_reports_and_delivery_says_so_without_failing(settings: Settings):
    the_day(settings)
    first = write_reports(settings, DAY, regions=["NG"], deliver=True, now=LATER)
    assert first.ok and first.written == 3
    message = outbox_message(settings, "NG-C0001")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Reply-To"].addresses[0].addr_spec == "support@kanda.invalid"
    path = unsubscribe_path(message)
    assert path.startswith("/reports/unsubscribe/")
    html = parts(message)["text/html"].get_content()
    assert f'{path}"' in html  # the same link, visible at the end of the message
    assert path in parts(message)["text/plain"].get_content()

    client = TestClient(create_app(settings))
    # opening the link (a link scanner does) changes nothing: it asks
    page = client.get(path)
    assert page.status_code == 200 and "Stop these daily reports" in page.text
    assert page.headers["cache-control"] == "no-store"
    again = write_reports(settings, DAY, regions=["NG"], deliver=True, resend=True, now=LATER)
    assert again.written == 3 and again.regions[0].unsubscribed == []

    # the mail client's one-click button: a POST without cookies (RFC 8058)
    clicked = TestClient(create_app(settings)).post(path, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200 and "no more daily sales reports will be sent to NG-C0001" in clicked.text
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # twice is harmless

    after = write_reports(settings, DAY, regions=["NG"], deliver=True, resend=True, now=LATER)
    (outcome,) = after.regions
    assert outcome.unsubscribed == ["NG-C0001"] and not outcome.failed and after.ok
    assert outcome.written == 2
    cli = CliRunner().invoke(
        cli_app, ["reports", "--date", DAY.isoformat(), "-r", "NG", "--deliver", "--resend"], terminal_width=200
    )
    assert cli.exit_code == 0, cli.output
    assert "unsubscribed: NG-C0001" in cli.output

    # a forged or damaged token stops nobody
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.get("/reports/unsubscribe/NG-C0002").status_code == 404

    # a click by mistake is undone from the same page
    undone = client.post(path, data={"action": "resubscribe"})
    assert undone.status_code == 200 and "again" in undone.text
    back = write_reports(settings, DAY, regions=["NG"], deliver=True, resend=True, now=LATER)
    assert back.regions[0].unsubscribed == [] and back.written == 3


def test_the_unsubscribe_page_speaks_the_reports_language(settings: Settings):
    from kanda.reports.mailing import Mailing
    from tests.reports.test_render_message import TZ, make_report

    mailing = Mailing.from_settings(settings)
    url = mailing.unsubscribe_url(make_report(TZ))
    assert url is not None and url.startswith("http://127.0.0.1:8000/reports/unsubscribe/")
    page = TestClient(create_app(settings)).get(urlsplit(url).path)
    assert page.status_code == 200
    assert "Acha ripoti hizi za kila siku" in page.text and '<html lang="sw">' in page.text


@pytest.mark.parametrize("public_url", ["ftp://example.org", "https://example.org/a b"])
def test_a_wrong_public_url_is_a_clear_error(settings: Settings, monkeypatch: pytest.MonkeyPatch, public_url: str):
    from kanda.reports.mailing import Mailing

    monkeypatch.setenv("KANDA_PUBLIC_URL", public_url)
    with pytest.raises(ValueError, match="KANDA_PUBLIC_URL"):
        Mailing.from_settings(settings)


def test_a_report_that_cannot_be_rendered_is_reported_and_the_next_one_still_is():
    import dataclasses

    from kanda.reports.mailing import Mailing
    from kanda.reports.model import TrendPoint
    from kanda.reports.run import rendered
    from tests.reports.test_render_message import NG, make_report

    good = make_report(NG)
    broken = dataclasses.replace(good, creator_id="NG-C0002", trend=[TrendPoint(DAY, None)])  # type: ignore[arg-type]
    after = dataclasses.replace(good, creator_id="NG-C0003")
    mailing = Mailing("kanda <reports@kanda.test>", None, None, "secret")
    out = [(report.creator_id, data is not None, why) for report, data, why in rendered([good, broken, after], mailing)]
    assert [(c, ok) for c, ok, _ in out] == [("NG-C0001", True), ("NG-C0002", False), ("NG-C0003", True)]
    assert out[1][2].startswith("could not be rendered: TypeError")
