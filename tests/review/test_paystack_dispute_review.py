"""A Paystack dispute lost by the merchant, through the steward's review on real parts: the regional store, the
review database, `kanda review ...` and the review pages.

`regions/rails/paystack/spec.yaml` quarantines a `charge.dispute.resolve` resolved against the merchant as the
disputed payment's reversal of `refund_amount` at `resolvedAt` with no status: Paystack documents no refund event
that must follow it, so only a steward knows whether a refund already books that money. Confirmed (`status=success`),
it takes the sale's money back on the dispute's local day, once, however often the webhook is re-sent; rejected (the
refund booked it), the sale stays counted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.review.service import enqueue_region
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.builders import paystack_event
from tests.support.files import ingest_written
from tests.support.web_helpers import PASSWORD, create_accounts, item, items, login, token

runner = CliRunner()
#: 23:30 UTC on 6 June is 00:30 on 7 June in Lagos (UTC+1): the dispute's local day is the 7th.
RESOLVED_AT = "2025-06-06T23:30:00.000Z"
SALE_DAY, DISPUTE_DAY = dt.date(2025, 6, 5), dt.date(2025, 6, 7)
#: paystack_event's sale: NGN 5,000.00 paid on 5 June, fee 75.00
PRICE, FEE = 500_000, 7_500


def run(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["review", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def dispute(n: int, *, resolution: str = "auto-accepted", **data: object) -> dict:
    """A `charge.dispute.resolve` of sale `n` in the shape of Paystack's own sample (PaystackOSS/doc-code-snippets
    src/doc/payments/webhooks/events/charge-dispute-resolve.json): the dispute's own id, status `resolved`, the
    disputed charge (now `reversed`, its `metadata` "") as `data.transaction`, no `amount` or `paid_at` of its own."""
    transaction = paystack_event(n, status="reversed", metadata="")["data"]
    document = {"id": 358900 + n, "refund_amount": PRICE, "currency": "NGN", "status": "resolved",
                "resolution": resolution, "domain": "live", "transaction": transaction, "transaction_reference": None,
                "category": "chargeback", "customer": {"email": "buyer@mail.example"},
                "dueAt": "2025-06-06T18:00:00.000Z", "resolvedAt": RESOLVED_AT,
                "created_at": "2025-06-06T09:46:57.000Z", "updated_at": RESOLVED_AT}  # fmt: skip
    return {"event": "charge.dispute.resolve", "data": document | data}


def ndjson(*documents: dict) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def ingest_sale_and_dispute(settings: Settings, tmp_path: Path) -> int:
    """Sale ps_000001 and its lost dispute ingested and queued; the dispute's review item id."""
    report = ingest_written(settings, "NG", tmp_path / "webhooks.ndjson", ndjson(paystack_event(1), dispute(1)))
    assert (report.loaded, report.quarantined, report.ignored) == (1, 1, 0), report
    assert run("enqueue", "--json") == {"enqueued": {"NG": 1}}
    (queued,) = run("list", "--region", "NG", "--json")["items"]
    assert (queued["transaction_id"], queued["local_date"]) == ("ps_000001", str(DISPUTE_DAY))
    return queued["id"]


def redeliver(settings: Settings, folder: Path, name: str, *documents: dict) -> tuple[int, int, int]:
    """Another day's webhook log holding `documents`: its (loaded, quarantined, duplicates)."""
    path = folder / name
    path.write_text(ndjson(*documents))
    (report,) = ingest_files(settings, "NG", [path]).files
    assert report.status == "loaded", report
    return report.loaded, report.quarantined, report.duplicates


def money(settings: Settings) -> tuple[list[tuple], dict[dt.date, tuple[int, int, int]]]:
    """The payment's stored events, and the creator's regional rollup by local day (gross, reversals, net)."""
    with open_store(settings, "NG", read_only=True) as con:
        events = con.execute(
            "SELECT event_type, status, amount_minor, net_minor, occurred_at FROM sale_events"
            " WHERE transaction_id = 'ps_000001' ORDER BY occurred_at"
        ).fetchall()
        days = con.execute(
            "SELECT local_date, gross_minor, reversals_minor, net_minor FROM creator_daily"
            " WHERE creator_id = 'NG-C0001'"
        ).fetchall()
    return [(e, s, a, n, o.astimezone(dt.UTC)) for e, s, a, n, o in events], {d: (g, r, n) for d, g, r, n in days}


def verify_errors(settings: Settings) -> list[str]:
    return [f"{r.name}: {r.message}" for r in verify(settings, ["NG"]) if not r.passed and r.severity == "error"]


def signed_in(settings: Settings) -> TestClient:
    create_accounts(settings)
    client = TestClient(create_app(settings))
    assert login(client, "amina", PASSWORD).status_code == 200
    return client


def as_in_file(page: str) -> dict[str, str]:
    """The failing rules' column -> the text shown "as in the file"."""
    rows = re.findall(
        r'data-label="Column" class="mono">([^<]*)</td>\s*<td [^>]*data-testid="as-in-file">(.*?)</td>', page
    )
    return dict(rows)


def fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page))


def test_a_lost_dispute_a_steward_confirms_takes_the_sale_back_on_its_own_day_once(settings: Settings, tmp_path):
    """Given status `success` with `kanda review fix`, the dispute loads through the contract as the sale's reversal
    on its local day (7 June in Lagos); the webhook re-sent, before the load or after it, is a duplicate."""
    item_id = ingest_sale_and_dispute(settings, tmp_path)
    shown = run("show", str(item_id), "--json")
    assert [(r["rule"], r["column"]) for r in shown["rules"]] == [("missing_or_unreadable", "status")]
    parsed = shown["parsed"]
    assert (parsed["event_type"], parsed["amount_minor"], parsed["occurred_at"]) == (
        "reversal", -PRICE, "2025-06-06T23:30:00+00:00"
    )  # fmt: skip
    assert (shown["raw_record"]["event"], shown["raw_record"]["data.resolution"]) == (
        "charge.dispute.resolve", "auto-accepted"
    )  # fmt: skip

    fixed = run("fix", str(item_id), "--set", "status=success", "--approve", "--actor", "ops", "--json")
    assert fixed["ok"] and fixed["approved"]
    assert fixed["will_store"]["occurred_at"] == f"2025-06-06 23:30 UTC, local day {DISPUTE_DAY}"
    # the webhook re-sent after the approval, before the fix is loaded: a duplicate of the quarantined row
    assert redeliver(settings, tmp_path, "resent-1.ndjson", dispute(1)) == (0, 0, 1)

    (loaded,) = run("reprocess", "-r", "NG", "--json")["regions"]
    assert loaded["loaded"] == [item_id] and loaded["duplicates"] == [] and loaded["quarantined"] == []
    events, days = money(settings)
    when = dt.datetime(2025, 6, 6, 23, 30, tzinfo=dt.UTC)
    assert events == [
        ("sale", "success", PRICE, PRICE - FEE, dt.datetime(2025, 6, 5, 10, tzinfo=dt.UTC)),
        ("reversal", "success", -PRICE, -PRICE, when),
    ]
    assert days == {SALE_DAY: (PRICE, 0, PRICE - FEE), DISPUTE_DAY: (0, PRICE, -PRICE)}

    (same,) = ingest_files(settings, "NG", [tmp_path / "webhooks.ndjson"]).files  # the first log ingested again
    assert (same.status, same.loaded, same.quarantined) == ("already_ingested", 0, 0)
    # re-sent again after it was loaded (with the sale, beside another creator's sale): duplicates, not a second
    # reversal
    other = paystack_event(2, metadata={"kanda_ref": "NG-C0002.NG-P00005"})
    assert redeliver(settings, tmp_path, "resent-2.ndjson", paystack_event(1), dispute(1), other) == (1, 0, 2)
    assert run("enqueue", "--json") == {"enqueued": {"NG": 0}}
    (again,) = run("reprocess", "-r", "NG", "--json")["regions"]
    assert again["loaded"] == [] and again["duplicates"] == []
    assert money(settings) == (events, days)
    assert [i.status for i in items(settings, "NG")] == ["reprocessed"]
    assert verify_errors(settings) == []


def test_a_lost_dispute_rejected_as_booked_by_a_refund_leaves_the_sale_counted(settings: Settings, tmp_path):
    """On the record page the steward sees the resolution the dispute came with, and the reversal's money and time;
    rejected there (a refund already booked the money), the sale stays counted and a re-sent webhook is a duplicate."""
    item_id = ingest_sale_and_dispute(settings, tmp_path)
    client = signed_in(settings)
    page = client.get(f"/records/{item_id}").text
    # what the steward decides from: the dispute's resolution, and the money and time the reversal would take
    assert as_in_file(page) == {"status": "auto-accepted"}
    assert (fields(page)["amount"], fields(page)["occurred_at"]) == (str(-PRICE), "2025-06-06T23:30:00Z")
    csrf = token(client, f"/records/{item_id}")
    rejected = client.post(
        f"/records/{item_id}/reject", data={"reason": "booked by refund 3018284", "csrf_token": csrf}
    )
    assert rejected.status_code == 200 and f"Record #{item_id} rejected." in rejected.text

    (done,) = run("reprocess", "-r", "NG", "--json")["regions"]
    assert done["rejected_recorded"] == [item_id] and done["loaded"] == []
    assert redeliver(settings, tmp_path, "resent.ndjson", dispute(1)) == (0, 0, 1)
    assert run("enqueue", "--json") == {"enqueued": {"NG": 0}}
    events, days = money(settings)
    assert [(e, s, a) for e, s, a, _, _ in events] == [("sale", "success", PRICE)]
    assert days == {SALE_DAY: (PRICE, 0, PRICE - FEE)}
    assert item(settings, item_id).status == "rejected"
    assert verify_errors(settings) == []


def test_a_disputes_unreadable_money_and_time_are_shown_as_its_own_fields_wrote_them(settings: Settings, tmp_path):
    """The page's "as in the file" text, and the form's text for a value that could not be read, came from a
    charge's fields: for a dispute, whose record has no `amount` or `paid_at`, nothing for its amount and the
    dispute's `created_at` for its time, a plausible instant a steward could approve while the spec reads
    `resolvedAt`. They are the dispute's `refund_amount` and `resolvedAt`, and its `resolution` for the status."""
    documents = [paystack_event(1), dispute(1, refund_amount="N/A", resolvedAt="06/06/2025 23:30")]
    report = ingest_written(settings, "NG", tmp_path / "webhooks.ndjson", ndjson(*documents))
    assert (report.loaded, report.quarantined) == (1, 1), report
    enqueue_region(settings, "NG")
    (record,) = items(settings, "NG")
    page = signed_in(settings).get(f"/records/{record.id}").text
    assert as_in_file(page) == {"amount_minor": "N/A", "occurred_at": "06/06/2025 23:30", "status": "auto-accepted"}
    form = fields(page)
    assert (form["amount"], form["occurred_at"]) == ("N/A", "06/06/2025 23:30")


def test_a_lost_dispute_delivered_in_a_log_of_its_own_reaches_the_steward(settings: Settings, tmp_path):
    """A dispute's record has no `amount` (its money is `refund_amount`). The spec required `data.amount` of a log,
    so a log holding only a dispute resolution (the sale came in an earlier log) was refused whole as another rail's
    feed, and the money taken back never reached a steward. It is queued as the sale's reversal, the sale's creator
    and product taken from the stored sale (the dispute's charge has `metadata` "", as in Paystack's sample)."""
    report = ingest_written(settings, "NG", tmp_path / "monday.ndjson", ndjson(paystack_event(1)))
    assert (report.loaded, report.quarantined) == (1, 0), report
    assert redeliver(
        settings, tmp_path, "tuesday.ndjson", dispute(1, resolution="merchant-accepted", refund_amount=120000)
    ) == (0, 1, 0)
    assert run("enqueue", "--json") == {"enqueued": {"NG": 1}}
    (queued,) = run("list", "--region", "NG", "--json")["items"]
    assert (queued["creator_id"], queued["product_id"], queued["local_date"]) == (
        "NG-C0001",
        "NG-P00001",
        str(DISPUTE_DAY),
    )
    assert [(r["rule"], r["column"]) for r in queued["rules"]] == [("missing_or_unreadable", "status")]
    assert run("show", str(queued["id"]), "--json")["parsed"]["amount_minor"] == -120000


def test_a_sales_unreadable_price_is_shown_as_requested_amount_wrote_it(settings: Settings, tmp_path):
    """A charge's price is its `requested_amount`; `amount` adds the fee a customer bore (Paystack's verify sample:
    40333 = 30050 + fees 10283). With the price unreadable, the page offered `amount` as the text in the file, the
    price plus the customer's fee, which a steward approving it as shown would have booked as the creator's sale."""
    sale = paystack_event(1, amount=40333, requested_amount="N/A", fees=10283)
    report = ingest_written(settings, "NG", tmp_path / "webhooks.ndjson", ndjson(sale))
    assert (report.loaded, report.quarantined) == (0, 1), report
    enqueue_region(settings, "NG")
    (record,) = items(settings, "NG")
    page = signed_in(settings).get(f"/records/{record.id}").text
    assert as_in_file(page)["amount_minor"] == "N/A" and fields(page)["amount"] == "N/A"
