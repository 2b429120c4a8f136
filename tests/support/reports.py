"""Test support for creator reports: a real SMTP server in process, and native files with chosen sales.

The SMTP server is aiosmtpd on a free local port with STARTTLS (a self-signed certificate made with `cryptography`,
trusted by the client through `SSL_CERT_FILE`, so the certificate is verified for real) and AUTH LOGIN/PLAIN.
It records every message it accepts; `fail_next` makes it answer the next DATA commands with a transient 451,
and `greylisted` addresses get a 450 at RCPT, every time.

`write_sales` renders chosen sale events through the region's own synthetic writer (the same code as
`kanda generate`), so tests go through the real adapter, contract, store, models and publish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from regions import get_region
from regions.synthetic.core import TRUTH_SCHEMA, make_registry
from regions.synthetic.writers import get_writer

SMTP_USER = "kanda"
SMTP_PASSWORD = "s3cret-relay"
REGISTRY_SEED = 11


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it accepts, and can fail transiently on purpose."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0
    #: addresses answered "450 greylisted, try again later" at RCPT, every time
    greylisted: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # aiosmtpd's hook name
        if address in self.greylisted:
            return "450 4.2.0 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            return "451 4.3.0 Temporary local problem, try again"
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(data, policy=email.policy.default) for _, _, data in self.received]


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder
    logins: list[str]
    controller: Controller

    def env(self) -> dict[str, str]:
        return {
            "KANDA_SMTP_HOST": self.host,
            "KANDA_SMTP_PORT": str(self.port),
            "KANDA_SMTP_STARTTLS": "true",
            "KANDA_SMTP_USER": SMTP_USER,
            "KANDA_SMTP_PASSWORD": SMTP_PASSWORD,
            "KANDA_SMTP_FROM": "kanda reports <reports@kanda.test>",
        }


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kanda test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(name="smtp_server")
def smtp_server_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A real SMTP relay on localhost that requires STARTTLS and a login, and the env pointing kanda at it."""
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate and nothing else
    recorder, logins = Recorder(), []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    port = _free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    server = SmtpServer("127.0.0.1", port, recorder, logins, controller)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield server
    finally:
        with contextlib.suppress(AssertionError):  # "not running": a test stopped it already (a relay going down)
            controller.stop()


def sale(
    txn: int,
    creator: str,
    product: str,
    amount: int,
    at: dt.datetime,
    *,
    event: str = "sale",
    status: str = "success",
    fee: int | None = None,
    buyer: int = 1,
) -> dict:
    """One truth row (what the rail would deliver), in minor units; money back is negative."""
    return {
        "txn_no": txn,
        "event_type": event,
        "status": status,
        "creator_id": creator,
        "product_id": product,
        "buyer_email": f"buyer{buyer}@mail.example",
        "buyer_phone": f"07{buyer:08d}",
        "amount_minor": amount,
        "fee_minor": fee if fee is not None else (abs(amount) * 150 + 5_000) // 10_000 if event == "sale" else 0,
        "occurred_at": at.astimezone(dt.UTC),
        "corruption": None,
        "is_duplicate": False,
        "unknown_creator": False,
    }


def write_sales(settings: Settings, region_code: str, rows: list[dict], name: str) -> Path:
    """A native file of the region holding exactly these events, in its landing folder; the registry beside it."""
    region = get_region(region_code)
    if not (settings.registry_dir / "creators.csv").exists():
        make_registry(REGISTRY_SEED, creators_per_region=3).write(settings.registry_dir)
    writer, extension = get_writer(region.source_format)
    folder = settings.landing(region.code)
    folder.mkdir(parents=True, exist_ok=True)
    truth = pl.DataFrame(rows, schema=TRUTH_SCHEMA)
    path = folder / f"{name}.{extension}"
    writer(path, iter([truth]), region, np.random.default_rng(5))
    return path


def edit_registry(settings: Settings, creator_id: str, **fields: str) -> None:
    """Change one creator's registry row (as a registry export would carry it), before the next ingestion."""
    path = settings.registry_dir / "creators.csv"
    if not path.exists():
        make_registry(REGISTRY_SEED, creators_per_region=3).write(settings.registry_dir)
    creators = pl.read_csv(path, infer_schema_length=0)
    assert creator_id in creators["creator_id"].to_list(), creator_id
    creators = creators.with_columns(
        pl.when(pl.col("creator_id") == creator_id).then(pl.lit(value)).otherwise(pl.col(name)).alias(name)
        for name, value in fields.items()
    )
    creators.write_csv(path)


def load_and_publish(settings: Settings, region_code: str) -> None:
    report = ingest_landing(settings, region_code)
    assert all(f.status == "loaded" for f in report.files), [f.as_json() for f in report.files]
    assert publish_region(settings, region_code).published


def copy_stores(source_home: Path, settings: Settings) -> Settings:
    """Copy a prepared installation's regional stores and registry into this test's own KANDA_HOME."""
    import shutil

    for folder in ("stores", "registry"):
        shutil.copytree(source_home / folder, settings.home / folder, dirs_exist_ok=True)
    return settings


def parts(message: EmailMessage) -> dict[str, EmailMessage]:
    """The message's leaf parts by content type (text/plain, text/html, image/png, text/csv)."""
    return {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}


def decoded_text(message: EmailMessage) -> str:
    """Every text-like leaf part decoded, plus the headers: what a reader (or a leak) could find in the message."""
    out = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        content = part.get_content()
        out.append(content if isinstance(content, str) else content.decode("latin-1"))
    return "\n".join(out)
