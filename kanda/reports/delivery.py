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
import email.utils
import os
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
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
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from kanda.settings import Settings, SmtpSettings

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
    Column("net_minor", BigInteger),  # the net the report stated, so that a later restatement can be told
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


class DeliveryFailed(RuntimeError):
    """A message could not be delivered (refused for good: a bad recipient, a message the relay will not take)."""


class RelayUnavailable(DeliveryFailed):
    """The relay kept failing (unreachable, or "try again later") beyond the retries: stop, do not try each message."""


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


class DeliveryLog:
    """The idempotency record, in the application database (SQLite under KANDA_HOME by default)."""

    def __init__(self, settings: Settings) -> None:
        self.engine: Engine = create_engine(settings.app_db_url)
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database:
            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        metadata.create_all(self.engine)

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
                    con.execute(
                        table.update()
                        .where(
                            and_(
                                table.c.region == d.region,
                                table.c.creator_id == d.creator_id,
                                table.c.local_date == d.local_date,
                            )
                        )
                        .values(sends=existing[key] + 1, **values)
                    )
                else:
                    fresh.append({"region": d.region, "creator_id": d.creator_id, "local_date": d.local_date,
                                  "sends": 1, **values})  # fmt: skip
            if fresh:
                con.execute(table.insert(), fresh)

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


class OutboxTransport:
    """No SMTP configured (the demo): one `.eml` file per creator and day under `outbox/<region>/<date>/`."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> OutboxTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def path(self, region: str, local_date: dt.date, creator_id: str) -> Path:
        return self.folder / region / local_date.isoformat() / f"{creator_id}.eml"

    def send(self, data: bytes, *, region: str, local_date: dt.date, creator_id: str, recipient: str) -> str:
        path = self.path(region, local_date, creator_id)
        write_eml(path, data)
        return str(path)


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it travels (RFC 5322 line endings), rendered once for SMTP and for `.eml` files alike."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def write_eml(path: Path, data: bytes) -> None:
    """Write the message whole or not at all (a reader of the outbox never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(path)


#: Tries per message, and the first pause between them (doubled after each failure: 1 s, 2 s, 4 s).
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_SECONDS = 1.0


class SmtpTransport:
    """One SMTP connection reused for a whole run, reopened after a failure; STARTTLS and login as configured.

    The server's certificate is verified against the system's trust store (`SSL_CERT_FILE` names another one).
    """

    name = "smtp"

    def __init__(
        self, config: SmtpSettings, *, attempts: int | None = None, backoff_seconds: float | None = None
    ) -> None:
        self.config = config
        self.attempts = attempts or RETRY_ATTEMPTS
        self.backoff_seconds = RETRY_BACKOFF_SECONDS if backoff_seconds is None else backoff_seconds
        self._smtp: smtplib.SMTP | None = None
        self.retries = 0

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close(polite=True)

    @property
    def location(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout_seconds)
            try:
                smtp.ehlo()
                if self.config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.config.username:
                    smtp.login(self.config.username, self.config.password or "")
            except BaseException:
                _quietly_close(smtp, polite=False)
                raise
            self._smtp = smtp
        return self._smtp

    def _close(self, *, polite: bool) -> None:
        if self._smtp is not None:
            _quietly_close(self._smtp, polite=polite)
            self._smtp = None

    def send(self, data: bytes, *, region: str, local_date: dt.date, creator_id: str, recipient: str) -> str:
        sender = email.utils.parseaddr(self.config.sender)[1]
        retrying = Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds),  # 1 s, 2 s, 4 s with the defaults
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            refused = retrying(self._send_once, sender, recipient, data)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"the SMTP server refused the login: {_reply(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(f"the SMTP server does not support what the settings ask: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"the SMTP server's certificate is not trusted: {exc}") from None
        except OSError as exc:  # smtplib's errors are OSErrors too
            if not _transient(exc):
                if isinstance(exc, smtplib.SMTPRecipientsRefused):
                    raise DeliveryFailed(f"recipient {recipient} refused: {_describe(exc)}") from None
                raise DeliveryFailed(f"the SMTP server refused the message: {_describe(exc)}") from None
            raise RelayUnavailable(f"the relay still failed after {self.attempts} attempts: {_describe(exc)}") from None
        if refused:
            raise DeliveryFailed(f"recipient {recipient} refused: {refused}")
        return self.location

    def _send_once(self, sender: str, recipient: str, data: bytes) -> dict:
        try:
            return self._connect().sendmail(sender, [recipient], data)
        except OSError:
            self._close(polite=False)  # a fresh session for the next try (a 421 has closed this one anyway)
            raise

    def _count_retry(self, _state: RetryCallState) -> None:
        self.retries += 1


def _transient(exc: BaseException) -> bool:
    """Worth another try on a fresh connection: "try again later" (4xx) and network failures (unreachable,
    dropped, timed out); never a refused login, a missing feature, an untrusted certificate or a 5xx refusal."""
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}"


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {msg.decode(errors='replace')}" for code, msg in exc.recipients.values())
    return f"{type(exc).__name__}: {exc}"


def _quietly_close(smtp: smtplib.SMTP, *, polite: bool) -> None:
    try:
        if polite:
            smtp.quit()
        else:
            smtp.close()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def transport_for(settings: Settings) -> OutboxTransport | SmtpTransport:
    """SMTP when `KANDA_SMTP_HOST` is set, the outbox folder otherwise."""
    if settings.smtp is None:
        return OutboxTransport(settings.outbox_dir)
    return SmtpTransport(settings.smtp)
