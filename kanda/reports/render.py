"""One creator's report as words: subject, plain text and HTML in their language, amounts in their locale.

Money arrives in integer minor units and is turned into a `Decimal` of major units (never a float) only here, at
the edge, then formatted by Babel for the creator's locale (`TSh 12,500` in Tanzania, `₦12,500.00` in Nigeria,
no decimals at all for UGX or XOF). Both alternatives are rendered from one view of the figures, so the plain text
and the HTML cannot disagree on an amount.

Templates are Jinja2 with the `jinja2.ext.i18n` extension; one environment per language is built once and kept,
its gettext calls answered from the catalogue loaded by `kanda.reports.i18n`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.core import get_global
from babel.dates import format_date, format_skeleton
from babel.numbers import (
    NumberPattern,
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    parse_pattern,
)

from kanda.reports.chart import HEIGHT as CHART_HEIGHT
from kanda.reports.chart import WIDTH as CHART_WIDTH
from kanda.reports.chart import axis_range, trend_png
from kanda.reports.i18n import babel_locale, date_locale, resolve_language, translations
from kanda.reports.model import CreatorReport, DayFigures, HeldRecords

TEMPLATES_DIR = Path(__file__).parent / "templates"
USD_EXPONENT = 2


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown, in the reader's language."""
    return message


#: Why records are held, in words a creator understands. Keys are the rule names of the quarantine reasons
#: (`quality/contract.py`, `quality/boundary.py`; pandera's built-in checks appear under their own names).
HELD_REASONS: dict[str, str] = {
    "unknown_creator": N_("the creator or product code was not recognised yet"),
    "missing_or_unreadable": N_("a required value was missing or could not be read"),
    "amount_sign_matches_event_type": N_("the amount had the wrong sign for its kind of payment"),
    "net_is_amount_minus_fee": N_("the net amount did not equal the amount minus the fee"),
    "fee_within_amount": N_("the fee was larger than the payment"),
    "currency_is_region_currency": N_("the payment was in a different currency from your region's"),
    "creator_in_region": N_("the creator code belongs to another region"),
    "not_in_future": N_("the payment was dated in the future"),
    "repeat_differs": N_("the payment arrived again with a different amount"),
    # the event is kept with the creator and product it was first recorded with; which claim is right is the steward's
    "repeat_other_owner": N_("the payment arrived again naming a different creator or product"),
    # a refund a reviewer timed and the rail's own at another minute, or the reverse: one refund or two is checked
    "repeat_other_time": N_("a refund may repeat one of the same amount already counted at a different time"),
    "in_range": N_("the amount or fee was far outside the usual range"),
    "isin": N_("a code (payment type, status or currency) was not one we know"),
    "str_matches": N_("a creator or product code was not in the expected form"),
    "str_length": N_("a reference had the wrong length"),
    "greater_than_or_equal_to": N_("a date or number was earlier or lower than possible"),
    "dtype": N_("a value was of the wrong kind"),
}
OTHER_REASON = N_("it did not pass a data check")


@dataclass(frozen=True)
class Rendered:
    """A report in words, ready to be wrapped into a message."""

    language: str  # the catalogue language actually used (an unknown one falls back to "en")
    subject: str
    text: str
    html: str
    chart_png: bytes
    chart_cid: str  # Content-ID of the chart, without angle brackets


class Formats:
    """Babel formatting for one creator: money and numbers in their locale (currency and its ISO 4217 exponent),
    dates in the report's language (see `i18n.date_locale`)."""

    def __init__(self, locale: Locale, currency: str, exponent: int, *, dates: Locale | None = None) -> None:
        self.locale = locale
        self.dates = dates or locale
        self.currency = currency
        self.exponent = exponent

    def money(self, minor: int, *, signed: bool = False) -> str:
        """`minor` units as the locale writes the currency; `signed` adds "+" to positive amounts (changes)."""
        text = money_text(minor, self.currency, self.exponent, self.locale)
        return left_to_right(f"+{text}" if signed and minor > 0 else text)

    def usd(self, cents: int) -> str:
        return left_to_right(money_text(cents, "USD", USD_EXPONENT, self.locale))

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)

    def percent(self, ratio: Decimal) -> str:
        text = format_percent(ratio, "#,##0.#%", locale=self.locale)
        return f"+{text}" if ratio > 0 else text

    def date(self, day: dt.date, form: str = "medium") -> str:
        return format_date(day, format=form, locale=self.dates)

    def short_date(self, day: dt.date) -> str:
        """Day and abbreviated month in the language's order ("12 Oct", "Oct 12"): an axis label."""
        return format_skeleton("MMMd", day, locale=self.dates)


#: Marks a right-to-left locale's number formats carry (RLM, LRM, ALM), and the isolate that replaces them.
_BIDI_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")
_LEFT_TO_RIGHT_ISOLATE, _POP_ISOLATE = "\u2066", "\u2069"


def left_to_right(text: str) -> str:
    """An amount of a right-to-left locale (`ar_EG`: RLM, "-123.45", its Arabic symbol) set apart, left to right,
    in the report's text, whose every language is left to right (Arabic and Urdu fall back to English).

    Dropped into English as it is, its marks made a viewer draw the minus after the digits ("123,457- ₫") and
    turn the brackets of "(-200%)" around it: a drop could read as a gain. Other amounts are returned unchanged.
    """
    if not any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):  # RLM and ALM among them
        return text
    return f"{_LEFT_TO_RIGHT_ISOLATE}{text.translate(_BIDI_MARKS)}{_POP_ISOLATE}"


def major_units(minor: int, exponent: int) -> Decimal:
    """Integer minor units as an exact Decimal of major units (12550, 2 -> 125.50)."""
    return Decimal(minor).scaleb(-exponent)


def money_text(minor: int, currency: str, exponent: int, locale: Locale) -> str:
    """Babel's currency format, with the currency's ISO 4217 digits, so that nothing is ever rounded away.

    Whole amounts of currencies paid in whole units (TZS, PKR) drop the `.00`: CLDR gives them two digits but no
    cash digits, and `TSh 12,500` is how Tanzanians write a price, while an amount with cents still shows them
    (`TSh 12,500.50`). Where CLDR's digits differ from ISO's (IQD has 3 minor digits, CLDR says 0), the amount
    keeps ISO's: kanda stores ISO minor units, and CLDR's would print 1,216.449 dinars as `IQD1,216`.
    """
    amount = major_units(minor, exponent)
    if exponent and minor % 10**exponent == 0 and _cash_digits(currency) == 0:
        digits = 0
    elif get_currency_precision(currency) != exponent:
        digits = exponent
    else:
        return format_currency(amount, currency, locale=locale)
    return format_currency(amount, currency, format=_pattern(locale, digits), locale=locale, currency_digits=False)


@cache
def _cash_digits(currency: str) -> int | None:
    fractions = get_global("currency_fractions").get(currency)
    return fractions[2] if fractions else None


@cache
def _pattern(locale: Locale, digits: int) -> NumberPattern:
    """The locale's currency pattern with `digits` fraction digits, parsed once."""
    fraction = "." + "0" * digits if digits else ""
    return parse_pattern(locale.currency_formats["standard"].pattern.replace(".00", fraction))


def _translate(language: str):
    t = translations(language)
    return t.gettext, t.ngettext


@cache
def environment(language: str) -> jinja2.Environment:
    """The Jinja2 environment of one language (templates compiled once, gettext bound to its catalogue)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def chart_cid(report: CreatorReport) -> str:
    """A Content-ID unique to the creator's day, so that two reports in one mailbox never share an image."""
    return f"trend-{report.region}-{report.creator_id}-{report.local_date.isoformat()}@kanda".lower()


def render(report: CreatorReport, *, unsubscribe_url: str | None = None, replies: bool = False) -> Rendered:
    """Subject, plain text and HTML of a report, and the chart the HTML shows by Content-ID.

    `unsubscribe_url` adds the link to stop the reports; `replies` says that a reply reaches a person.
    """
    language = resolve_language(report.language)
    view = report_view(report, language)
    view["unsubscribe_url"] = unsubscribe_url
    view["replies"] = replies
    env = environment(language)
    html = env.get_template("report.html").render(view)
    text = env.get_template("report.txt").render(view)
    png = trend_png(report.trend, report.exponent)
    return Rendered(language, view["subject"], text, html, png, view["chart_cid"])


def report_view(report: CreatorReport, language: str) -> dict:
    """Everything the templates show, already formatted: templates only lay it out."""
    gettext, ngettext = _translate(language)
    f = Formats(
        babel_locale(report.locale, language),
        report.currency,
        report.exponent,
        dates=date_locale(report.locale, language),
    )
    day = report.day
    first = report.trend[0].local_date if report.trend else report.local_date
    best = max(report.trend, key=lambda p: (p.net_minor, p.local_date), default=None)
    total = sum(p.net_minor for p in report.trend)
    changes = [
        _change(
            gettext("The day before"),
            day.net_minor,
            report.previous_day.net_minor if report.previous_day else None,
            f,
            gettext,
        ),
        _change(gettext("7-day average"), day.net_minor, report.seven_day_average_net_minor, f, gettext),
    ]
    return {
        "lang": language,
        "subject": gettext("Your sales on %(date)s: %(net)s net")
        % {"date": f.date(report.local_date), "net": f.money(day.net_minor)},
        "name": report.creator_name,
        "creator_id": report.creator_id,
        "date_long": f.date(report.local_date, "full"),
        "date_medium": f.date(report.local_date),
        "zone": report.zone,
        "currency": report.currency,
        "net": f.money(day.net_minor),
        "negative_net": day.net_minor < 0,
        "usd": _usd_line(report, f, gettext),
        "figures": _figure_rows(day, f, gettext, fees_stated=report.fees_stated, partly=report.fees_partly_stated),
        "fees_note": _fees_note(report, gettext),
        "changes": changes,
        "preheader": _preheader(day, changes[0] if report.previous_day else None, f, ngettext, gettext),
        "top_products": [
            {"title": p.title, "product_id": p.product_id, "orders": f.number(p.orders), "net": f.money(p.net_minor)}
            for p in report.top_products
        ],
        "chart_cid": chart_cid(report),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "axis": _axis(report, f),
        "trend_title": gettext("Net sales per day, %(first)s to %(last)s")
        % {"first": f.date(first), "last": f.date(report.local_date)},
        "trend_total": gettext("%(days)s days: %(total)s net")
        % {"days": f.number(len(report.trend)), "total": f.money(total)},
        "trend_best": (
            gettext("best day %(date)s (%(net)s)") % {"date": f.date(best.local_date), "net": f.money(best.net_minor)}
            if best is not None and best.net_minor > 0
            else None
        ),
        "held": _held(report.held, gettext, ngettext, f),
        "restated": [
            gettext("%(date)s: net is now %(now)s (the report said %(then)s), a change of %(change)s.")
            % {
                "date": f.date(r.local_date),
                "now": f.money(r.net_minor),
                "then": f.money(r.reported_net_minor),
                "change": f.money(r.net_minor - r.reported_net_minor, signed=True),
            }
            for r in sorted(report.restated, key=lambda r: r.local_date)
        ],
        "sales_count": len(report.sales),
        "sales_note": _sales_note(report, f, gettext, ngettext),
    }


def _preheader(day: DayFigures, before: dict | None, f: Formats, ngettext, gettext) -> str:
    """The line inbox lists show after the subject: the day in one sentence, not the first words of the body."""
    text = ngettext("%(net)s net from %(num)s order.", "%(net)s net from %(num)s orders.", day.orders) % {
        "net": f.money(day.net_minor),
        "num": f.number(day.orders),
    }
    if before is not None:
        text += " " + gettext("Against the day before: %(change)s.") % {"change": before["change"]}
    return text


def _axis(report: CreatorReport, f: Formats) -> dict:
    """The chart's axis labels: the amounts of its top and bottom gridlines, and its first, middle and last day."""
    bottom, top = axis_range([p.net_minor for p in report.trend], report.exponent)
    days = [p.local_date for p in report.trend] or [report.local_date]
    return {
        "top": f.money(top),
        "bottom": f.money(bottom),
        "first": f.short_date(days[0]),
        "middle": f.short_date(days[len(days) // 2]) if len(days) > 2 else "",
        "last": f.short_date(days[-1]),
    }


def _sales_note(report: CreatorReport, f: Formats, gettext, ngettext) -> str:
    """What the attachment holds, and that it adds up to the figures above (the file is the figures' detail)."""
    count = len(report.sales)
    values = {
        "file": csv_filename(report),
        "num": f.number(count),
        "net": f.money(report.day.net_minor),
    }
    if count:
        note = ngettext(
            "The attached file %(file)s lists the %(num)s payment that makes up these figures: its net column "
            "adds up to %(net)s.",
            "The attached file %(file)s lists the %(num)s payments that make up these figures (sales, refunds "
            "and reversals): its net column adds up to %(net)s.",
            count,
        )
    else:
        note = gettext("No money moved on this day, so the attached file %(file)s has no lines.")
    note %= values
    if report.other_attempts:
        note += " " + ngettext(
            "%(num)s pending or failed payment attempt is not listed: it moved no money.",
            "%(num)s pending or failed payment attempts are not listed: they moved no money.",
            report.other_attempts,
        ) % {"num": f.number(report.other_attempts)}
    return note


def csv_filename(report: CreatorReport) -> str:
    return f"sales-{report.creator_id}-{report.local_date.isoformat()}.csv"


def _usd_line(report: CreatorReport, f: Formats, gettext) -> str:
    if report.net_usd_minor is None:
        return gettext("No USD exchange rate was known for this day, so there is no USD equivalent.")
    if report.fx_date is None:
        return gettext("About %(usd)s") % {"usd": f.usd(report.net_usd_minor)}
    return gettext("About %(usd)s at the exchange rate of %(date)s") % {
        "usd": f.usd(report.net_usd_minor),
        "date": f.date(report.fx_date),
    }


def _fees_note(report: CreatorReport, gettext) -> str | None:
    """What Net is before, when not every fee of the day was stated (none, or only some)."""
    if report.fees_stated:
        return None
    if report.fees_partly_stated:
        return gettext(
            "Some of your payments came through a provider that does not report its fees to kanda: Fees shows only"
            " the fees that were reported, and Net is before the others."
        )
    return gettext("Your payment provider does not report its fees to kanda, so Net is before its charges.")


def _figure_rows(day: DayFigures, f: Formats, gettext, *, fees_stated: bool, partly: bool) -> list[dict]:
    """The day's money, deductions shown as negative amounts so that the column adds up to the net.

    Fees the rail does not state are "not reported", not 0: a 0 would read as "nothing was charged". On a day
    where only some were stated (`CreatorReport.fees_partly_stated`), the stated ones are the amount, marked as
    partly reported: Net is after them, so "not reported" alone left a column that did not add up to it.
    """
    if fees_stated:
        fees = f.money(-day.fees_minor)
    elif partly:
        fees = gettext("%(fees)s (partly reported)") % {"fees": f.money(-day.fees_minor)}
    else:
        fees = gettext("not reported")
    return [
        {"label": gettext("Orders"), "value": f.number(day.orders), "strong": False},
        {"label": gettext("Gross sales"), "value": f.money(day.gross_minor), "strong": False},
        {"label": gettext("Refunds"), "value": f.money(-day.refunds_minor), "strong": False},
        {"label": gettext("Reversals and chargebacks"), "value": f.money(-day.reversals_minor), "strong": False},
        {"label": gettext("Fees"), "value": fees, "strong": False},
        {"label": gettext("Net"), "value": f.money(day.net_minor), "strong": True},
    ]


def _change(label: str, net: int, base: int | None, f: Formats, gettext) -> dict:
    """Net against a baseline: absolute always, percent only against a positive base (a % of zero means nothing)."""
    if base is None:
        return {"label": label, "base": gettext("no figures"), "change": gettext("not available"), "direction": "none"}
    delta = net - base
    if delta == 0:
        change = gettext("no change")
    elif base > 0:
        change = f"{f.money(delta, signed=True)} ({f.percent(Decimal(delta) / Decimal(base))})"
    else:
        change = f.money(delta, signed=True)
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return {"label": label, "base": f.money(base), "change": change, "direction": direction}


def _held(held: HeldRecords, gettext, ngettext, f: Formats) -> dict | None:
    if held.count <= 0:
        return None
    summary = ngettext(
        "%(num)s record of this day is held for review, so its money is not in these figures yet.",
        "%(num)s records of this day are held for review, so their money is not in these figures yet.",
        held.count,
    ) % {"num": f.number(held.count)}
    reasons = [
        {"count": f.number(rows), "why": gettext(HELD_REASONS.get(rule, OTHER_REASON))}
        for rule, rows in sorted(held.reasons.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {
        "summary": summary,
        "reasons": reasons,
        "after": gettext(
            "Once they are corrected, or the code is registered, their money is added to that day and shows in the "
            "30-day trend. You do not need to do anything unless we contact you."
        ),
    }
