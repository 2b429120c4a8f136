"""The stewards' daily digest, delivered through a real SMTP relay (aiosmtpd with STARTTLS and a login, as the
creators' reports are) and through the outbox: who gets one, what it says, that it goes once a day, and opt-out."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from pathlib import Path

from typer.testing import CliRunner

from kanda.cli import app
from kanda.review.accounts import create_user, get_user, set_digest
from kanda.review.digest import send_digests
from kanda.review.service import enqueue_region
from kanda.settings import Settings, load_settings
from tests.support.reports import SmtpServer, smtp_server_fixture  # noqa: F401 (the smtp_server fixture)
from tests.support.steward_files import ingest_dirty_kenya
from tests.support.web_helpers import PASSWORD, create_accounts

runner = CliRunner()
BASE = "https://kanda.example"


def stewards(settings: Settings, tmp_path: Path) -> None:
    """KE has three new records; wanjiru (KE) has an address, amina (all regions) opted out, baraka@... (NG, whose
    name is his address) has nothing new, otieno is a viewer."""
    ingest_dirty_kenya(settings, tmp_path / "files")
    enqueue_region(settings, "KE")
    create_accounts(settings)
    set_digest(settings, "wanjiru", on=True, email="wanjiru@stewards.test")
    set_digest(settings, "amina", on=False, email="amina@stewards.test")
    create_user(settings, "baraka@stewards.test", PASSWORD, role="steward", regions=["NG"])


def test_each_steward_gets_the_new_counts_of_their_regions_once_a_day(
    settings: Settings, tmp_path: Path, smtp_server: SmtpServer
):
    stewards(settings, tmp_path)
    settings = load_settings()  # now with the relay's KANDA_SMTP_* settings
    run = send_digests(settings, base_url=BASE)

    assert [(d.account, d.recipient, d.new_items) for d in run.sent] == [("wanjiru", "wanjiru@stewards.test", 3)]
    assert dict(run.skipped) == {"amina": "opted out", "baraka@stewards.test": "nothing new"}
    (message,) = smtp_server.recorder.messages()
    assert message["To"] == "wanjiru@stewards.test"
    assert message["Subject"] == "kanda review: 3 new quarantined records in KE"
    text = message.get_body(("plain",)).get_content()
    assert "KE: 3 new, 3 open (missing_or_unreadable 3)" in text
    assert f"{BASE}/queue?region=KE&status=new" in text
    assert "kanda users digest wanjiru --off" in text
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{BASE}/queue?region=KE&amp;status=new">KE</a>' in html

    again = send_digests(settings, base_url=BASE)
    assert not again.sent and dict(again.skipped)["wanjiru"] == "already sent today"
    assert len(smtp_server.recorder.received) == 1

    # the next day, only what arrived since the last digest counts: nothing
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    later = send_digests(settings, base_url=BASE, now=tomorrow)
    assert not later.sent and dict(later.skipped)["wanjiru"] == "nothing new"


def test_without_smtp_digests_go_to_the_outbox_and_opt_in_is_a_command(settings: Settings, tmp_path: Path):
    stewards(settings, tmp_path)
    turned_on = runner.invoke(app, ["users", "digest", "amina", "--on"])
    assert turned_on.exit_code == 0 and "digest on for amina (amina@stewards.test)" in turned_on.output
    assert get_user(settings, "amina").digest

    result = runner.invoke(app, ["review", "digest", "--base-url", BASE, "--json"])
    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)["sent"]
    assert {(s["account"], s["new_items"]) for s in sent} == {("wanjiru", 3), ("amina", 3)}
    files = sorted(p.name for p in (settings.outbox_dir / "digests").rglob("*.eml"))
    assert files == ["amina.eml", "wanjiru.eml"]
    eml = next((settings.outbox_dir / "digests").rglob("amina.eml")).read_bytes()
    assert email.message_from_bytes(eml, policy=email.policy.default)["To"] == "amina@stewards.test"

    turned_off = runner.invoke(app, ["users", "digest", "amina", "--off"])
    assert turned_off.exit_code == 0 and not get_user(settings, "amina").digest
    bad = runner.invoke(app, ["users", "digest", "amina", "--email", "not-an-address"])
    assert bad.exit_code == 2 and "is not an e-mail address" in bad.output
