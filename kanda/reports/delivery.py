"""Send creators' reports once: SMTP when configured, `.eml` files in the outbox otherwise, and a record of each.

The record (`report_deliveries` in the application database, keyed by region, creator and local day) is what makes
a rerun harmless: a report already delivered is skipped unless a resend is asked for. It is written only after the
server accepted the message (or the file is in place), so a crash between the two can at worst send one message
twice, never lose one. Transient SMTP failures (4xx replies, dropped connections, timeouts) are retried with
exponential backoff on a fresh connection; permanent ones (5xx) fail that message and the run carries on.

The same database holds who unsubscribed (`report_unsubscribes`): delivery never sends to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    select,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Update

from kanda import mail
from kanda.mail import (  # noqa: F401 - re-exported: the reports' sending is the shared one
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_SECONDS,
    DeliveryFailed,
    OutboxTransport,
    RelayUnavailable,
    SmtpTransport,
    message_bytes,
    write_eml,
)
from kanda.schema_setup import settle_schema
from kanda.settings import Settings

metadata = MetaData()

report_deliveries = Table(
    "report_deliveries",
    metadata,
    Column("region", String(8), primary_key=True),
    Column("creator_id", String(64), primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("recipient", String(320), nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("transport", String(16), nullable=False),  # smtp | outbox
    Column("location", String(1024), nullable=False),  # the relay's host:port, or the .eml path
    # the net the creator was last told for the day (by its report, or a later one's restatement), so that a change
    # after that is told, once
    Column("net_minor", BigInteger),
    Column("sends", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

#: Creators who asked for no more reports (the link in every report, or the mail client's one-click button,
#: RFC 8058). One row per creator: the reports stop for the creator, whatever address the registry holds later.
report_unsubscribes = Table(
    "report_unsubscribes",
    metadata,
    Column("creator_id", String(64), primary_key=True),
    Column("region", String(8), nullable=False),
    Column("via", String(16), nullable=False),  # one-click (the mail client) | page (the link's confirmation)
    Column("unsubscribed_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Delivery:
    region: str
    creator_id: str
    local_date: dt.date
    recipient: str
    message_id: str
    transport: str
    location: str
    net_minor: int | None
    #: (day, net) of each earlier day this message told a new net for: from now on what the creator was told
    told: tuple[tuple[dt.date, int], ...] = ()


def _one_delivery(region: str, creator_id: str, local_date: dt.date) -> Update:
    """An UPDATE of the record of one creator's report of one day."""
    table = report_deliveries
    return table.update().where(
        and_(table.c.region == region, table.c.creator_id == creator_id, table.c.local_date == local_date)
    )


class DeliveryLog:
    """The idempotency record, in the application database (SQLite under KANDA_HOME by default)."""

    def __init__(self, settings: Settings) -> None:
        self.engine: Engine = create_engine(settings.app_db_url)
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database:
            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        # several report processes (one per region) may create the table first at once: settled, not raced
        settle_schema(self.engine, metadata.create_all)

    def sent(self, region: str, local_date: dt.date) -> set[str]:
        """Creators whose report of this region and day was delivered already."""
        query = select(report_deliveries.c.creator_id).where(
            report_deliveries.c.region == region, report_deliveries.c.local_date == local_date
        )
        with self.engine.connect() as con:
            return {row[0] for row in con.execute(query)}

    def stated_net(self, region: str, dates: Iterable[dt.date]) -> dict[tuple[str, dt.date], int]:
        """The net each delivered report of these days stated: (creator, day) -> net in minor units."""
        query = select(report_deliveries.c.creator_id, report_deliveries.c.local_date, report_deliveries.c.net_minor)
        query = query.where(report_deliveries.c.region == region, report_deliveries.c.local_date.in_(list(dates)))
        with self.engine.connect() as con:
            return {(c, d): n for c, d, n in con.execute(query) if n is not None}

    def record(self, deliveries: list[Delivery]) -> None:
        """Record delivered messages in one transaction; a resend updates the row and counts the send."""
        if not deliveries:
            return
        now = dt.datetime.now(dt.UTC)
        table = report_deliveries
        keys = [(d.region, d.creator_id, d.local_date) for d in deliveries]
        with self.engine.begin() as con:
            existing = {
                (r, c, d): n
                for r, c, d, n in con.execute(
                    select(table.c.region, table.c.creator_id, table.c.local_date, table.c.sends).where(
                        tuple_(table.c.region, table.c.creator_id, table.c.local_date).in_(keys)
                    )
                )
            }
            fresh = []
            for d in deliveries:
                values = {
                    "recipient": d.recipient,
                    "message_id": d.message_id,
                    "transport": d.transport,
                    "location": d.location,
                    "net_minor": d.net_minor,
                    "sent_at": now,
                }
                key = (d.region, d.creator_id, d.local_date)
                if key in existing:
                    sent_again = _one_delivery(d.region, d.creator_id, d.local_date)
                    con.execute(sent_again.values(sends=existing[key] + 1, **values))
                else:
                    fresh.append({"region": d.region, "creator_id": d.creator_id, "local_date": d.local_date,
                                  "sends": 1, **values})  # fmt: skip
            if fresh:
                con.execute(table.insert(), fresh)
            # A restatement is told once: the next report compares with the net this one gave, not the first one
            for d in deliveries:
                for day, net in d.told:
                    con.execute(_one_delivery(d.region, d.creator_id, day).values(net_minor=net))

    def unsubscribed(self, region: str) -> set[str]:
        """Creators of the region who asked for no more reports: delivery skips them."""
        query = select(report_unsubscribes.c.creator_id).where(report_unsubscribes.c.region == region)
        with self.engine.connect() as con:
            return {row[0] for row in con.execute(query)}

    def unsubscribe(self, region: str, creator_id: str, via: str) -> bool:
        """Record the request; False when it was recorded before (a second click changes nothing)."""
        row = {"creator_id": creator_id, "region": region, "via": via, "unsubscribed_at": dt.datetime.now(dt.UTC)}
        try:
            with self.engine.begin() as con:
                con.execute(report_unsubscribes.insert().values(**row))
        except IntegrityError:  # the primary key: asked before (or by a concurrent click)
            return False
        return True

    def resubscribe(self, creator_id: str) -> bool:
        """Undo an unsubscribe (a click by mistake); False when the creator was not unsubscribed."""
        with self.engine.begin() as con:
            done = con.execute(report_unsubscribes.delete().where(report_unsubscribes.c.creator_id == creator_id))
        return bool(done.rowcount)

    def close(self) -> None:
        self.engine.dispose()


def transport_for(settings: Settings) -> OutboxTransport | SmtpTransport:
    """SMTP when `KANDA_SMTP_HOST` is set, the outbox (`outbox/<region>/<date>/<creator>.eml`) otherwise."""
    return mail.transport_for(settings, "")


def report_name(region: str, local_date: dt.date, creator_id: str) -> str:
    """Where a creator's report of a day goes in the outbox (or previews), without the `.eml`."""
    return f"{region}/{local_date.isoformat()}/{creator_id}"
