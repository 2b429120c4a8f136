"""A creator's report says in their words why a refund is held for `repeat_other_time`, in every shipped language.

The rule (`quality.boundary.REPEAT_OTHER_TIME`) holds a refund, told apart by its minute, that repeats at another
minute the payment and amount of a refund whose time a steward supplied: one refund or two is a person's question.
Reports read the day's held records by rule from the store and turned this one into the generic "it did not pass a
data check". Real parts: Paystack webhook logs through ingestion, the review service and the region flow's
reprocess into a real store, published, read by `region_reports` and rendered into the message a creator receives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from kanda.central.publish import publish_region
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.reports.data import region_reports
from kanda.reports.message import build_message
from kanda.reports.model import HeldRecords
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, approve, enqueue_region, list_items
from kanda.settings import Settings
from tests.support.builders import paystack_event
from tests.support.files import ingest_written

SENDER = "kanda reports <reports@kanda.invalid>"
NIGERIA = Actor("amina", "steward", frozenset({"NG"}))
#: the refund's day in Lagos, and a time well after it ended there (the report is ready)
REFUND_DAY, LATER = dt.date(2025, 6, 6), dt.datetime(2025, 6, 9, 12, tzinfo=dt.UTC)
#: Each shipped language's sentence for the rule, and its generic sentence that must not stand in for it.
SAID = {
    "en": ("a refund may repeat one of the same amount already counted at a different time",
           "it did not pass a data check"),
    "sw": ("marejesho ya pesa huenda yanarudia marejesho ya kiasi kilekile yaliyokwisha kuhesabiwa kwa wakati tofauti",
           "haikupita ukaguzi wa data"),
    "fr": ("un remboursement pourrait faire double emploi avec un remboursement du même montant déjà compté à une"
           " autre heure", "il n'a pas passé un contrôle des données"),
    "vi": ("một khoản hoàn tiền có thể trùng với một khoản hoàn tiền cùng số tiền đã được tính vào thời điểm khác",
           "không vượt qua một bước kiểm tra dữ liệu"),
    "am": ("አንድ ተመላሽ ቀደም ብሎ በሌላ ሰዓት ከተቆጠረ ተመሳሳይ መጠን ካለው ተመላሽ ጋር አንድ ሊሆን ይችላል", "የውሂብ ፍተሻን አላለፈም"),
}  # fmt: skip


def refund(payment: str, created_at: str | None = None) -> dict:
    """A `refund.processed` of NGN 2,000.00 as Paystack documents it (no time), or, with `created_at`, with one."""
    data: dict[str, object] = {"status": "processed", "transaction_reference": payment, "amount": 200_000,
                               "currency": "NGN", "refund_reference": None, "domain": "live"}  # fmt: skip
    return {"event": "refund.processed", "data": data | ({"created_at": created_at} if created_at else {})}


def ndjson(*documents: dict) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def bodies(report) -> tuple[str, str]:
    raw = build_message(report, SENDER, now=LATER).as_bytes()
    msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[assignment]
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


@pytest.fixture
def held_for_another_time(settings: Settings, tmp_path: Path):
    """A steward's time (12:00) for a refund Paystack sent without one, loaded; then the rail's own delivery of a
    refund of that payment and amount at 15:30, held as `repeat_other_time`. NG-C0001's report of that day."""
    first = ndjson(paystack_event(1), refund("ps_000001"))
    assert ingest_written(settings, "NG", tmp_path / "mon.ndjson", first).quarantined == 1
    enqueue_region(settings, "NG")
    (item,) = list_items(settings, NIGERIA, ReviewFilter(statuses={"new"}))
    approve(settings, NIGERIA, item.id, "Paystack's dashboard dates it", edits={"occurred_at": "2025-06-06T12:00:00Z"})
    assert reprocess_region(settings, "NG").loaded == [item.id]
    later = tmp_path / "wed.ndjson"
    later.write_text(ndjson(refund("ps_000001", created_at="2025-06-06T15:30:00.000Z")))
    (delivered,) = ingest_files(settings, "NG", [later]).files
    assert (delivered.loaded, delivered.quarantined) == (0, 1), delivered
    publish_region(settings, "NG")
    day = region_reports(settings, "NG", REFUND_DAY, creators=["NG-C0001"], now=LATER)
    assert day.readiness.ready, day.readiness
    (report,) = day.reports
    return report


def test_a_refund_held_for_another_time_is_explained_to_its_creator_in_every_language(held_for_another_time):
    report = held_for_another_time
    assert report.held == HeldRecords(1, {"repeat_other_time": 1})
    text, html = bodies(dataclasses.replace(report, language="en"))
    for body in (text, html):
        assert "1 record of this day is held for review" in body
        assert f"1: {SAID['en'][0]}" in body
        assert "repeat_other_time" not in body
    for language, (sentence, generic) in SAID.items():
        text, html = bodies(dataclasses.replace(report, language=language))
        for body in (text, html):
            assert sentence in " ".join(body.split()), language  # as wrapped in the plain text
            assert generic not in body, language
