"""Delivery end to end: real regional stores, a real SMTP relay (STARTTLS, AUTH), the outbox, sent once each.

What a creator receives is checked against the regional store to the minor unit: the day's figures from
`creator_daily`, the attachment's lines from `sale_events`, formatted for the creator's locale.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_currency, format_decimal

from kanda import mail
from kanda.regional.store import open_store
from kanda.reports import delivery, mailing
from kanda.reports.delivery import DeliveryLog, SmtpTransport
from kanda.reports.run import write_reports
from kanda.settings import Settings, SmtpSettings, load_settings
from tests.support.files import START, make_files
from tests.support.reports import (
    SmtpServer,
    copy_stores,
    load_and_publish,
    parts,
    sale,
    smtp_server_fixture,  # noqa: F401 (the smtp_server fixture)
    write_sales,
)

DAY = START + dt.timedelta(days=1)
REGIONS = ["NG", "TZ"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """NG and TZ generated, ingested and published once for the module; each test works on a copy."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("reports-source") / "home"
        mp.setenv("KANDA_HOME", str(home))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        built = load_settings()
        built.ensure_dirs()
        make_files(built, regions=REGIONS, rows=400, days=3)
        for code in REGIONS:
            load_and_publish(built, code)
        yield home


@pytest.fixture
def published(source: Path, settings: Settings) -> Settings:
    """A fresh installation holding the module's published stores (reports read only the regional stores)."""
    return copy_stores(source, settings)


def store_day(settings: Settings, region: str) -> dict[str, dict]:
    """creator -> the store's figures and registry row for DAY (what every report must say)."""
    with open_store(settings, region, read_only=True) as con:
        rows = con.sql(
            "SELECT c.creator_id, c.email, c.locale, c.language, d.currency, d.gross_minor, d.refunds_minor,"
            " d.fees_minor, d.net_minor, d.net_usd_minor FROM creator_daily AS d JOIN creators AS c USING (creator_id)"
            " WHERE d.local_date = $day",
            params={"day": DAY},
        ).pl()
    return {r["creator_id"]: r for r in rows.to_dicts()}


def store_lines(settings: Settings, region: str, creator: str) -> list[tuple]:
    """The creator's money movements of DAY: what `creator_daily` is made of (pending and failed moved nothing)."""
    with open_store(settings, region, read_only=True) as con:
        return con.execute(
            "SELECT transaction_id, event_type, status, amount_minor, fee_minor FROM sale_events"
            " WHERE creator_id = ? AND local_date = ? AND status = 'success' ORDER BY ALL",
            [creator, DAY],
        ).fetchall()


def normalised(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text.replace("&nbsp;", " "))


def expected_money(minor: int, currency: str, locale: str) -> str:
    """How the creator's locale writes the amount: Babel's currency format; TZS whole amounts without cents."""
    amount = Decimal(minor).scaleb(-2)
    if currency == "TZS" and minor % 100 == 0:
        return f"TSh {format_decimal(minor // 100, locale=locale)}"
    return format_currency(amount, currency, locale=locale)


def test_reports_arrive_through_smtp_with_both_alternatives_the_chart_and_the_csv(
    published: Settings, smtp_server: SmtpServer
):
    settings = load_settings()  # now with KANDA_SMTP_* pointing at the relay
    assert settings.smtp is not None and settings.smtp.starttls

    summary = write_reports(settings, DAY, regions=REGIONS, deliver=True)

    assert summary.mode == "smtp" and summary.ok, summary
    expected = {region: store_day(settings, region) for region in REGIONS}
    received = smtp_server.recorder.messages()
    assert summary.written == len(received) >= sum(len(v) for v in expected.values()) > 0
    assert smtp_server.logins, "the client logged in (after STARTTLS: the relay refuses AUTH in clear)"
    seen = set()
    for (mail_from, rcpt_tos, _), message in zip(smtp_server.recorder.received, received, strict=True):
        region, creator = message["Message-ID"].strip("<>").split("-", 2)[1:3]
        creator = "-".join(message["Message-ID"].strip("<>").split("-")[2:4])
        seen.add(creator)
        figures = expected[region].get(creator)
        if figures is None:  # a creator with activity but no money moved (only failed payments or held rows)
            continue
        # envelope and headers
        assert mail_from == "reports@kanda.test"
        assert rcpt_tos == [figures["email"]]
        assert message["To"].addresses[0].addr_spec == figures["email"]
        assert message["From"].addresses[0].addr_spec == "reports@kanda.test"
        assert message["Subject"] and message["Date"] is not None
        expected_id = rf"<report-{region}-{creator}-{DAY.isoformat()}\.[0-9a-f]{{12}}@kanda>"
        assert re.fullmatch(expected_id, message["Message-ID"])
        # structure: both alternatives, the inline chart, the CSV attachment
        leaves = parts(message)
        assert set(leaves) >= {"text/plain", "text/html", "image/png", "text/csv"}
        assert leaves["image/png"].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        assert leaves["text/csv"].get_content_disposition() == "attachment"
        html = leaves["text/html"].get_content()
        assert "<script" not in html.lower() and 'style="' in html
        assert f"cid:{leaves['image/png']['Content-ID'].strip('<>')}" in html
        # amounts to the minor unit, in the creator's locale, in both alternatives
        net = expected_money(figures["net_minor"], figures["currency"], figures["locale"])
        gross = expected_money(figures["gross_minor"], figures["currency"], figures["locale"])
        for body in (leaves["text/plain"].get_content(), html):
            assert normalised(net) in normalised(body), (creator, net)
            assert normalised(gross) in normalised(body), (creator, gross)
        symbol = {"NG": "₦", "TZ": "TSh"}[region]
        assert symbol in leaves["text/plain"].get_content()
        # the attachment: exactly the store's money movements of this creator and day, amounts exact, adding up
        rows = list(csv.DictReader(io.StringIO(leaves["text/csv"].get_content())))
        lines = sorted(
            (
                r["transaction_id"],
                r["event_type"],
                r["status"],
                int(Decimal(r["amount"]).scaleb(2)),
                int(Decimal(r["fee"]).scaleb(2)),
            )
            for r in rows
        )
        assert lines == store_lines(settings, region, creator)
        assert sum(int(Decimal(r["net"]).scaleb(2)) for r in rows) == figures["net_minor"]
        # where replies go and how to stop the reports, for the mail client too
        assert message["Reply-To"].addresses[0].addr_spec == "support@kanda.test"
        assert "/reports/unsubscribe/" in message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert seen >= set(expected["NG"]) | set(expected["TZ"])


def test_tanzanian_creators_read_swahili_and_nigerian_creators_english(published: Settings, smtp_server: SmtpServer):
    summary = write_reports(load_settings(), DAY, regions=REGIONS, deliver=True)
    assert summary.ok
    languages = {m["Message-ID"].split("-")[1]: m["Content-Language"] for m in smtp_server.recorder.messages()}
    assert languages == {"NG": "en", "TZ": "sw"}


def test_a_report_is_sent_once_and_again_only_with_resend(published: Settings, smtp_server: SmtpServer):
    settings = load_settings()
    first = write_reports(settings, DAY, regions=["NG"], deliver=True)
    sent = len(smtp_server.recorder.received)
    assert first.written == sent > 0

    again = write_reports(settings, DAY, regions=["NG"], deliver=True)
    assert again.written == 0 and again.regions[0].skipped == sent
    assert len(smtp_server.recorder.received) == sent  # nothing went out the second time

    one = first.regions[0]
    creator = sorted(store_day(settings, "NG"))[0]
    resent = write_reports(settings, DAY, creators=[creator], deliver=True, resend=True)
    assert resent.written == 1 and one.ready
    assert len(smtp_server.recorder.received) == sent + 1
    assert smtp_server.recorder.received[-1][1] == [store_day(settings, "NG")[creator]["email"]]

    log = DeliveryLog(settings)
    try:
        assert len(log.sent("NG", DAY)) == sent
    finally:
        log.close()


def test_a_report_resent_with_corrected_figures_is_a_new_message_and_an_unchanged_one_is_the_same(
    settings: Settings, smtp_server: SmtpServer
):
    """Gmail and other providers silently drop a message whose Message-ID the mailbox already holds. A report resent
    after a late refund restated its day carried the first report's id, so the correction never arrived while the
    delivery record took its net as told (the next report did not tell it either). Same words, same id: a double
    sent by a crash between the send and its record is still dropped."""
    settings = load_settings()  # with the relay's settings
    day, later = dt.date(2026, 10, 5), dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def at(hour: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo("Africa/Lagos"))

    rows = [sale(1, "NG-C0001", "NG-P00001", 5_000_00, at(10)), sale(2, "NG-C0002", "NG-P00005", 2_000_00, at(11))]
    write_sales(settings, "NG", rows, "day")
    load_and_publish(settings, "NG")
    assert write_reports(settings, day, regions=["NG"], deliver=True, now=later).ok

    def by_creator(messages) -> dict[str, EmailMessage]:
        return {"-".join(m["Message-ID"].strip("<>").split("-")[2:4]): m for m in messages}

    first = by_creator(smtp_server.recorder.messages())
    write_sales(settings, "NG", [sale(1, "NG-C0001", "NG-P00001", -2_000_00, at(20), event="refund")], "late")
    load_and_publish(settings, "NG")  # a refund made that day, delivered late: the day is restated
    assert write_reports(settings, day, regions=["NG"], deliver=True, resend=True, now=later).ok
    again = by_creator(smtp_server.recorder.messages()[len(first) :])

    assert set(first) == set(again) == {"NG-C0001", "NG-C0002"}
    assert first["NG-C0001"]["Subject"].endswith("₦4,925.00 net")
    assert again["NG-C0001"]["Subject"].endswith("₦2,925.00 net")
    assert again["NG-C0001"]["Message-ID"] != first["NG-C0001"]["Message-ID"]  # delivered, not dropped
    assert again["NG-C0002"]["Message-ID"] == first["NG-C0002"]["Message-ID"]  # the same report: one message


def test_a_transient_refusal_is_retried_and_the_report_still_arrives_once(published: Settings, smtp_server: SmtpServer):
    settings = load_settings()
    creator = sorted(store_day(settings, "NG"))[0]
    smtp_server.recorder.fail_next = 1  # the relay answers 451 to the first DATA

    summary = write_reports(settings, DAY, creators=[creator], deliver=True)

    assert summary.ok and summary.written == 1
    assert smtp_server.recorder.attempts == 2
    assert len(smtp_server.recorder.received) == 1


def test_a_relay_that_keeps_failing_fails_the_message_and_records_nothing(
    published: Settings, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(mail, "RETRY_BACKOFF_SECONDS", 0.05)  # the same retries, shorter pauses
    settings = load_settings()
    creator = sorted(store_day(settings, "NG"))[0]
    smtp_server.recorder.fail_next = 10

    transport = SmtpTransport(settings.smtp, attempts=2, backoff_seconds=0.01)
    from kanda.reports.delivery import DeliveryFailed

    with transport, pytest.raises(DeliveryFailed, match="451"):
        transport.send(b"Subject: x\r\n\r\nbody\r\n", recipient="a@b.c")
    assert transport.retries == 1

    smtp_server.recorder.fail_next = 10
    summary = write_reports(settings, DAY, creators=[creator], deliver=True)  # 4 attempts, all refused
    assert smtp_server.recorder.attempts == 2 + delivery.RETRY_ATTEMPTS
    assert not summary.ok and creator in summary.regions[0].failed
    assert "451" in summary.regions[0].failed[creator]
    smtp_server.recorder.fail_next = 0
    retry = write_reports(settings, DAY, creators=[creator], deliver=True)  # not recorded: sent on the rerun
    assert retry.ok and retry.written == 1 and len(smtp_server.recorder.received) == 1


def test_a_relay_that_goes_down_stops_the_run_instead_of_retrying_every_report(
    published: Settings, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(mail, "RETRY_BACKOFF_SECONDS", 0.05)
    settings = load_settings()
    smtp_server.controller.stop()  # connections are refused from now on

    summary = write_reports(settings, DAY, regions=["NG"], deliver=True)

    (outcome,) = summary.regions
    assert outcome.written == 0 and len(outcome.failed) == outcome.reports > 1
    reasons = sorted(outcome.failed.values())
    assert sum(r.startswith("not attempted: ") for r in reasons) == outcome.reports - 1
    assert all("failed after 4 attempts" in r for r in reasons)
    log = DeliveryLog(settings)
    try:
        assert log.sent("NG", DAY) == set()  # nothing recorded: the next run sends them all
    finally:
        log.close()


def test_one_mailbox_that_keeps_answering_try_later_fails_alone(
    published: Settings, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
):
    """A greylisting or full mailbox answers 4xx to its own address: after the retries that creator's report failed,
    and the creators after it are still sent, instead of "not attempted" as when the relay itself is down."""
    monkeypatch.setattr(mail, "RETRY_BACKOFF_SECONDS", 0.05)
    settings = load_settings()
    day = store_day(settings, "NG")
    first, *others = sorted(day)
    assert others
    smtp_server.recorder.greylisted = {day[first]["email"]}

    summary = write_reports(settings, DAY, regions=["NG"], deliver=True)

    (outcome,) = summary.regions
    assert list(outcome.failed) == [first] and "450" in outcome.failed[first]
    assert outcome.written == outcome.reports - 1 == len(smtp_server.recorder.received)
    log = DeliveryLog(settings)
    try:
        assert first not in log.sent("NG", DAY) and set(others) <= log.sent("NG", DAY)
    finally:
        log.close()


def test_a_wrong_password_is_a_clear_failure_not_a_retry_loop(published: Settings, smtp_server: SmtpServer):
    settings = load_settings()
    wrong = SmtpSettings(
        host=smtp_server.host, port=smtp_server.port, username="kanda", password="nope", timeout_seconds=30
    )
    with SmtpTransport(wrong, attempts=3, backoff_seconds=0.01) as transport:
        from kanda.reports.delivery import DeliveryFailed

        with pytest.raises(DeliveryFailed, match="refused the login"):
            transport.send(b"Subject: x\r\n\r\nx\r\n", recipient="a@b.c")
        assert transport.retries == 0
    assert not smtp_server.recorder.received and settings.smtp is not None


def test_without_smtp_reports_go_to_the_outbox_once_each(published: Settings):
    settings = load_settings()
    assert settings.smtp is None
    summary = write_reports(settings, DAY, regions=["TZ"], deliver=True)

    assert summary.mode == "outbox" and summary.ok
    folder = settings.outbox_dir / "TZ" / DAY.isoformat()
    files = sorted(folder.glob("*.eml"))
    expected = store_day(settings, "TZ")
    assert {f.stem for f in files} >= set(expected) and len(files) == summary.written
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    creator = files[0].stem
    assert message["To"].addresses[0].addr_spec.endswith("@creators.example")
    assert set(parts(message)) >= {"text/plain", "text/html", "image/png", "text/csv"}
    if creator in expected:
        figures = expected[creator]
        net = expected_money(figures["net_minor"], "TZS", figures["locale"])
        assert normalised(net) in normalised(parts(message)["text/plain"].get_content())

    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = write_reports(settings, DAY, regions=["TZ"], deliver=True)
    assert again.written == 0 and again.regions[0].skipped == len(files)
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes  # untouched


def test_a_preview_writes_files_but_never_counts_as_sent(published: Settings):
    settings = load_settings()
    preview = write_reports(settings, DAY, regions=["NG"])
    assert preview.mode == "preview" and preview.written > 0
    assert len(list((settings.reports_dir / "NG" / DAY.isoformat()).glob("*.eml"))) == preview.written
    assert not (settings.outbox_dir / "NG").exists()
    delivered = write_reports(settings, DAY, regions=["NG"], deliver=True)
    assert delivered.written == preview.written  # the preview did not stand in for the delivery


def test_large_runs_render_in_worker_processes_and_say_the_same(published: Settings, monkeypatch: pytest.MonkeyPatch):
    from kanda.reports import run

    settings = load_settings()
    in_process = write_reports(settings, DAY, regions=["TZ"])  # a preview, rendered here
    monkeypatch.setattr(run, "PARALLEL_FROM", 2)  # what a run of thousands does, at test size
    monkeypatch.setattr(run, "RENDER_CHUNK", 3)
    monkeypatch.setattr(run, "RENDER_WORKERS", 2)
    pooled = write_reports(settings, DAY, regions=["TZ"], deliver=True)

    assert pooled.ok and pooled.written == in_process.written > 3
    for path in sorted((settings.outbox_dir / "TZ" / DAY.isoformat()).glob("*.eml")):
        here = email.message_from_bytes(
            (settings.reports_dir / "TZ" / DAY.isoformat() / path.name).read_bytes(), policy=email.policy.default
        )
        there = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert there["Message-ID"] == here["Message-ID"]
        assert there["Message-ID"].startswith(f"<report-TZ-{path.stem}-{DAY.isoformat()}.")
        for kind in ("text/plain", "text/html", "text/csv"):
            assert parts(there)[kind].get_content() == parts(here)[kind].get_content()


def test_an_address_whose_domain_is_in_another_script_is_sent_in_its_ascii_form(
    published: Settings, smtp_server: SmtpServer
):
    """`ama@créateurs.example` made smtplib raise mid-run: that creator and every report after it went unsent, on
    every rerun. Mail carries such a domain in its IDNA form; a local part outside ASCII is refused, alone."""
    settings = load_settings()
    first, second = sorted(store_day(settings, "NG"))[:2]
    with open_store(settings, "NG") as con:
        con.execute("UPDATE creators SET email = 'ama@créateurs.example' WHERE creator_id = ?", [first])
        con.execute("UPDATE creators SET email = 'amína@example.com' WHERE creator_id = ?", [second])
    outcome = write_reports(settings, DAY, regions=["NG"], deliver=True)
    (region,) = outcome.regions
    assert list(region.refused) == [second] and "not ASCII" in region.refused[second]
    assert outcome.written == len(store_day(settings, "NG")) - 1 == len(smtp_server.recorder.received)
    recipients = {rcpt for _, (rcpt,), _ in smtp_server.recorder.received}
    assert "ama@xn--crateurs-c1a.example" in recipients
    to = [m["To"].addresses[0].addr_spec for m in smtp_server.recorder.messages()]
    assert "ama@xn--crateurs-c1a.example" in to
    assert mailing.mail_address("ama@straße.de") == "ama@xn--strae-oqa.de"  # not strasse.de, somebody else's


def test_a_message_written_again_removes_what_a_killed_run_left_of_it(tmp_path: Path):
    """`write_eml` writes aside under its process id and renames; a run killed in between left the part for good."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    target = tmp_path / "EG-C0004.eml"
    left = tmp_path / f".EG-C0004.eml.{dead_pid}.part"
    left.write_bytes(b"half a mess")
    mail.write_eml(target, b"whole message")
    assert target.read_bytes() == b"whole message" and not left.exists()
