"""What every report message carries besides the report: who it is from, where replies go, how to stop it.

- `Reply-To`: a person-facing address (`KANDA_REPORTS_REPLY_TO`), because creators answer a figure they doubt by
  replying, and the sending address is a robot's. Without the setting it is `support@` the sender's domain.
- Unsubscribe: every message links to `<KANDA_PUBLIC_URL>/reports/unsubscribe/<token>` and names the same URL in
  `List-Unsubscribe` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), so a mail client's
  "unsubscribe" button works without opening a page. The token is the creator id (and their language, for the
  page) signed with the installation's secret (`settings.secret_key`): nobody can unsubscribe someone else by
  guessing an id, and no database lookup is needed to build 10,000 links. Tokens do not expire: an unsubscribe
  link in a mail from last year must still work. `kanda serve` answers them (`kanda.reports.web`).
- Recipient safety: a name or address with a line break (or any control character) could add headers to the
  message (a `Bcc:` to a stranger). Such a creator is refused by name, before rendering, and the run goes on with
  the others; `kanda reports` then exits 1 naming them, so the registry gets fixed.

`Mailing` is a small frozen value so that it travels to the render worker processes with the reports.
"""

from __future__ import annotations

import email.utils
import os
import re
import unicodedata
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address

from itsdangerous import BadData, URLSafeSerializer

from kanda.reports.model import CreatorReport
from kanda.settings import BadSetting, Settings, SmtpSettings

#: Where `kanda serve` is reachable for creators (the links in the reports). Use https:// in production: mail
#: providers honour one-click unsubscribe only over HTTPS.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
UNSUBSCRIBE_PATH = "/reports/unsubscribe/"
_TOKEN_SALT = "kanda.reports.unsubscribe"
_SIMPLE_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UnsafeRecipient(ValueError):
    """The registry's name or address of a creator cannot be put in a header safely (or at all)."""


@dataclass(frozen=True)
class Mailing:
    sender: str
    reply_to: str | None
    public_url: str | None  # None: no unsubscribe link (messages built outside a delivery run, e.g. in tests)
    secret: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailing:
        sender = settings.smtp.sender if settings.smtp else SmtpSettings.sender
        reply_to = os.environ.get("KANDA_REPORTS_REPLY_TO") or default_reply_to(sender)
        public_url = (os.environ.get("KANDA_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
        if any(c.isspace() for c in public_url) or not public_url.startswith(("http://", "https://")):
            raise BadSetting(f"KANDA_PUBLIC_URL must be an http(s) URL without spaces, not {public_url!r}")
        return cls(sender, reply_to, public_url, settings.secret_key)

    def unsubscribe_url(self, report: CreatorReport) -> str | None:
        if self.public_url is None:
            return None
        return self.public_url + UNSUBSCRIBE_PATH + unsubscribe_token(self.secret, report.creator_id, report.language)


def default_reply_to(sender: str) -> str | None:
    """`kanda support <support@example.org>` for a sender at example.org; None when the sender has no domain."""
    address = email.utils.parseaddr(sender)[1]
    if "@" not in address:
        return None
    return f"kanda support <support@{address.rsplit('@', 1)[1]}>"


def unsubscribe_token(secret: str, creator_id: str, language: str) -> str:
    return URLSafeSerializer(secret, salt=_TOKEN_SALT).dumps([creator_id, language])


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    """(creator id, language) of a token this installation signed; None for anything else."""
    try:
        creator_id, language = URLSafeSerializer(secret, salt=_TOKEN_SALT).loads(token)
    except (BadData, ValueError, TypeError):
        return None
    if not isinstance(creator_id, str) or not isinstance(language, str):
        return None
    return creator_id, language


def mail_address(address: str) -> str:
    """The address as mail carries it: a domain in another script (`créateurs.example`) in its ASCII form
    (`xn--crateurs-c1a.example`), which every relay accepts; SMTP without SMTPUTF8 cannot carry it as written,
    and a header would encode it into an address nobody has. A local part outside ASCII has no such form:
    `ValueError`."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError("the part before @ is not ASCII, which mail without SMTPUTF8 cannot carry")
    if domain.isascii():
        return address
    import idna

    try:  # IDNA 2008: Python's own codec (2003) maps ß to ss and ς to σ, a stranger's domain
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError as exc:
        raise ValueError(f"its domain has no ASCII (IDNA) form: {exc}") from None


def recipient_problem(report: CreatorReport) -> str | None:
    """Why this creator's name or email cannot be used in a message, or None when they can."""
    for what, value in (("name", report.creator_name), ("email address", report.email), ("id", report.creator_id)):
        bad = [c for c in value if unicodedata.category(c) in {"Cc", "Zl", "Zp"}]
        if bad:
            kinds = "a line break" if any(c in "\r\n\u2028\u2029\x85" for c in bad) else "a control character"
            return (
                f"the registry's {what} {value!r} contains {kinds}, which could forge mail headers: "
                "fix it in the creator registry"
            )
    if not report.email:
        return None  # told apart by the caller: "no email address in the creator registry"
    if not _SIMPLE_ADDRESS.match(report.email):
        return f"the registry's email address {report.email!r} is not a valid address: fix it in the creator registry"
    try:
        Address(display_name=report.creator_name, addr_spec=mail_address(report.email))
    except (ValueError, HeaderParseError, IndexError) as exc:
        return f"the registry's email address {report.email!r} is not a valid address ({exc}): fix it in the registry"
    return None
