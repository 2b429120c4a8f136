"""A creator's report as the email they receive: structure and headers, amounts in their locale, their language,
the chart, the CSV of their sale lines, and the honest notes (held records, missing FX, restated days).

Reports are built by hand here (the seam `kanda.reports.model`); every message is serialised and parsed back, as a
mail client would, before it is looked at.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import email
import email.policy
import io
import re
from decimal import Decimal
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.numbers import format_currency
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from kanda.reports import chart
from kanda.reports.mailing import UnsafeRecipient, recipient_problem
from kanda.reports.message import CSV_COLUMNS, build_message
from kanda.reports.model import (
    CreatorReport,
    DayFigures,
    HeldRecords,
    ProductLine,
    Restatement,
    SaleLine,
    TrendPoint,
)
from kanda.reports.render import money_text
from quality.boundary import REPEAT_DIFFERS, REPEAT_OTHER_OWNER, REPEAT_OTHER_TIME
from regions.money import MINOR_UNIT_EXPONENT

DAY = dt.date(2026, 10, 12)
SENDER = "kanda reports <reports@kanda.invalid>"
NOW = dt.datetime(2026, 10, 13, 5, 0, tzinfo=dt.UTC)

#: region, currency, exponent, locale, language, zone
TZ = ("TZ", "TZS", 2, "sw_TZ", "sw", "Africa/Dar_es_Salaam")
NG = ("NG", "NGN", 2, "en_NG", "en", "Africa/Lagos")
EG = ("EG", "EGP", 2, "ar_EG", "en", "Africa/Cairo")
UG = ("UG", "UGX", 0, "en_UG", "en", "Africa/Kampala")
SN = ("SN", "XOF", 0, "fr_SN", "en", "Africa/Dakar")


def sale(i: int, unit: int, zone: str, *, amount: int, fee: int, buyer: str | None, event: str = "sale") -> SaleLine:
    return SaleLine(
        occurred_at_local=dt.datetime(2026, 10, 12, 8 + i % 14, i % 60, tzinfo=ZoneInfo(zone)),
        transaction_id=f"TX-{i:05d}",
        product_id=f"XX-P{1 + i % 2:05d}",
        product_title=["Afrobeats drum kit #1", "Notion planner #2"][i % 2],
        event_type=event,
        status="success",
        channel="card" if i % 2 else None,
        amount_minor=amount * unit,
        fee_minor=fee * unit,
        buyer=buyer,
    )


def make_report(where=TZ, **changes) -> CreatorReport:
    """A realistic day of creator C0001: three sales and a refund, net 12,500 in major units of the currency."""
    region, currency, exponent, locale, language, zone = where
    unit = 10**exponent
    sales = [
        sale(1, unit, zone, amount=6_000, fee=200, buyer="B-1A2B3C4D"),
        sale(2, unit, zone, amount=5_000, fee=150, buyer="B-99887766"),
        sale(3, unit, zone, amount=4_000, fee=150, buyer=None),
        sale(4, unit, zone, amount=-2_000, fee=0, buyer="B-1A2B3C4D", event="refund"),
    ]
    report = CreatorReport(
        region=region,
        creator_id=f"{region}-C0001",
        creator_name="Amani Mushi",
        email="amani@creators.example",
        language=language,
        locale=locale,
        currency=currency,
        exponent=exponent,
        zone=zone,
        local_date=DAY,
        day=DayFigures(3, 15_000 * unit, 2_000 * unit, 0, 500 * unit, 12_500 * unit),
        previous_day=DayFigures(2, 10_500 * unit, 0, 0, 500 * unit, 10_000 * unit),
        seven_day_average_net_minor=10_000 * unit,
        net_usd_minor=2_311,
        fx_date=dt.date(2026, 10, 5),
        top_products=[
            ProductLine(f"{region}-P00001", "Afrobeats drum kit #1", 2, 9_800 * unit),
            ProductLine(f"{region}-P00002", "Notion planner #2", 1, 2_700 * unit),
        ],
        trend=[TrendPoint(DAY - dt.timedelta(days=29 - i), (i % 7) * 1_000 * unit) for i in range(29)]
        + [TrendPoint(DAY, 12_500 * unit)],
        sales=sales,
        held=HeldRecords(),
    )
    return dataclasses.replace(report, **changes)


def received(report: CreatorReport) -> EmailMessage:
    """The message as a mail client sees it: serialised to bytes and parsed back."""
    raw = build_message(report, SENDER, now=NOW).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def bodies(msg: EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def attachment_rows(msg: EmailMessage) -> list[dict[str, str]]:
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    return list(csv.DictReader(io.StringIO(attachment.get_content())))


def money(minor: int, currency: str, exponent: int, locale: str) -> str:
    """The amount as a report shows it: Babel's format, an Arabic locale's set apart left to right (its RLM marks
    dropped, inside LRI ... PDI), because the report's text is left to right."""
    text = format_currency(Decimal(minor).scaleb(-exponent), currency, locale=locale)
    if locale.startswith("ar"):
        return "\u2066" + text.replace("\u200f", "").replace("\u061c", "") + "\u2069"
    return text


def test_message_has_both_alternatives_the_chart_and_the_csv_with_the_headers_a_client_needs():
    msg = received(make_report(NG))

    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert (html.get_content_type(), image.get_content_type()) == ("text/html", "image/png")
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "sales-NG-C0001-2026-10-12.csv"

    assert msg["Subject"] == "Your sales on 12 Oct 2026: ₦12,500.00 net"
    assert msg["From"] == SENDER
    assert msg["To"].addresses[0].display_name == "Amani Mushi"
    assert msg["To"].addresses[0].addr_spec == "amani@creators.example"
    assert msg["Date"].datetime == NOW
    assert re.fullmatch(r"<report-NG-NG-C0001-2026-10-12\.[0-9a-f]{12}@kanda>", msg["Message-ID"])
    assert msg["Content-Language"] == "en"
    # the same report built again is recognisably the same message
    assert build_message(make_report(NG), SENDER)["Message-ID"] == msg["Message-ID"]


def test_the_chart_is_a_png_the_html_shows_by_content_id():
    msg = received(make_report(TZ))
    _, html = bodies(msg)
    (image,) = [p for p in msg.walk() if p.get_content_maintype() == "image"]
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    png = image.get_content()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    picture = Image.open(io.BytesIO(png))
    assert picture.size == (chart.WIDTH * chart.SCALE, chart.HEIGHT * chart.SCALE)
    # every <img> is the embedded chart: nothing is fetched from the internet
    assert re.findall(r'<img[^>]+src="([^"]+)"', html) == [f"cid:{cid}"]


def test_the_chart_draws_each_day_in_its_own_column_quiet_days_as_zero_and_a_negative_day_below_the_line():
    days = [TrendPoint(DAY - dt.timedelta(days=29 - i), 0) for i in range(30)]
    days[3] = TrendPoint(days[3].local_date, 5_000)
    days[10] = TrendPoint(days[10].local_date, -2_500)
    days[29] = TrendPoint(DAY, 4_000)
    picture = Image.open(io.BytesIO(chart.trend_png(days, 2))).convert("RGB")
    width, height = picture.size
    slot = width / 30
    background, axis, grid, quiet = (255, 255, 255), (156, 163, 175), (229, 231, 235), (209, 213, 219)

    def painted(day: int) -> list[int]:
        x = int((day + 0.5) * slot)
        return [y for y in range(height) if picture.getpixel((x, y)) not in {background, axis, grid, quiet}]

    def quiet_mark(day: int) -> list[int]:
        x = int((day + 0.5) * slot)
        return [y for y in range(height) if picture.getpixel((x, y)) == quiet]

    # a day without sales is a zero, drawn as a short mark on the zero line: never a gap
    for day in range(30):
        if day not in (3, 10, 29):
            mark = quiet_mark(day)
            assert mark and max(mark) - min(mark) < chart.ZERO_MARK * chart.SCALE, day
    assert painted(0) == [] and painted(20) == []  # ...and no bar
    tallest, negative, today = painted(3), painted(10), painted(29)
    assert tallest and negative and today
    assert max(tallest) < min(negative)  # the negative bar hangs below where the positive one stands
    assert min(quiet_mark(0)) > max(tallest) - chart.ZERO_MARK * chart.SCALE  # quiet days sit at the zero line
    assert picture.getpixel((int(29.5 * slot), today[-1])) != picture.getpixel((int(3.5 * slot), tallest[-1]))
    # the scale is round (the labelled gridlines are at 50.00 and -50.00) and the tallest day reaches the top one
    assert chart.axis_range([p.net_minor for p in days], 2) == (-5_000, 5_000)
    pad = chart.PAD * chart.SCALE
    assert picture.getpixel((width // 2, pad)) == grid and picture.getpixel((width // 2, height - pad)) == grid
    assert abs(min(tallest) - pad) <= 1
    assert abs(max(negative) - (pad + (height - 2 * pad) * 0.75)) <= 1  # -25.00 of the span from 50 to -50


@pytest.mark.parametrize(
    ("values", "exponent", "expected"),
    [
        ([0] * 30, 2, (0, 100)),  # thirty quiet days: an axis of one major unit
        ([28_741_325], 2, (0, 50_000_000)),  # ₦287,413.25 -> ₦500,000
        ([12_000, -700], 0, (-1_000, 20_000)),  # UGX: whole shillings
        ([45], 2, (0, 50)),  # less than one major unit: steps of the minor unit
    ],
)
def test_the_value_axis_ends_on_round_amounts(values, exponent, expected):
    assert chart.axis_range(values, exponent) == expected


def test_the_chart_axes_are_labelled_in_the_creators_language_and_locale():
    report = make_report(TZ)
    _, html = bodies(received(report))
    bottom, top = chart.axis_range([p.net_minor for p in report.trend], report.exponent)
    assert (bottom, top) == (0, 2_000_000)  # TSh 12,500 -> TSh 20,000
    flat = html.replace("\xa0", " ")
    assert ">TSh 20,000<" in flat and ">TSh 0<" in flat  # top and bottom gridline amounts
    first, middle, last = report.trend[0].local_date, report.trend[15].local_date, report.local_date
    assert (first.day, middle.day, last.day) == (13, 28, 12)
    assert ">13 Sep<" in flat and ">28 Sep<" in flat and ">12 Okt<" in flat  # Swahili month names
    _, html = bodies(received(make_report(NG)))
    assert ">₦20,000.00<" in html and ">Oct 12<" not in html and ">12 Oct<" in html


@pytest.mark.parametrize(
    ("where", "net", "absent"),
    [
        (TZ, "TSh\xa012,500", "12,500.00"),  # Tanzanian shillings are written whole
        (NG, "₦12,500.00", None),
        (EG, money(1_250_000, "EGP", 2, "ar_EG"), None),
        (UG, "USh12,500", "12,500.0"),  # UGX has no minor unit
        (SN, "12\u202f500\xa0F\u202fCFA", "500,00"),  # XOF neither
    ],
    ids=["TZS-sw_TZ", "NGN-en_NG", "EGP-ar_EG", "UGX-en_UG", "XOF-fr_SN"],
)
def test_amounts_are_formatted_for_the_creators_locale_and_agree_in_both_alternatives(where, net, absent):
    report = make_report(where)
    text, html = bodies(received(report))
    _, currency, exponent, locale, _, _ = where
    for body in (text, html):
        assert net in body
        if absent:
            assert absent not in body
        for minor in (report.day.gross_minor, -report.day.refunds_minor, -report.day.fees_minor):
            expected = money(minor, currency, exponent, locale)
            if currency == "TZS":
                expected = expected.removesuffix(".00")
            assert expected in body
        assert money(2_311, "USD", 2, locale) in body  # the USD equivalent, in the same locale
        # dates are words in the report's language, whatever the locale's own language
        assert ("Okt" if where is TZ else "Oct") in body
        assert "octobre" not in body and "أكتوبر" not in body
        for product in report.top_products:
            assert product.title in body


def test_an_arabic_locales_negative_amounts_read_left_to_right_in_the_report():
    """An Egyptian creator's amounts are formatted in `ar_EG`, whose money format starts with a right-to-left mark.
    Dropped into the English text as they were, a viewer drew a refund's minus after its digits ("2,500.00-") and
    turned the brackets of a drop's "(-200%)" around: a drop could read as a gain. Each amount is now set apart,
    left to right, and no right-to-left mark is left in the message."""
    previous = DayFigures(1, 2_500_000, 0, 0, 0, 2_500_000)
    report = make_report(EG, day=DayFigures(1, 1_000_000, 250_000, 0, 0, 750_000), previous_day=previous)
    text, html = bodies(received(report))
    for body in (text, html):
        assert "\u200f" not in body and "\u061c" not in body
        assert "\u2066-2,500.00\xa0ج.م.\u2069" in body  # the refunds, minus first
        assert "\u2066-17,500.00\xa0ج.م.\u2069 (-70%)" in body  # the change against the day before


def test_cents_are_never_rounded_away():
    unit_cents = make_report(NG, day=DayFigures(1, 1_234_567, 0, 0, 0, 1_234_567))
    text, html = bodies(received(unit_cents))
    assert "₦12,345.67" in text and "₦12,345.67" in html
    odd_shillings = make_report(TZ, day=DayFigures(1, 1_250_050, 0, 0, 0, 1_250_050))
    text, html = bodies(received(odd_shillings))
    assert "TSh\xa012,500.50" in text and "TSh\xa012,500.50" in html


@pytest.mark.parametrize("currency", [c for c, e in MINOR_UNIT_EXPONENT.items() if e > 0])
def test_every_currency_keeps_its_iso_minor_digits(currency):
    """Where CLDR's digits are fewer than ISO 4217's (IQD: 0 against 3, IDR: 0 against 2), the report still shows
    every minor unit stored: 1,234 units and one minor unit is never printed as 1,234."""
    exponent = MINOR_UNIT_EXPONENT[currency]
    text = money_text(1_234 * 10**exponent + 1, currency, exponent, Locale.parse("en"))
    assert "1,234." + "0" * (exponent - 1) + "1" in text


def test_csv_holds_exactly_the_reports_lines_with_exact_amounts_and_masked_buyers():
    report = make_report(NG)
    rows = attachment_rows(received(report))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["transaction_id"] for r in rows] == [s.transaction_id for s in report.sales]
    for row, line in zip(rows, report.sales, strict=True):
        assert Decimal(row["amount"]) * 100 == line.amount_minor
        assert Decimal(row["fee"]) * 100 == line.fee_minor
        assert Decimal(row["net"]) * 100 == line.amount_minor - line.fee_minor
        assert row["currency"] == "NGN"
        assert row["buyer"] == (line.buyer or "")
        assert dt.datetime.fromisoformat(row["local_time"]) == line.occurred_at_local
        assert row["local_time"].endswith("+01:00")  # the creator's own clock, offset stated
    # zero-exponent currencies have no decimals in the file either
    assert [r["amount"] for r in attachment_rows(received(make_report(UG)))][:2] == ["6000", "5000"]


def test_a_buyer_contact_that_slipped_through_is_masked_and_formulas_are_defused():
    report = make_report(NG)
    leaked = [
        dataclasses.replace(report.sales[0], buyer="jane.doe@example.com"),
        dataclasses.replace(report.sales[1], buyer="+254 712 345 678", product_title="=HYPERLINK(1)"),
    ]
    msg = received(dataclasses.replace(report, sales=leaked))
    raw = msg.as_string()
    assert "jane.doe@example.com" not in raw and "712 345 678" not in raw
    rows = attachment_rows(msg)
    assert [r["buyer"] for r in rows] == ["masked", "masked"]
    assert rows[1]["product_title"] == "'=HYPERLINK(1)"


def test_swahili_for_sw_and_english_for_an_unknown_language():
    sw = received(make_report(TZ))
    text, html = bodies(sw)
    assert sw["Content-Language"] == "sw"
    assert sw["Subject"].startswith("Mauzo yako ya 12 Okt 2026")
    for body in (text, html):
        assert "Habari Amani Mushi" in body
        assert "Mapato halisi" in body and "Bidhaa zinazoongoza" in body
        assert "Jumatatu, 12 Oktoba 2026" in body  # the date in the creator's locale
        assert "Hello" not in body
    assert '<html lang="sw">' in html

    assert received(make_report(TZ, language="sw_KE"))["Content-Language"] == "sw"
    fallback = received(make_report(TZ, language="rw"))  # Kinyarwanda: no catalogue
    assert fallback["Content-Language"] == "en"
    text, html = bodies(fallback)
    assert "Hello Amani Mushi" in text and "Top products" in html
    assert "TSh\xa012,500" in text  # the language falls back, the locale's money format stays


def test_html_is_inline_styled_tables_without_scripts_or_style_blocks():
    _, html = bodies(received(make_report(TZ)))
    lowered = html.lower()
    assert "<script" not in lowered and "javascript:" not in lowered and " on" + "load=" not in lowered
    assert "<style" not in lowered and "<link" not in lowered
    assert "max-width:600px" in html and 'role="presentation"' in html


def test_creator_supplied_text_is_escaped_in_html():
    report = make_report(
        NG, creator_name="<b>Ada</b> & Co", top_products=[ProductLine("NG-P00001", "<img src=x>", 1, 100)]
    )
    _, html = bodies(received(report))
    assert "<b>Ada</b>" not in html and "&lt;b&gt;Ada&lt;/b&gt; &amp; Co" in html
    assert "<img src=x>" not in html


@pytest.mark.parametrize(
    ("previous", "average", "expected"),
    [
        (DayFigures(2, 10_500, 0, 0, 500, 10_000), 10_000, ["+₦25.00 (+25%)", "+₦25.00 (+25%)"]),
        (DayFigures(0, 0, 0, 0, 0, 0), 0, ["+₦125.00", "+₦125.00"]),  # no percent of zero
        (None, None, ["no figures", "not available"]),
        (DayFigures(1, 12_500, 0, 0, 0, 12_500), 12_500, ["no change", "no change"]),
    ],
    ids=["up", "from-zero", "no-history", "flat"],
)
def test_change_against_the_day_before_and_the_7_day_average_is_honest_about_baselines(previous, average, expected):
    report = make_report(
        NG, day=DayFigures(1, 12_500, 0, 0, 0, 12_500), previous_day=previous, seven_day_average_net_minor=average
    )
    text, html = bodies(received(report))
    lines = [line for line in text.splitlines() if "The day before" in line or "7-day average" in line]
    assert len(lines) == 2
    for line, change in zip(lines, expected, strict=True):
        assert change in line
        assert "%" not in line or (previous is not None and previous.net_minor > 0)
    for change in expected:
        assert change in html


def test_usd_equivalent_names_the_rate_date_or_says_there_was_none():
    text, _ = bodies(received(make_report(NG)))
    assert "About US$23.11 at the exchange rate of 5 Oct 2026" in text
    text, html = bodies(received(make_report(NG, net_usd_minor=None, fx_date=None)))
    for body in (text, html):
        assert "No USD exchange rate was known for this day" in body
        assert "US$" not in body


def test_fees_a_rail_does_not_state_are_not_reported_rather_than_zero():
    """A rail whose files carry no fee (M-Pesa statements, Wave sessions) books fee 0: the report must not say that
    nothing was charged."""
    quiet = make_report(NG, day=DayFigures(3, 15_000_00, 2_000_00, 0, 0, 13_000_00), fees_stated=False)
    text, html = bodies(received(quiet))
    for body in (text, html):
        assert "not reported" in body
        assert "Your payment provider does not report its fees to kanda, so Net is before its charges." in body
    assert re.search(r"Fees:\s+not reported", text)
    # such a rail books fee 0 on every payment: the day's fees are 0 (other fees would be stated ones, a mixed day)
    text, _ = bodies(received(make_report(TZ, day=quiet.day, fees_stated=False)))
    assert re.search(r"Ada:\s+hazijaripotiwa", text) and "kwa hiyo Mapato halisi ni kabla ya ada zake" in text

    text, html = bodies(received(make_report(NG)))  # a rail that states its fees: the amount, no note
    assert re.search(r"Fees:\s+-₦500\.00", text), text
    for body in (text, html):
        assert "not reported" not in body and "does not report its fees" not in body


def test_held_records_are_explained_in_plain_words_in_the_creators_language():
    held = HeldRecords(3, {"unknown_creator": 2, "amount_sign_matches_event_type": 1, "some_new_rule": 1})
    text, html = bodies(received(make_report(NG, held=held)))
    for body in (text, html):
        assert "3 records of this day are held for review" in body
        assert "2: the creator or product code was not recognised yet" in body
        assert "1: the amount had the wrong sign for its kind of payment" in body
        assert "1: it did not pass a data check" in body  # a rule without words yet still gets an honest line
        assert "unknown_creator" not in body
    text, _ = bodies(received(make_report(TZ, held=HeldRecords(1, {"unknown_creator": 1}))))
    assert "Rekodi 1 ya siku hii imezuiliwa kwa ukaguzi" in text
    assert "msimbo wa mbunifu au wa bidhaa haukutambuliwa bado" in text

    text, html = bodies(received(make_report(NG)))
    assert "held for review" not in text and "held for review" not in html


@pytest.mark.parametrize(
    ("rule", "english", "swahili"),
    [
        (REPEAT_DIFFERS, "the payment arrived again with a different amount", "malipo yalifika tena"),
        (REPEAT_OTHER_OWNER, "the payment arrived again naming a different creator or product", "mbunifu au bidhaa"),
        (REPEAT_OTHER_TIME, "a refund may repeat one of the same amount already counted", "marejesho ya pesa"),
    ],
)
def test_a_record_held_as_a_repeat_says_which_kind_of_repeat_it_is(rule: str, english: str, swahili: str):
    """The rules kanda's boundary raises itself (not the contract's) each have their words: a creator whose payment
    arrived again naming someone else was told only that it "did not pass a data check"."""
    text, html = bodies(received(make_report(NG, held=HeldRecords(1, {rule: 1}))))
    for body in (text, html):
        assert f"1: {english}" in body
        assert "did not pass a data check" not in body and rule not in body
    text, _ = bodies(received(make_report(TZ, held=HeldRecords(1, {rule: 1}))))
    assert swahili in text and "did not pass a data check" not in text


def test_a_restated_earlier_day_is_shown_with_what_the_report_said_and_what_it_says_now():
    restated = [Restatement(DAY - dt.timedelta(days=2), reported_net_minor=1_000_000, net_minor=800_000)]
    text, html = bodies(received(make_report(NG, restated=restated)))
    line = "10 Oct 2026: net is now ₦8,000.00 (the report said ₦10,000.00), a change of -₦2,000.00."
    assert line in text and line in html


UNSUBSCRIBE = "https://kanda.example/reports/unsubscribe/WyJORy1DMDAwMSIsImVuIl0.sig"


def test_encoded_words_keep_to_75_characters_and_the_unsubscribe_link_to_one_line():
    """RFC 2047 caps an encoded word at 75 characters. With every header allowed 998, a Vietnamese or Amharic
    subject went out as one encoded word of about 110, which strict clients and filters refuse; the one header
    that must stay whole, `List-Unsubscribe` (one URL), is on one line and never encoded."""
    vietnam = ("VN", "VND", 0, "vi_VN", "vi", "Asia/Ho_Chi_Minh")
    long_url = UNSUBSCRIBE + "x" * 120
    report = make_report(vietnam, creator_name="Trần Thị Hương Nguyễn Phạm")
    raw = build_message(report, SENDER, now=NOW, unsubscribe_url=long_url).as_bytes()
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head)
    assert words and max(len(w) for w in words) <= 75, [len(w) for w in words]
    assert f"\nList-Unsubscribe: <{long_url}>\n" in head
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Trần Thị Hương Nguyễn Phạm"
    assert "VN-C0001" not in parsed["Subject"] and "₫" in parsed["Subject"]


def test_a_delivered_report_says_where_replies_go_how_to_stop_it_and_what_the_inbox_preview_shows():
    raw = build_message(
        make_report(NG), SENDER, now=NOW, reply_to="kanda support <help@kanda.invalid>", unsubscribe_url=UNSUBSCRIBE
    ).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Reply-To"].addresses[0].addr_spec == "help@kanda.invalid"
    # on the wire as the URL itself: an RFC 2047 encoded word (what folding a long word gives) is not allowed there
    assert f"\nList-Unsubscribe: <{UNSUBSCRIBE}>\n" in raw.decode("ascii").replace("\r\n", "\n")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058
    text, html = bodies(msg)
    assert f"Stop these daily reports: {UNSUBSCRIBE}" in text
    assert f'<a href="{UNSUBSCRIBE}"' in html
    for body in (text, html):
        assert "Questions about these figures? Reply to this email." in body
    # the preheader: first thing in the body, hidden, the day in one sentence
    body = html[html.index("<body") :]
    first = re.search(r"<div style=\"([^\"]*)\">([^<&]*)", body)
    assert first is not None and "display:none" in first.group(1)
    assert first.group(2) == "₦12,500.00 net from 3 orders. Against the day before: +₦2,500.00 (+25%)."
    # without a reply address or a link (a hand-built message) neither is promised
    plain = received(make_report(NG))
    assert plain["List-Unsubscribe"] is None and plain["Reply-To"] is None
    assert "Reply to this email" not in bodies(plain)[0]


@pytest.mark.parametrize(
    "changes",
    [
        {"creator_name": "Ada\r\nBcc: victim@evil.example"},
        {"creator_name": "Ada\nObi"},
        {"creator_name": "Ada\x00Obi"},
        {"email": "ada@creators.example\r\nBcc: victim@evil.example"},
        {"email": "ada@creators.example\n"},
        {"email": "not an address"},
    ],
    ids=["crlf-name", "lf-name", "nul-name", "crlf-email", "lf-email", "no-address"],
)
def test_a_name_or_address_that_could_forge_headers_is_refused_never_sent(changes):
    report = make_report(NG, **changes)
    assert recipient_problem(report) is not None
    with pytest.raises(UnsafeRecipient, match=r"NG-C0001.*registry"):
        build_message(report, SENDER)
    assert recipient_problem(make_report(NG, creator_name='Ngozi Ọkọnkwọ-Ìbè, "Ada"')) is None


def test_the_message_says_the_attachment_adds_up_to_the_net_and_what_it_leaves_out():
    text, html = bodies(received(make_report(NG, other_attempts=1)))
    for body in (text, html):
        flat = " ".join(body.split())
        assert (
            "The attached file sales-NG-C0001-2026-10-12.csv lists the 4 payments that make up these figures "
            "(sales, refunds and reversals): its net column adds up to ₦12,500.00." in flat
        )
        assert "1 pending or failed payment attempt is not listed: it moved no money." in flat
    rows = attachment_rows(received(make_report(NG)))
    assert sum(Decimal(r["net"]) for r in rows) * 100 == make_report(NG).day.net_minor


def test_a_creator_without_an_email_address_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="NG-C0001 has no email"):
        build_message(make_report(NG, email=""), SENDER)


_contacts = st.one_of(
    st.emails(),
    st.from_regex(r"\+2(34|54|55|0)[0-9]{9}", fullmatch=True),
    st.from_regex(r"0[0-9]{3} [0-9]{3} [0-9]{3}", fullmatch=True),
)


_BASELINE = build_message(make_report(NG), SENDER, now=NOW).as_string()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts=st.lists(_contacts, min_size=1, max_size=6, unique=True))
def test_no_buyer_contact_ever_reaches_the_message(contacts):
    report = make_report(NG)
    assume(not any(c in _BASELINE for c in contacts))  # e.g. "s@kanda.invalid" is part of the sender's address
    lines = [
        dataclasses.replace(report.sales[i % 4], transaction_id=f"TX-{i}", buyer=c) for i, c in enumerate(contacts)
    ]
    msg = received(dataclasses.replace(report, sales=lines))
    text, html = bodies(msg)
    (attachment,) = list(msg.iter_attachments())
    everything = "\n".join([text, html, attachment.get_content(), msg.as_string()])
    for contact in contacts:
        assert contact not in everything
    assert [r["buyer"] for r in attachment_rows(msg)] == ["masked"] * len(contacts)


#: For every table row, each cell's text box against the next one's: the gap between them, and whether a numeric
#: (right-aligned) cell keeps padding towards its neighbour.
_CELL_GAPS = """() => {
  const out = [];
  for (const row of document.querySelectorAll('tr')) {
    const cells = [...row.children].filter(td => td.tagName === 'TD' && td.innerText.trim());
    for (let i = 0; i + 1 < cells.length; i++) {
      const a = document.createRange(), b = document.createRange();
      a.selectNodeContents(cells[i]); b.selectNodeContents(cells[i + 1]);
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      if (ra.width === 0 || rb.width === 0) continue;
      out.push({left: cells[i].innerText.trim(), right: cells[i + 1].innerText.trim(), gap: rb.left - ra.right,
                padding: parseFloat(getComputedStyle(cells[i + 1]).paddingLeft)});
    }
  }
  return out;
}"""


def _shown_in_browser(msg: EmailMessage) -> str:
    """The HTML part as a mail client shows it: the chart's cid: reference answered with the image itself."""
    import base64

    _, html = bodies(msg)
    (image,) = [p for p in msg.walk() if p.get_content_maintype() == "image"]
    data = base64.b64encode(image.get_content()).decode()
    return html.replace(f"cid:{image['Content-ID'].strip('<>')}", f"data:image/png;base64,{data}")


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280], ids=["phone-375", "desktop-1280"])
def test_at_phone_and_desktop_width_no_number_runs_into_the_next(browser, width: int):
    """The issue's "5₦285,896.25": big amounts and long titles in the top products, read in Chromium."""
    products = [
        ProductLine("NG-P00001", "Afrobeats drum kit with 120 loops and stems, vol. 1", 5, 28_589_625),
        ProductLine("NG-P00002", "Notion planner", 1_204, 1_234_567_890),
        ProductLine("NG-P00003", "Lagos street photography presets (Lightroom mobile + desktop)", 12, 99_950),
    ]
    report = make_report(
        NG,
        top_products=products,
        day=DayFigures(1_221, 1_300_000_000, 2_000_000, 150_000, 19_500_000, 1_278_350_000),
        held=HeldRecords(2, {"unknown_creator": 2}),
    )
    msg = email.message_from_bytes(
        build_message(report, SENDER, now=NOW, reply_to="help@kanda.invalid", unsubscribe_url=UNSUBSCRIBE).as_bytes(),
        policy=email.policy.default,
    )
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.route("**/*", lambda route: route.abort())  # a report needs nothing from the network
        page.set_content(_shown_in_browser(msg))
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        card = page.evaluate("document.querySelector('table table').getBoundingClientRect().width")
        assert card <= min(600, width)
        widest = page.evaluate(
            "Math.max(...[...document.querySelectorAll('td')].map(td => td.getBoundingClientRect().right))"
        )
        assert widest <= width
        gaps = page.evaluate(_CELL_GAPS)
        text = page.inner_text("body").replace("\xa0", " ")
        assert "₦285,896.25" in text and "₦12,345,678.90" in text
        top = [g for g in gaps if g["right"] in {"₦285,896.25", "₦12,345,678.90", "₦999.50"}]
        assert len(top) == 3  # the orders -> net pairs of the top products were measured
        for pair in gaps:
            assert pair["gap"] >= 8, pair  # text boxes never touch: "5" and "₦285,896.25" stay apart
        for pair in top:
            assert pair["padding"] >= 8, pair  # ...because the numeric cell itself keeps its distance
        assert page.evaluate("document.querySelector('img').naturalWidth") == chart.WIDTH * chart.SCALE
        image_right = page.evaluate("document.querySelector('img').getBoundingClientRect().right")
        assert image_right <= width
    finally:
        page.close()


def test_a_day_with_only_held_records_still_makes_a_clear_message():
    quiet = make_report(
        UG,
        day=DayFigures(0, 0, 0, 0, 0, 0),
        previous_day=None,
        seven_day_average_net_minor=None,
        net_usd_minor=0,
        fx_date=None,
        top_products=[],
        trend=[],
        sales=[],
        held=HeldRecords(4, {"unknown_creator": 4}),
    )
    msg = received(quiet)
    text, html = bodies(msg)
    assert attachment_rows(msg) == []
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content().splitlines() == [",".join(CSV_COLUMNS)]
    for body in (text, html):
        assert "USh0" in body
        assert "4 records of this day are held for review" in body
        assert "Top products" not in body
