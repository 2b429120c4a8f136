"""A report never carries another creator's rows or any buyer's contact details (property-based).

The data is the generator's dirty stream for three rails whose files carry buyer emails (Paystack, Stripe) and
phone numbers (M-Pesa), ingested and published as usual. Hypothesis picks a region, a day and a creator; the
complete message that creator would receive (every part decoded) and its CSV are checked against the store and
against every buyer contact in the generated truth.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import re
from collections.abc import Iterator
from functools import cache

import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from kanda.regional.store import open_store
from kanda.reports.data import region_reports
from kanda.reports.delivery import message_bytes
from kanda.reports.message import build_message
from kanda.settings import Settings, load_settings
from regions import get_region
from regions.synthetic.core import DirtMix, make_registry, truth_chunks
from tests.support.files import START, make_files
from tests.support.reports import load_and_publish, parts

REGIONS = ["NG", "EG", "KE"]
DAYS = 3
ROWS = 700
SEED = 7
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(tmp_path_factory.mktemp("privacy") / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        built = load_settings()
        built.ensure_dirs()
        make_files(built, regions=REGIONS, rows=ROWS, days=DAYS, seed=SEED, dirt=DirtMix().scaled(3))
        for code in REGIONS:
            load_and_publish(built, code)
        yield built


@cache
def buyer_contacts(region: str) -> tuple[frozenset[str], frozenset[str]]:
    """Every buyer email and phone (its 9 significant digits) the region's generated file was made from."""
    registry = make_registry(SEED)
    truth = pl.concat(
        truth_chunks(
            get_region(region), registry, start=START, days=DAYS, rows=ROWS, seed=SEED, dirt=DirtMix().scaled(3)
        )
    )
    emails = frozenset(truth["buyer_email"].str.to_lowercase().to_list())
    phones = frozenset(p[-9:] for p in truth["buyer_phone"].to_list())
    return emails, phones


@cache
def store_rows(home: str, region: str, day: dt.date) -> dict[str, set[str]]:
    """creator -> transaction ids of their events on the day (`__counted__<creator>`: of their money movements,
    what the attachment lists); and every buyer hash of the region."""
    with open_store(load_settings(home), region, read_only=True) as con:
        rows = con.execute(
            "SELECT creator_id, transaction_id, status FROM sale_events WHERE local_date = ?", [day]
        ).fetchall()
        hashes = {
            r[0]
            for r in con.execute("SELECT DISTINCT buyer_ref FROM sale_events WHERE buyer_ref IS NOT NULL").fetchall()
        }
        creators = dict(con.execute("SELECT creator_id, email FROM creators").fetchall())
    out: dict[str, set[str]] = {c: set() for c in creators}
    for creator, txn, status in rows:
        out.setdefault(creator, set()).add(txn)
        if status == "success":
            out.setdefault(f"__counted__{creator}", set()).add(txn)
    out["__hashes__"] = hashes
    out["__emails__"] = set(creators.values())
    return out


@cache
def reports(home: str, region: str, day: dt.date):
    return region_reports(load_settings(home), region, day, now=LATER).reports


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_a_report_holds_only_its_creators_rows_and_no_buyer_contact(installation: Settings, data: st.DataObject):
    region = data.draw(st.sampled_from(REGIONS), label="region")
    day = START + dt.timedelta(days=data.draw(st.integers(0, DAYS - 1), label="day"))
    home = str(installation.home)
    candidates = reports(home, region, day)
    assert candidates, f"{region} {day}: the generated data gives every day some reports"
    report = data.draw(st.sampled_from(candidates), label="report")

    raw = message_bytes(build_message(report, "kanda <reports@kanda.test>"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    leaves = parts(message)
    text = "\n".join(
        [
            *(f"{k}: {v}" for k, v in message.items()),
            leaves["text/plain"].get_content(),
            leaves["text/html"].get_content(),
        ]
    )
    table = leaves["text/csv"].get_content()
    everything = "\n".join([text, table, raw.decode("ascii", errors="replace")])

    known = store_rows(home, region, day)
    own = known.get(f"__counted__{report.creator_id}", set())
    # exactly the creator's own money movements of the day, in the data and in the attachment
    assert {line.transaction_id for line in report.sales} == own
    assert {row["transaction_id"].lstrip("'") for row in csv.DictReader(io.StringIO(table))} == own
    others = set().union(*(txns for c, txns in known.items() if not c.startswith("__") and c != report.creator_id))
    assert not {t for t in others if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", everything)}
    other_emails = known["__emails__"] - {report.email}
    assert not [e for e in other_emails if e in everything]
    # no buyer contact, raw or hashed as the store keeps it
    emails, phones = buyer_contacts(region)
    lowered = everything.lower()
    assert "mail.example" not in lowered
    assert not [e for e in emails if e in lowered]
    digit_runs = set(re.findall(r"\d{9,}", everything))
    assert not {run[-9:] for run in digit_runs} & phones
    assert not [h for h in known["__hashes__"] if h in lowered]
    assert not re.search(r"\b[0-9a-f]{64}\b", lowered)
