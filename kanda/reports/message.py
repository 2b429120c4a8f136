"""One creator's report as an email: plain text and HTML alternatives, the chart inline, the sales lines as CSV.

Structure, the one mail clients show best (the HTML's image travels with it, the CSV is a real attachment):

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain
    │   └── multipart/related
    │       ├── text/html            (<img src="cid:...">)
    │       └── image/png            (the 30-day chart, Content-ID)
    └── text/csv                     (attachment: the lines the figures are made of)

The Message-ID is derived from region, creator and day and from what the report says, so the same report sent twice
(a crash between the send and its record) is recognisably one message that a mail server deduplicating on it drops,
while a report whose figures changed since (a resend after a late refund) is a new message that is delivered; the
idempotency of delivery itself is the sender's record.

The CSV's column names are stable English identifiers whatever the report's language: it is meant for
spreadsheets and scripts, which should not break when a creator switches language. Amounts are exact decimals of
major units (`12500.00`), with the currency in its own column.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email.policy
import hashlib
import io
import quopri
import re
import secrets
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime

from kanda.csv_safety import neutralised as _text  # text cells a spreadsheet would run as formulas
from kanda.reports.mailing import UnsafeRecipient, mail_address, recipient_problem
from kanda.reports.model import CreatorReport, SaleLine
from kanda.reports.render import csv_filename, major_units, render

CSV_COLUMNS = (
    "local_time",
    "transaction_id",
    "product_id",
    "product_title",
    "event_type",
    "status",
    "channel",
    "currency",
    "amount",
    "fee",
    "net",
    "buyer",
)
#: What looks like a buyer's email or phone number. The store hands the renderer masked references only; this is
#: the last fence before a creator's inbox, so a raw contact that slipped through is masked, never sent.
_CONTACT = re.compile(r"@|^\+?[\d\s().-]{7,}$")
_MASKED = "masked"


class _OneLine(UnstructuredHeader):
    """A header written on one line whatever its length (RFC 5322 allows 998 characters): `List-Unsubscribe` is one
    long URL, which folding at 78 turns into RFC 2047 encoded words that header may not hold, and mail clients then
    saw no usable one-click link."""

    def fold(self, *, policy: email.policy.Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, with each header's class made once instead of once per header set, and
    `List-Unsubscribe` on one line (`_OneLine`).

    `HeaderRegistry.__getitem__` builds a new class with `type()` on every call, which was the largest single cost
    of building a message (some 30 headers each); the classes and the parsing are the standard ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.map_to_type("list-unsubscribe", _OneLine)
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


#: The default email policy (what `EmailMessage()` uses), with the cached header classes. Its 78-character lines
#: keep every RFC 2047 encoded word within the 75 characters the RFC allows (a Vietnamese or Amharic subject, a name
#: in `To`): at 998 for all headers, such a subject went out as one encoded word of about 110, which strict mail
#: clients and filters refuse. Only `List-Unsubscribe` is kept on one line.
POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


def message_id(report: CreatorReport, *contents: str) -> str:
    """`<report-<region>-<creator>-<day>.<digest of contents>@kanda>`: the contents are what the creator reads.

    Gmail and other providers silently drop a message whose Message-ID the mailbox already holds. With one id per
    creator and day, a report resent with corrected figures was dropped as a double of the first, while the
    delivery record took its net as told, so the next report did not tell the correction either.
    """
    digest = hashlib.sha256("\0".join(contents).encode("utf-8")).hexdigest()[:12]
    return f"<report-{report.region}-{report.creator_id}-{report.local_date.isoformat()}.{digest}@kanda>"


def build_message(
    report: CreatorReport,
    sender: str,
    *,
    now: dt.datetime | None = None,
    reply_to: str | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """The complete message of one report, ready for `smtplib.SMTP.send_message` or to be written as `.eml`.

    A creator whose name or address could forge headers is refused (`UnsafeRecipient`), never "cleaned": the
    registry is wrong and someone has to look at it.
    """
    if not report.email:
        raise ValueError(f"creator {report.creator_id} has no email address in the registry")
    problem = recipient_problem(report)
    if problem:
        raise UnsafeRecipient(f"creator {report.creator_id}: {problem}")
    rendered = render(report, unsubscribe_url=unsubscribe_url, replies=reply_to is not None)
    text = _part('text/plain; charset="utf-8"', _quoted_printable(rendered.text), "quoted-printable")
    html = _part('text/html; charset="utf-8"', _quoted_printable(rendered.html), "quoted-printable")
    chart = _part(
        "image/png",
        base64.encodebytes(rendered.chart_png).decode("ascii"),
        "base64",
        {"Content-ID": f"<{rendered.chart_cid}>", "Content-Disposition": 'inline; filename="trend.png"'},
    )
    lines = sales_csv(report)
    sales = _part(
        'text/csv; charset="utf-8"',
        base64.encodebytes(lines.encode("utf-8")).decode("ascii"),
        "base64",
        {"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )
    msg = _multipart("mixed", [_multipart("alternative", [text, _multipart("related", [html, chart])]), sales])
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = Address(display_name=report.creator_name, addr_spec=mail_address(report.email))
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id(report, rendered.subject, rendered.text, lines)
    msg["Content-Language"] = rendered.language
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a daily report
    if reply_to:
        msg["Reply-To"] = reply_to
    if unsubscribe_url:
        # RFC 2369 and RFC 8058: the mail client's own "unsubscribe" button POSTs to the URL, no page needed
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["MIME-Version"] = "1.0"
    return msg


# The tree is assembled part by part with their final headers. `set_content`/`add_related`/`add_attachment` give
# the same structure but re-parse and move headers at every step, which made building a message ~2.5x slower.


def _part(content_type: str, payload: str, encoding: str, headers: dict[str, str] | None = None) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = content_type
    part["Content-Transfer-Encoding"] = encoding
    for name, value in (headers or {}).items():
        part[name] = value
    part.set_payload(payload)
    return part


def _multipart(subtype: str, parts: list[EmailMessage]) -> EmailMessage:
    """A container with its boundary chosen now (the generator would otherwise scan the parts and set one).

    A boundary starting with "=_" can occur in neither quoted-printable (a literal "=" is written "=3D") nor base64
    text, the only encodings used here.
    """
    container = EmailMessage(policy=POLICY)
    container["Content-Type"] = f'multipart/{subtype}; boundary="=_kanda_{secrets.token_hex(12)}"'
    container.set_payload(parts)
    return container


def _quoted_printable(text: str) -> str:
    """UTF-8 text as quoted-printable: readable in an .eml file, 7-bit safe on any relay."""
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def sales_csv(report: CreatorReport) -> str:
    """The money movements the report's figures are made of: one row per event, buyers masked, amounts exact.

    No totals row: a script or a spreadsheet's SUM over `net` gives the report's net, and a totals row would
    count it twice. Sales' `amount` adds up to gross, refunds' and reversals' to what went back, `fee` to fees.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(line, report.currency, report.exponent) for line in report.sales)
    return out.getvalue()


def _csv_row(line: SaleLine, currency: str, exponent: int) -> tuple:
    return (
        line.occurred_at_local.isoformat(timespec="seconds"),
        _text(line.transaction_id),
        _text(line.product_id),
        _text(line.product_title),
        line.event_type,
        line.status,
        _text(line.channel or ""),
        currency,
        str(major_units(line.amount_minor, exponent)),
        str(major_units(line.fee_minor, exponent)),
        str(major_units(line.amount_minor - line.fee_minor, exponent)),
        masked_buyer(line.buyer),
    )


def masked_buyer(buyer: str | None) -> str:
    """The buyer reference as given, unless it looks like an email or a phone number."""
    if not buyer:
        return ""
    return _MASKED if _CONTACT.search(buyer.strip()) else _text(buyer)
