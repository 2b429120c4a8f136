"""Sending e-mail: SMTP when configured, `.eml` files in the outbox otherwise. Shared by every audience that mails
(creators' daily reports, stewards' digests), which may not import each other, so it lives at the lowest layer.

The SMTP transport reuses one connection for a run, retries transient failures (4xx replies, dropped connections,
timeouts) with exponential backoff on a fresh connection, and fails a message for good on a permanent refusal
(5xx), so a run can carry on with the next message. The outbox writes each file whole or not at all.

Retries are declared with tenacity. The report-specific record of what was sent stays in
`kanda.reports.delivery`, the digests' in `kanda.review.digest`.
"""

from __future__ import annotations

import email.utils
import os
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from kanda.settings import Settings, SmtpSettings


class DeliveryFailed(RuntimeError):
    """A message could not be delivered (refused for good: a bad recipient, a message the relay will not take)."""


class RelayUnavailable(DeliveryFailed):
    """The relay kept failing (unreachable, or "try again later") beyond the retries: stop, do not try each message."""


class OutboxTransport:
    """No SMTP configured (the demo): one `.eml` file per message under a folder of the outbox."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> OutboxTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def location(self) -> str:
        return str(self.folder)

    def send(self, data: bytes, *, recipient: str, name: str) -> str:
        """Write the message to `<folder>/<name>.eml` (`name` may hold sub-folders); returns the path."""
        path = self.folder / f"{name}.eml"
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
    # what a killed run left of this message: named by its process, so nothing else would ever replace it
    for stale in path.parent.glob(f".{path.name}.*.part"):
        pid = stale.name.removeprefix(f".{path.name}.").removesuffix(".part")
        if pid.isdigit() and not _running(int(pid)):
            stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


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

    def send(self, data: bytes, *, recipient: str, name: str = "") -> str:
        """Send to `recipient` (`name` is the outbox's file name, unused here); returns the relay's host:port."""
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
        except UnicodeEncodeError:  # an address or message SMTP without SMTPUTF8 cannot carry: this message only
            raise DeliveryFailed(
                f"the message to {recipient!r} cannot be sent as ASCII, which the relay requires (check the recipient"
                " and KANDA_SMTP_FROM)"
            ) from None
        except OSError as exc:  # smtplib's errors are OSErrors too
            if isinstance(exc, smtplib.SMTPRecipientsRefused):
                # this mailbox's answer, for good (5xx) or still "later" after the retries (greylisting, a full
                # mailbox): the relay took the session, so the other creators' reports still go
                still = f" (still, after {self.attempts} attempts)" if _transient(exc) else ""
                raise DeliveryFailed(f"recipient {recipient} refused{still}: {_describe(exc)}") from None
            if not _transient(exc):
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


def transport_for(settings: Settings, outbox_folder: str) -> OutboxTransport | SmtpTransport:
    """SMTP when `KANDA_SMTP_HOST` is set, else the outbox's `outbox_folder` (e.g. "digests")."""
    if settings.smtp is None:
        return OutboxTransport(settings.outbox_dir / outbox_folder)
    return SmtpTransport(settings.smtp)
