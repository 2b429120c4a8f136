"""Make the README's picture of a creator's daily report from a real demo message.

    .venv/bin/python scripts/screenshot_report.py                      # run `kanda demo` in a temporary KANDA_HOME
    .venv/bin/python scripts/screenshot_report.py --home .kanda        # a KANDA_HOME where the demo already ran
    .venv/bin/python scripts/screenshot_report.py --eml path/to.eml    # one message
    .venv/bin/python scripts/screenshot_report.py --sample             # a hand-built report (no demo needed)

It takes one message from the outbox (by default the Tanzanian one with the most sales lines: a Swahili report
with a full table), renders its HTML part in headless Chromium (Playwright, through `kanda.web.browser`) with the
chart's `cid:` reference replaced by a data URI, as a mail client would show it, and saves `docs/images/report.png`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import email
import email.policy
import os
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VIEWPORT_WIDTH = 680


def html_with_inline_images(message: EmailMessage) -> str:
    """The HTML alternative with every `cid:` image it references turned into a data URI."""
    html_part = message.get_body(preferencelist=("html",))
    if html_part is None:
        raise SystemExit("the message has no HTML alternative")
    html = html_part.get_content()
    for part in message.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True)).decode("ascii")
            html = html.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return html


def pick_message(outbox: Path, region: str) -> Path:
    """The region's message with the most content (largest file), else any region's."""
    found = sorted(outbox.rglob("*.eml"), key=lambda p: p.stat().st_size, reverse=True)
    if not found:
        raise SystemExit(f"no .eml in {outbox}: run `kanda demo` (or `kanda reports --deliver`) first, or use --sample")
    in_region = [p for p in found if region.upper() in p.parts or p.name.upper().startswith(region.upper())]
    return (in_region or found)[0]


def demo_message(region: str) -> EmailMessage:
    """Run `kanda demo` in a temporary KANDA_HOME and read one message from its outbox."""
    with tempfile.TemporaryDirectory(prefix="kanda-report-shot-") as tmp:
        env = {**os.environ, "KANDA_HOME": tmp, "KANDA_BUYER_SALT": "screenshot"}
        env.pop("KANDA_SMTP_HOST", None)
        kanda = Path(sys.executable).parent / "kanda"
        subprocess.run([str(kanda), "demo"], check=True, env=env, cwd=REPO)
        outbox = Path(tmp) / "outbox"
        if not any(outbox.rglob("*.eml")):  # a demo that does not deliver reports itself: deliver the last day
            subprocess.run([str(kanda), "reports", "--region", region, "--deliver"], check=True, env=env, cwd=REPO)
        return read_eml(pick_message(outbox, region))


def read_eml(path: Path) -> EmailMessage:
    print(f"message: {path}")
    with path.open("rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)  # type: ignore[return-value]


def sample_message() -> EmailMessage:
    """A hand-built Swahili report (Tanzania), for when no demo outbox is at hand."""
    from zoneinfo import ZoneInfo

    from kanda.reports.message import build_message
    from kanda.reports.model import CreatorReport, DayFigures, HeldRecords, ProductLine, SaleLine, TrendPoint

    day = dt.date(2026, 10, 12)
    zone = ZoneInfo("Africa/Dar_es_Salaam")
    titles = ["Swahili for beginners #1", "Bongo flava beats #2", "Notion planner #3"]
    sales = [
        SaleLine(
            dt.datetime(2026, 10, 12, 8 + i, 5 * i, tzinfo=zone),
            f"GR-{1000 + i}",
            f"TZ-P{(i % 3) + 1:05d}",
            titles[i % 3],
            "sale",
            "success",
            "card",
            (12_500 + 2_500 * (i % 3)) * 100,
            500 * 100,
            f"B-{i * 7919:08X}",
        )
        for i in range(9)
    ]
    # the refund that makes the day's figures: the attachment adds up to the net the message states
    sales.append(
        SaleLine(
            dt.datetime(2026, 10, 12, 18, 30, tzinfo=zone),
            "GR-1000",
            "TZ-P00001",
            titles[0],
            "refund",
            "success",
            "card",
            -12_500 * 100,
            0,
            f"B-{0:08X}",
        )
    )
    report = CreatorReport(
        region="TZ",
        creator_id="TZ-C0007",
        creator_name="Amani Mushi",
        email="amani.mushi7@creators.example",
        language="sw",
        locale="sw_TZ",
        currency="TZS",
        exponent=2,
        zone="Africa/Dar_es_Salaam",
        local_date=day,
        day=DayFigures(9, 135_000_00, 12_500_00, 0, 4_500_00, 118_000_00),
        previous_day=DayFigures(6, 85_000_00, 0, 0, 3_000_00, 82_000_00),
        seven_day_average_net_minor=91_500_00,
        net_usd_minor=4_482,
        fx_date=dt.date(2026, 10, 12),
        top_products=[
            ProductLine("TZ-P00001", titles[0], 3, 36_000_00),
            ProductLine("TZ-P00002", titles[1], 3, 43_500_00),
            ProductLine("TZ-P00003", titles[2], 3, 38_500_00),
        ],
        trend=[
            TrendPoint(day - dt.timedelta(days=29 - i), 0 if i % 9 == 4 else (40 + (i * 37) % 90) * 1_000_00)
            for i in range(30)
        ],
        sales=sales,
        held=HeldRecords(2, {"unknown_creator": 2}),
        other_attempts=1,
    )
    return build_message(
        report,
        "kanda reports <reports@kanda.invalid>",
        reply_to="kanda support <support@kanda.invalid>",
        unsubscribe_url="https://kanda.example/reports/unsubscribe/sample",
    )


def screenshot(html: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from kanda.web.browser import launch_chromium

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": VIEWPORT_WIDTH, "height": 800}, device_scale_factor=1)
        page.route("**/*", lambda route: route.abort())  # a report must need nothing from the network
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--eml", type=Path, help="one .eml message")
    source.add_argument("--home", type=Path, help="a KANDA_HOME whose outbox holds demo messages")
    source.add_argument("--sample", action="store_true", help="a hand-built report instead of a demo message")
    parser.add_argument("--region", default="TZ", help="region whose message to show (default TZ: Swahili)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "report.png")
    args = parser.parse_args()

    if args.eml:
        message = read_eml(args.eml)
    elif args.home:
        message = read_eml(pick_message(args.home / "outbox", args.region))
    elif args.sample:
        message = sample_message()
    else:
        message = demo_message(args.region)
    print(f"subject: {message['Subject']}")
    screenshot(html_with_inline_images(message), args.out)


if __name__ == "__main__":
    main()
