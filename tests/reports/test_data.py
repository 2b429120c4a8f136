"""What goes into a report: the creator's local day (DST included), late refunds, held records, and when a day is
reportable at all. Chosen sale events go through the region's real file format, ingestion, models and publish."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from fractions import Fraction
from zoneinfo import ZoneInfo

import polars as pl

from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_landing
from kanda.regional.store import open_store
from kanda.reports.data import day_closes_at, region_reports
from kanda.reports.run import write_reports
from kanda.settings import Settings
from regions import get_region
from regions.synthetic.core import make_registry
from tests.support.reports import REGISTRY_SEED, load_and_publish, parts, sale, write_sales

CAIRO = ZoneInfo("Africa/Cairo")
LAGOS = ZoneInfo("Africa/Lagos")
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # "now" long after every day used here


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_an_egyptian_creators_sales_land_in_their_local_day_across_both_dst_switches(settings: Settings):
    """Cairo moves to UTC+3 at local midnight of Friday 24 April 2026 and back at midnight after 29 October."""
    c, p = "EG-C0001", "EG-P00001"
    write_sales(
        settings,
        "EG",
        [
            sale(1, c, p, 100_00, utc(2026, 4, 23, 21, 30)),  # 23:30 EET, 23 Apr
            sale(2, c, p, 200_00, utc(2026, 4, 23, 22, 30)),  # 01:30 EEST, 24 Apr (00:00-01:00 never happened)
            sale(3, c, p, 400_00, utc(2026, 4, 24, 20, 59)),  # 23:59 EEST, 24 Apr
            sale(4, c, p, 800_00, utc(2026, 4, 24, 21, 30)),  # 00:30 EEST, 25 Apr (a fixed UTC+2 would say 24 Apr)
            sale(5, c, p, 1_600_00, utc(2026, 10, 29, 20, 30)),  # 23:30 EEST, 29 Oct
            sale(6, c, p, 3_200_00, utc(2026, 10, 29, 21, 30)),  # 23:30 EET, 29 Oct again: a 25-hour day
            sale(7, c, p, 6_400_00, utc(2026, 10, 29, 22, 30)),  # 00:30 EET, 30 Oct
        ],
        "dst",
    )
    load_and_publish(settings, "EG")

    def day(d: dt.date):
        (report,) = region_reports(settings, "EG", d, now=LATER).reports
        return report

    expected = {
        dt.date(2026, 4, 23): ({"1"}, 100_00),
        dt.date(2026, 4, 24): ({"2", "3"}, 600_00),
        dt.date(2026, 4, 25): ({"4"}, 800_00),
        dt.date(2026, 10, 29): ({"5", "6"}, 4_800_00),
        dt.date(2026, 10, 30): ({"7"}, 6_400_00),
    }
    for local_date, (transactions, gross) in expected.items():
        report = day(local_date)
        assert {line.transaction_id.removeprefix("ch_3Kanda").lstrip("0") for line in report.sales} == transactions
        assert report.day.gross_minor == gross, local_date
        assert all(line.occurred_at_local.date() == local_date for line in report.sales)
    first = day(dt.date(2026, 4, 24)).sales[0].occurred_at_local
    assert (first.hour, first.minute, first.utcoffset()) == (1, 30, dt.timedelta(hours=3))
    # the trend of 25 April counts each day once, on the right date
    trend = {p.local_date: p.net_minor for p in day(dt.date(2026, 4, 25)).trend}
    assert [trend[dt.date(2026, 4, d)] > 0 for d in (22, 23, 24, 25)] == [False, True, True, True]

    # 24 April has 23 hours: it closes at 21:00 UTC, not 22:00
    closes = day_closes_at(get_region("EG"), dt.date(2026, 4, 24))
    assert closes == utc(2026, 4, 24, 21)
    early = region_reports(settings, "EG", dt.date(2026, 4, 24), now=closes - dt.timedelta(seconds=1))
    assert early.readiness.reason == "not_closed" and not early.reports
    assert region_reports(settings, "EG", dt.date(2026, 4, 24), now=closes).readiness.ready


def test_a_late_refund_restates_the_right_day_and_the_next_report_shows_it(settings: Settings):
    """Money counts on the local day it moved (as in `creator_daily`): a refund made on day B of a sale of day A is
    on B's report; a refund made on A that arrives after A's report went out restates A, and B's report says so."""
    c, a, b = "NG-C0001", dt.date(2026, 10, 5), dt.date(2026, 10, 6)

    def at(day: dt.date, hour: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour), tzinfo=LAGOS)

    write_sales(
        settings,
        "NG",
        [
            sale(10, c, "NG-P00001", 5_000_00, at(a, 10), buyer=1),
            sale(11, c, "NG-P00002", 2_000_00, at(a, 12), buyer=2),
            {**sale(12, c, "NG-P00001", 7_000_00, at(a, 13), buyer=3), "corruption": "bad_amount"},
        ],
        "day_a",
    )
    load_and_publish(settings, "NG")
    first = write_reports(settings, a, regions=["NG"], deliver=True, now=LATER)
    assert first.ok and first.written == 1
    (sent_a,) = region_reports(settings, "NG", a, now=LATER).reports
    assert sent_a.held.count == 1 and sum(sent_a.held.reasons.values()) >= 1  # the unreadable amount, explained
    net_a = sent_a.day.net_minor

    write_sales(
        settings,
        "NG",
        [
            sale(10, c, "NG-P00001", -5_000_00, at(b, 9), event="refund"),  # late refund of A's sale, made on B
            sale(11, c, "NG-P00002", -2_000_00, at(a, 20), event="refund"),  # made on A, delivered only now
            sale(13, c, "NG-P00003", 3_000_00, at(b, 11), buyer=4),
        ],
        "day_b",
    )
    ingest_landing(settings, "NG")
    not_yet = write_reports(settings, b, regions=["NG"], deliver=True, now=LATER)
    assert not not_yet.ok and not_yet.regions[0].status == "not_published" and not_yet.written == 0
    assert publish_region(settings, "NG").published

    (now_a,) = region_reports(settings, "NG", a, now=LATER).reports
    assert now_a.day.refunds_minor == 2_000_00 and now_a.day.net_minor == net_a - 2_000_00  # A restated
    # a preview shows what delivery will send, the correction of A included (it used to leave it out)
    preview = write_reports(settings, b, regions=["NG"], now=LATER)
    assert preview.ok and preview.written == 1 and preview.regions[0].restated == 1
    previewed = (settings.reports_dir / "NG" / b.isoformat() / f"{c}.eml").read_bytes()
    summary = write_reports(settings, b, regions=["NG"], deliver=True, now=LATER)
    assert summary.ok and summary.written == 1 and summary.regions[0].restated == 1
    (report_b,) = region_reports(settings, "NG", b, now=LATER).reports
    assert report_b.day.refunds_minor == 5_000_00  # the refund of A's sale made on B counts on B
    assert report_b.day.orders == 1 and report_b.previous_day == now_a.day

    # what the creator received for B tells them A changed
    path = settings.outbox_dir / "NG" / b.isoformat() / f"{c}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = parts(message)["text/plain"].get_content()
    assert "₦5,000.00" in text  # B's refund
    # and the correction of A: what A's report said, and what A says now
    was = f"₦{net_a / 100:,.2f}"
    now = f"₦{(net_a - 2_000_00) / 100:,.2f}"
    correction = next(line for line in text.splitlines() if was in line)
    assert now in correction and "-₦2,000.00" in correction
    shown = parts(email.message_from_bytes(previewed, policy=email.policy.default))["text/plain"].get_content()
    assert correction in shown.splitlines()
    from kanda.reports.delivery import DeliveryLog

    log = DeliveryLog(settings)
    try:  # A's net is now the one the creator was told last
        assert log.stated_net("NG", [a, b]) == {(c, a): net_a - 2_000_00, (c, b): report_b.day.net_minor}
    finally:
        log.close()

    # told once: the next day's report does not repeat the correction of A
    next_day = b + dt.timedelta(days=1)
    write_sales(settings, "NG", [sale(14, c, "NG-P00003", 3_000_00, at(next_day, 11), buyer=5)], "day_c")
    load_and_publish(settings, "NG")
    after = write_reports(settings, next_day, regions=["NG"], deliver=True, now=LATER + dt.timedelta(days=1))
    assert after.ok and after.written == 1 and after.regions[0].restated == 0
    path = settings.outbox_dir / "NG" / next_day.isoformat() / f"{c}.eml"
    text = parts(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))["text/plain"].get_content()
    assert was not in text


def test_the_seven_day_average_is_shown_only_over_seven_days_of_history(settings: Settings):
    """A region three days old has no 7-day average: the mean of its three days under that name would be a figure
    the creator cannot check. From the eighth day it is the exact mean of the seven days before, quiet days as 0."""
    c = "KE-C0001"
    first, third, eighth = dt.date(2026, 10, 5), dt.date(2026, 10, 7), dt.date(2026, 10, 12)

    def noon(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)

    sales = [sale(1, c, "KE-P00001", 1_000_00, noon(first)), sale(2, c, "KE-P00001", 2_000_01, noon(third))]
    write_sales(settings, "KE", [*sales, sale(3, c, "KE-P00001", 500_00, noon(eighth))], "week")
    load_and_publish(settings, "KE")
    (early,) = region_reports(settings, "KE", third, now=LATER).reports
    assert early.seven_day_average_net_minor is None
    (week,) = region_reports(settings, "KE", eighth, now=LATER).reports
    nets = {p.local_date: p.net_minor for p in week.trend}
    seven = sum(nets.get(eighth - dt.timedelta(days=i), 0) for i in range(1, 8))
    assert seven == nets[first] + nets[third] and seven > 0
    assert week.seven_day_average_net_minor == round(Fraction(seven, 7))


def test_a_quarantined_line_dated_years_back_does_not_start_the_regions_history(settings: Settings):
    """A statement line whose time is a typo from 2014 is quarantined on that day; the region is still three days
    old, so its reports show no 7-day average (a three-day sum over 7 would be) and no day before its first."""
    c = "KE-C0001"
    first, third = dt.date(2026, 10, 5), dt.date(2026, 10, 7)

    def noon(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)

    typo = sale(3, c, "KE-P00001", 500_00, utc(2014, 10, 6, 12))
    sales = [sale(1, c, "KE-P00001", 1_000_00, noon(first)), sale(2, c, "KE-P00001", 2_000_01, noon(third)), typo]
    write_sales(settings, "KE", sales, "typo")
    load_and_publish(settings, "KE")
    (report,) = region_reports(settings, "KE", third, now=LATER).reports
    assert report.seven_day_average_net_minor is None
    (opening,) = region_reports(settings, "KE", first, now=LATER).reports
    assert opening.previous_day is None


def test_a_report_waits_until_its_day_has_ended_where_the_creator_is(settings: Settings):
    c = "KE-C0001"
    write_sales(settings, "KE", [sale(1, c, "KE-P00001", 1_000_00, utc(2026, 10, 5, 12))], "one")
    load_and_publish(settings, "KE")
    day = dt.date(2026, 10, 5)
    nairobi_midnight = utc(2026, 10, 5, 21)  # 00:00 on the 6th in Nairobi (UTC+3)
    before = write_reports(settings, day, regions=["KE"], deliver=True, now=nairobi_midnight - dt.timedelta(minutes=1))
    assert before.regions[0].status == "not_closed" and before.written == 0 and not before.ok
    assert "Africa/Nairobi" in before.regions[0].message
    after = write_reports(settings, day, regions=["KE"], deliver=True, now=nairobi_midnight)
    assert after.ok and after.written == 1
    # the default day is the region's own yesterday
    default = write_reports(settings, regions=["KE"], now=utc(2026, 10, 6, 3))
    assert default.regions[0].local_date == day


def test_language_comes_from_the_registry_and_kenya_and_tanzania_default_to_swahili(settings: Settings):
    registry = make_registry(REGISTRY_SEED, creators_per_region=3)
    creators = registry.creators.with_columns(
        language=pl.when(pl.col("creator_id").is_in(["KE-C0001", "NG-C0001", "TZ-C0001"]))
        .then(None)
        .when(pl.col("creator_id") == "KE-C0002")
        .then(pl.lit("en"))
        .otherwise(pl.col("language"))
    )
    type(registry)(creators, registry.products).write(settings.registry_dir)
    when = utc(2026, 10, 5, 10)
    for code in ("KE", "TZ", "NG"):
        rows = [sale(i, f"{code}-C000{i}", f"{code}-P0000{4 * i - 3}", 1_000_00, when) for i in (1, 2)]
        write_sales(settings, code, rows, "lang")
        load_and_publish(settings, code)
    day = dt.date(2026, 10, 5)
    reports = [r for code in ("KE", "TZ", "NG") for r in region_reports(settings, code, day, now=LATER).reports]
    languages = {r.creator_id: (r.language, r.locale) for r in reports}
    # M-Pesa statements carry no fee (charges are rows of their own); Gumroad's and Paystack's files state it.
    assert {r.region: r.fees_stated for r in reports} == {"KE": False, "TZ": True, "NG": True}
    assert languages == {
        "KE-C0001": ("sw", "sw_KE"),  # no language in the registry: the region's default
        "KE-C0002": ("en", "sw_KE"),  # the registry's choice wins
        "TZ-C0001": ("sw", "sw_TZ"),
        "TZ-C0002": ("sw", "sw_TZ"),
        "NG-C0001": ("en", "en_NG"),
        "NG-C0002": ("en", "en_NG"),
    }


def test_a_registry_currency_other_than_the_regions_neither_relabels_nor_rescales_the_money(settings, caplog):
    """A Kenyan creator registered with UGX (no minor unit) got "UGX 100,000" for KES 1,000.00 (100 times the money,
    in another currency) while the USD line stayed right; the money is the region's, and the registry is named."""
    registry = make_registry(REGISTRY_SEED, creators_per_region=3)
    creators = registry.creators.with_columns(
        currency=pl.when(pl.col("creator_id") == "KE-C0001").then(pl.lit("UGX")).otherwise(pl.col("currency"))
    )
    type(registry)(creators, registry.products).write(settings.registry_dir)
    write_sales(settings, "KE", [sale(1, "KE-C0001", "KE-P00001", 1_000_00, utc(2026, 10, 5, 10))], "ugx")
    load_and_publish(settings, "KE")
    assert "creator KE-C0001 has currency 'UGX', but KE settles in KES; reports show KES" in caplog.text
    (report,) = region_reports(settings, "KE", dt.date(2026, 10, 5), now=LATER).reports
    assert (report.currency, report.exponent, report.day.net_minor) == ("KES", 2, 1_000_00)


def test_payments_that_did_not_go_through_are_counted_once_and_a_success_is_not_one(settings: Settings):
    """The message tells how many payment attempts of the day moved no money. A payment that was pending and then
    succeeded is listed, not one of them (counting its pending event told a rail that reports every payment pending
    first as many failures as orders); a payment pending then failed is one, not two."""
    c, p = "NG-C0001", "NG-P00001"

    def at(hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 10, 5, hour, minute, tzinfo=LAGOS)

    rows = [
        sale(1, c, p, 1_000_00, at(9), status="pending", buyer=1),  # pending, then succeeded: listed
        sale(1, c, p, 1_000_00, at(9, 5), buyer=1),
        sale(2, c, p, 2_000_00, at(10), status="pending", buyer=2),  # pending, then failed: one attempt
        sale(2, c, p, 2_000_00, at(10, 5), status="failed", buyer=2),
        sale(3, c, p, 3_000_00, at(11), status="failed", buyer=3),  # failed
        sale(4, c, p, 4_000_00, at(12), status="pending", buyer=4),  # still pending at the day's end
        sale(5, c, p, 5_000_00, at(13), buyer=5),
    ]
    write_sales(settings, "NG", rows, "attempts")
    load_and_publish(settings, "NG")
    with open_store(settings, "NG", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events WHERE creator_id = ?", [c]).fetchone()[0] == 7
    summary = write_reports(settings, dt.date(2026, 10, 5), regions=["NG"], deliver=True, now=LATER)
    assert summary.ok
    (report,) = region_reports(settings, "NG", dt.date(2026, 10, 5), now=LATER).reports
    assert report.other_attempts == 3 and report.day.orders == 2 and len(report.sales) == 2
    path = settings.outbox_dir / "NG" / "2026-10-05" / f"{c}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = " ".join(parts(message)["text/plain"].get_content().split())
    assert "3 pending or failed payment attempts are not listed: they moved no money." in text


def test_a_record_held_for_its_time_is_told_on_the_day_it_arrived(settings: Settings):
    """A row held for its time (dated in the future, or unreadable) has no local day of its own; the rollups count
    it on the day it arrived. The reports looked for it on its own day only, so no report ever said it was held,
    and the creator's missing money went unexplained."""
    c = "NG-C0001"
    arrived = dt.datetime.now(LAGOS).date()
    future = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=400)
    write_sales(settings, "NG", [sale(1, c, "NG-P00001", 1_000_00, future)], "future")
    load_and_publish(settings, "NG")
    with open_store(settings, "NG", read_only=True) as con:
        assert con.execute("SELECT local_date FROM quarantine").fetchall() == [(None,)]

    day = region_reports(settings, "NG", arrived, now=LATER)
    assert day.readiness.ready, day.readiness
    (report,) = [r for r in day.reports if r.creator_id == c]
    assert report.held.count == 1 and report.held.reasons == {"not_in_future": 1}
