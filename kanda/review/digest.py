"""The stewards' daily digest: one e-mail per steward with what arrived in their regions' queues, and a link.

A steward should not have to open the queue to learn that nothing happened, nor miss the morning Kenya's file went
bad. Each active steward account with the digest on (`kanda users digest NAME --off` opts out) and an address gets
the records quarantined in their regions since their previous digest (the last 24 hours the first time), per region
and per rule, with the region's open total and a link to that region's new records.

Delivery is the creators' reports' (`kanda.mail`: SMTP when configured, else `.eml` files in `outbox/digests/`).
A digest is recorded in `review_digests` (account, UTC day) after the relay accepted it, so a rerun on the same day
sends nothing twice unless `resend` is asked for; a steward with nothing new gets no mail at all.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import urlencode

from sqlalchemy import Column, Date, Integer, String, Table, func, select

from kanda import mail
from kanda.review import db
from kanda.review.accounts import Account, list_users
from kanda.review.service import OPEN
from kanda.schema_setup import settle_schema
from kanda.settings import Settings
from regions import all_regions

digests = Table(
    "review_digests",
    db.metadata,
    Column("account", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("recipient", String(320), nullable=False),
    Column("since", db.UtcDateTime, nullable=False),
    Column("until", db.UtcDateTime, nullable=False),
    Column("new_items", Integer, nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("location", String(1024), nullable=False),
    Column("sends", Integer, nullable=False),
    Column("sent_at", db.UtcDateTime, nullable=False),
)

#: Without a previous digest, "new" means the last day.
FIRST_WINDOW = dt.timedelta(days=1)


@dataclass
class RegionCounts:
    region: str
    new: int
    open: int
    by_rule: list[tuple[str, int]]


@dataclass
class Digest:
    account: str
    recipient: str
    since: dt.datetime
    until: dt.datetime
    regions: list[RegionCounts]

    @property
    def new_items(self) -> int:
        return sum(r.new for r in self.regions)


@dataclass
class DigestRun:
    sent: list[Digest] = field(default_factory=list)
    #: (account, why): opted out, no address, nothing new, already sent today
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "sent": [{"account": d.account, "recipient": d.recipient, "new_items": d.new_items} for d in self.sent],
            "skipped": [{"account": a, "reason": r} for a, r in self.skipped],
            "failed": [{"account": a, "reason": r} for a, r in self.failed],
        }


def _engine(settings: Settings):
    engine = db.engine_for(settings.app_db_url)
    settle_schema(engine, lambda con: db.metadata.create_all(con, tables=[digests]))
    return engine


def collect(settings: Settings, account: Account, since: dt.datetime, until: dt.datetime) -> list[RegionCounts]:
    """New records per region of the account (and per rule), with each region's open total: three grouped
    queries, not one per region."""
    c = db.items.c
    regions = sorted(account.regions) if account.regions is not None else list(all_regions())
    window = (c.region.in_(regions), c.enqueued_at > since, c.enqueued_at <= until)
    with _engine(settings).connect() as con:
        new = dict(con.execute(select(c.region, func.count()).where(*window).group_by(c.region)).all())
        open_ = dict(
            con.execute(
                select(c.region, func.count())
                .where(c.region.in_(regions), c.status.in_(sorted(OPEN)))
                .group_by(c.region)
            ).all()
        )
        rules: dict[str, list[tuple[str, int]]] = {}
        rule_rows = con.execute(
            select(c.region, db.item_rules.c.rule, func.count(func.distinct(c.id)))
            .select_from(db.items.join(db.item_rules, db.item_rules.c.item_id == c.id))
            .where(*window)
            .group_by(c.region, db.item_rules.c.rule)
        ).all()
    for region, rule, n in rule_rows:
        rules.setdefault(region, []).append((rule, n))
    return [
        RegionCounts(r, new.get(r, 0), open_.get(r, 0), sorted(rules.get(r, []), key=lambda kv: (-kv[1], kv[0])))
        for r in regions
        if new.get(r) or open_.get(r)
    ]


def message(digest: Digest, base_url: str, sender: str) -> EmailMessage:
    """The digest as plain text and HTML, each region linking to its new records in the queue."""
    base = base_url.rstrip("/")
    msg = EmailMessage()
    regions = [r for r in digest.regions if r.new]
    msg["Subject"] = (
        f"kanda review: {digest.new_items} new quarantined record{'s' if digest.new_items != 1 else ''}"
        + (f" in {', '.join(r.region for r in regions)}" if regions else "")
    )
    msg["From"] = sender
    msg["To"] = digest.recipient
    msg["Date"] = email.utils.format_datetime(digest.until)
    msg["Message-ID"] = email.utils.make_msgid(domain="kanda.invalid")
    window = f"{digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC"
    lines = [f"Hello {digest.account},", "", f"New in your review queues ({window}):", ""]
    html = [f"<p>Hello {_h(digest.account)},</p><p>New in your review queues ({window}):</p><ul>"]
    for r in digest.regions:
        link = f"{base}/queue?{urlencode({'region': r.region, 'status': 'new'})}"
        top = ", ".join(f"{rule} {n}" for rule, n in r.by_rule[:5])
        lines.append(f"  {r.region}: {r.new} new, {r.open} open{f' ({top})' if top else ''}")
        lines.append(f"      {link}")
        html.append(
            f'<li><a href="{_h(link)}">{r.region}</a>: <strong>{r.new} new</strong>, {r.open} open'
            + (f" <small>({_h(top)})</small>" if top else "")
            + "</li>"
        )
    queue = f"{base}/queue"
    lines += ["", f"The whole queue: {queue}", "", f"Stop these e-mails: kanda users digest {digest.account} --off"]
    html.append(
        f'</ul><p><a href="{_h(queue)}">Open the queue</a></p>'
        f"<p><small>Stop these e-mails: <code>kanda users digest {_h(digest.account)} --off</code></small></p>"
    )
    msg.set_content("\n".join(lines) + "\n")
    msg.add_alternative("".join(html), subtype="html")
    return msg


def _h(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def send_digests(
    settings: Settings,
    *,
    base_url: str,
    now: dt.datetime | None = None,
    resend: bool = False,
    only: list[str] | None = None,
) -> DigestRun:
    """Send today's digest to every steward who wants one and has something new; say why anyone was skipped."""
    now = now or db.now()
    today = now.astimezone(dt.UTC).date()
    run = DigestRun()
    engine = _engine(settings)
    sender = settings.smtp.sender if settings.smtp else "kanda review <review@kanda.invalid>"
    with engine.connect() as con:
        last = dict(con.execute(select(digests.c.account, func.max(digests.c.until)).group_by(digests.c.account)).all())
        sent_today = {
            a: n for a, n in con.execute(select(digests.c.account, digests.c.sends).where(digests.c.day == today))
        }
    accounts = [a for a in list_users(settings) if a.role == "steward" and a.active]
    if only:
        wanted = {n.strip().lower() for n in only}
        accounts = [a for a in accounts if a.name in wanted]
    with mail.transport_for(settings, "digests") as transport:
        for account in accounts:
            if not account.digest:
                run.skipped.append((account.name, "opted out"))
                continue
            if account.address is None:
                run.skipped.append((account.name, "no e-mail address (kanda users digest NAME --email ADDRESS)"))
                continue
            if account.name in sent_today and not resend:
                run.skipped.append((account.name, "already sent today"))
                continue
            since = last.get(account.name) or now - FIRST_WINDOW
            digest = Digest(account.name, account.address, since, now, collect(settings, account, since, now))
            if not digest.new_items:
                run.skipped.append((account.name, "nothing new"))
                continue
            msg = message(digest, base_url, sender)
            try:
                location = transport.send(
                    mail.message_bytes(msg), recipient=digest.recipient, name=f"{today.isoformat()}/{account.name}"
                )
            except mail.RelayUnavailable as exc:
                run.failed.append((account.name, str(exc)))
                break
            except mail.DeliveryFailed as exc:
                run.failed.append((account.name, str(exc)))
                continue
            _record(engine, account.name, today, digest, str(msg["Message-ID"]), location, now)
            run.sent.append(digest)
    return run


def _record(engine, account: str, day: dt.date, digest: Digest, message_id: str, location: str, now) -> None:
    values = {
        "recipient": digest.recipient,
        "since": digest.since,
        "until": digest.until,
        "new_items": digest.new_items,
        "message_id": message_id,
        "location": location,
        "sent_at": now,
    }
    with engine.begin() as con:
        sends = con.execute(
            select(digests.c.sends).where(digests.c.account == account, digests.c.day == day)
        ).scalar_one_or_none()
        if sends is None:
            con.execute(digests.insert().values(account=account, day=day, sends=1, **values))
        else:
            con.execute(
                digests.update()
                .where(digests.c.account == account, digests.c.day == day)
                .values(sends=sends + 1, **values)
            )
