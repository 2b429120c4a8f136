"""Money going back on two webhook rails, read as their providers document it: Yoco's refunds by their own `rfd_` id,
Chapa's refunds and reversals at the time the transaction changed (`updated_at`), not the time it was created.

Each test loads hand-written documents through the whole boundary into a real store and reads the payment back.
"""

from __future__ import annotations

import json
from pathlib import Path

from kanda.settings import Settings

RAILS = Path(__file__).parents[2] / "regions" / "rails"


def _yoco(line: int) -> dict:
    """A document of the Yoco sample (1-based line)."""
    return json.loads((RAILS / "yoco/samples/webhooks_za.ndjson").read_text().splitlines()[line - 1])


def _yoco_refund(refund_id: str, amount: int, created: str) -> dict:
    """A `refund.succeeded` of the sample's first checkout (ZAR 150.00) in the shape of Yoco's documented partial
    refund event (https://developer.yoco.com/online/api-reference/webhooks/events/successful-refund)."""
    document = _yoco(5) | {"id": f"evt_{refund_id}", "createdDate": created}
    document["payload"] = document["payload"] | {"id": refund_id, "amount": amount, "paymentId": "p_za0001"}
    return document


def test_two_yoco_partial_refunds_within_a_minute_are_two_refunds(settings: Settings) -> None:
    """Yoco refunds a checkout in parts, each refund with an id of its own (`rfd_...`). Told apart by their minute,
    two refunds of R50.00 sent within one minute were one refund and a duplicate: the second refund's money never
    left the creator's net. Each id is a refund of its own now, and a refund delivered again is still a duplicate."""
    from kanda.flow import build
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    first = _yoco_refund("rfd_PART0001", 5000, "2026-10-06T08:00:05.000000Z")
    second = _yoco_refund("rfd_PART0002", 5000, "2026-10-06T08:00:40.000000Z")
    documents = [_yoco(1), first, second, first]  # the first refund delivered again
    content = "".join(json.dumps(d) + "\n" for d in documents)
    report = ingest_written(settings, "ZA", settings.home / "webhooks.ndjson", content)
    assert (report.loaded, report.duplicates, report.quarantined) == (3, 1, 0), report
    build(settings, "ZA")
    with open_store(settings, "ZA", read_only=True) as con:
        payment = con.execute(
            "SELECT gross_minor, refunded_minor, current_state FROM fct_sales WHERE transaction_id = 'ch_za0001'"
        ).fetchall()
    assert payment == [(15000, 10000, "partially_refunded")]


def _chapa(line: int, **fields: str) -> dict:
    """A document of the Chapa sample (1-based line), its fields replaced by `fields`."""
    return json.loads((RAILS / "chapa/samples/webhooks_et.ndjson").read_text().splitlines()[line - 1]) | fields


def test_chapa_money_going_back_is_dated_when_the_transaction_changed_and_two_refunds_are_two(
    settings: Settings,
) -> None:
    """A Chapa charge.refunded or charge.reversed document has the transaction's shape (`created_at`, `updated_at`),
    and a charge may be refunded in parts (https://developer.chapa.co/refund). Restating the transaction, its
    `created_at` is the charge's: read as the refund's time, every refund landed on the sale's day, and a second
    partial refund of one charge repeated the first's minute, a duplicate whose money never left the creator's net.
    Money going back is dated by `updated_at`, the time the transaction changed (the same time where Chapa dates the
    refund on a record of its own), so each refund and reversal lands on its own local day."""
    from kanda.flow import build
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    sale, other = _chapa(1), _chapa(4)  # ETB 1,250.00 each, paid on 5 October
    refunds = [
        _chapa(5, amount="250.00", created_at=sale["created_at"], updated_at=f"2026-10-{day}T09:00:00.000000Z")
        for day in ("06", "07")
    ]
    reversal = _chapa(
        4, event="charge.reversed", status="reversed", updated_at="2026-10-08T10:00:00.000000Z"
    )  # the transaction restated: created_at stays the charge's
    documents = [sale, other, *refunds, reversal, refunds[0]]  # the first refund delivered again
    content = "".join(json.dumps(d) + "\n" for d in documents)
    report = ingest_written(settings, "ET", settings.home / "webhooks.ndjson", content)
    assert (report.loaded, report.duplicates, report.quarantined) == (5, 1, 0), report
    build(settings, "ET")
    with open_store(settings, "ET", read_only=True) as con:
        refunded = con.execute(
            "SELECT refunded_minor FROM fct_sales WHERE transaction_id = ?", [sale["reference"]]
        ).fetchall()
        days = con.execute(
            "SELECT local_date, refunds_minor, reversals_minor FROM fct_daily_money"
            " WHERE refunds_minor <> 0 OR reversals_minor <> 0 ORDER BY local_date"
        ).fetchall()
    assert refunded == [(50_000,)]
    assert [(str(day), refunds, reversals) for day, refunds, reversals in days] == [
        ("2026-10-06", 25_000, 0),
        ("2026-10-07", 25_000, 0),
        ("2026-10-08", 0, 125_000),
    ]
