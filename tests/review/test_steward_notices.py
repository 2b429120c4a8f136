"""What a steward notices on the pages (issue "What each user notices"), over HTTP against the real app, a real
regional store and the real review database: look-alike characters shown, fixes typed in the rail's notation,
search, assignment, previous/next, CSV export, pick-lists, a bulk action with no default, names masked."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kanda.review.service import enqueue_region
from kanda.settings import Settings
from kanda.web.app import create_app
from tests.support.steward_files import ingest_dirty_kenya
from tests.support.web_helpers import PASSWORD, create_accounts, item, items, login, token


@pytest.fixture
def kenya(settings: Settings, tmp_path: Path) -> dict[str, int]:
    """A hand-written M-Pesa statement ingested and enqueued; item ids by receipt number."""
    ingest_dirty_kenya(settings, tmp_path / "files")
    enqueue_region(settings, "KE")
    create_accounts(settings)
    return {i.transaction_id: i.id for i in items(settings, "KE")}


def signed_in(settings: Settings, name: str = "wanjiru") -> TestClient:
    client = TestClient(create_app(settings))
    assert login(client, name, PASSWORD).status_code == 200
    return client


def fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', html))


def test_the_raw_text_that_failed_shows_its_letter_o_and_invisible_space(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    page = client.get(f"/records/{kenya['SKE0000002']}").text
    as_in_file = re.search(r'data-testid="as-in-file">(.*?)</td>', page).group(1)
    # the O of 12,3O0.00 is marked, named and given its code point; the digits around it are plain
    assert as_in_file.startswith("12,3<mark") and as_in_file.endswith("0.00")
    assert 'title="U+004F LATIN CAPITAL LETTER O: a letter among digits"' in as_in_file
    assert re.search(r'data-testid="parsed-value"><span class="null">null</span>', page)

    zero_width = client.get(f"/records/{kenya['SKE0000003']}").text
    assert 'data-codepoint="U+200B"' in zero_width and "ZERO WIDTH SPACE: an invisible character" in zero_width


def test_markup_in_a_raw_value_is_escaped_not_run(settings: Settings):
    from kanda.review.web.reveal import reveal

    shown = str(reveal('<script>alert("1O")</script>'))
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert str(reveal("ABC-123")) == "ABC-123"  # ordinary ids are left alone


def test_a_fix_is_typed_as_the_statement_writes_it_and_shows_what_it_will_store(
    settings: Settings, kenya: dict[str, int]
):
    client = signed_in(settings)
    target = kenya["SKE0000002"]
    page = client.get(f"/records/{target}").text
    form = fields(page)
    # the unreadable amount is offered as the file wrote it, the good time in Nairobi time as the statement has it
    assert form["amount"] == "12,3O0.00" and form["occurred_at"] == "2026-10-05 21:30:00"
    assert "KES as in the file, e.g. 12,300.00" in page
    csrf = token(client, f"/records/{target}")

    unreadable = client.post(f"/records/{target}/edit", data=form | {"op": "save", "csrf_token": csrf})
    assert unreadable.status_code == 422 and "Nothing was saved" in unreadable.text
    assert "cannot read &#39;12,3O0.00&#39;" in unreadable.text
    assert item(settings, target).status == "new"

    typed = form | {"amount": "12,300.00", "occurred_at": "05/10/2026 21:30", "csrf_token": csrf}
    checked = client.post(f"/records/{target}/edit", data=typed | {"op": "check"})
    assert checked.status_code == 200 and "passes the contract" in checked.text
    will_store = dict(re.findall(r'data-testid="will-store-(\w+)">will store: ([^<]*)<', checked.text))
    assert will_store == {
        "amount_minor": "1230000 minor units (KES 12,300.00)",
        "net_minor": "1230000 minor units (KES 12,300.00)",
        "fee_minor": "0 minor units (KES 0.00)",
        "occurred_at": "2026-10-05 18:30 UTC",  # 21:30 in Nairobi (UTC+3)
    }
    assert item(settings, target).status == "new"  # checking saves nothing

    approved = client.post(f"/records/{target}/edit", data=typed | {"op": "approve"})
    assert approved.status_code == 200 and "Fix approved" in approved.text
    # stored as ingestion would have read a clean file: minor units, and the unchanged time is not an edit
    assert item(settings, target).edits == {"amount_minor": "1230000"}


def test_an_unreadable_local_time_names_the_notation_it_expects(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    target = kenya["SKE0000004"]
    csrf = token(client, f"/records/{target}")
    bad = client.post(f"/records/{target}/edit", data={"occurred_at": "5th Oct", "op": "check", "csrf_token": csrf})
    assert bad.status_code == 422
    message = re.search(r'data-testid="error-occurred_at">([^<]*)<', bad.text).group(1)
    assert "2026-10-05 21:30:00 (Africa/Nairobi local time)" in message
    good = client.post(
        f"/records/{target}/edit", data={"occurred_at": "2026-10-05 23:15:00", "op": "save", "csrf_token": csrf}
    )
    assert "passes the contract" in good.text
    assert item(settings, target).edits == {"occurred_at": "2026-10-05T20:15:00Z"}


def test_names_in_mpesa_details_are_masked_in_the_review_database(settings: Settings, kenya: dict[str, int]):
    detail = item(settings, kenya["SKE0000002"])
    assert detail.raw_record["Details"] == "Pay Bill Online from ********78 - P*** K*** Acc. KE-C0001.KE-P00001"
    page = signed_in(settings).get(f"/records/{kenya['SKE0000002']}").text
    assert "PETER" not in page and "KAMAU" not in page and "0712345678" not in page


def test_search_by_transaction_creator_and_product(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)

    def found(q: str) -> set[int]:
        return {int(i) for i in re.findall(r'<tr data-item="(\d+)"', client.get("/queue", params={"q": q}).text)}

    assert found("ske0000002") == {kenya["SKE0000002"]}
    assert found("KE-C0001") == set(kenya.values())
    assert found("ke-p00001") == set(kenya.values())
    assert found("nothing-like-this") == set()
    assert found("%") == set()  # a LIKE wildcard is searched for literally


def test_assign_to_me_and_the_assignee_filter(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    target = kenya["SKE0000003"]
    csrf = token(client, f"/records/{target}")
    taken = client.post(f"/records/{target}/assign", data={"op": "take", "csrf_token": csrf})
    assert taken.status_code == 200 and "is yours" in taken.text
    assert re.search(r'data-testid="assignee">wanjiru<', taken.text)
    assert item(settings, target).assignee == "wanjiru"

    def shown(query: str) -> set[int]:
        return {int(i) for i in re.findall(r'<tr data-item="(\d+)"', client.get(f"/queue?{query}").text)}

    assert shown("assignee=me") == {target}
    assert shown("assignee=nobody") == set(kenya.values()) - {target}
    amina = signed_in(settings, "amina")
    assert {int(i) for i in re.findall(r'<tr data-item="(\d+)"', amina.get("/queue?assignee=wanjiru").text)} == {target}

    back = client.post(f"/records/{target}/assign", data={"op": "release", "csrf_token": csrf})
    assert "back in the queue" in back.text and item(settings, target).assignee is None
    assert [h.action for h in item(settings, target).history][-2:] == ["assign", "unassign"]
    viewer = signed_in(settings, "otieno")
    refused = viewer.post(f"/records/{target}/assign", data={"op": "take", "csrf_token": token(viewer, "/queue")})
    assert refused.status_code == 403


def test_previous_and_next_walk_the_filtered_queue(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    ordered = sorted(kenya.values())
    client.get("/queue?rule=missing_or_unreadable&region=KE")  # the filter the steward is walking
    middle = client.get(f"/records/{ordered[1]}").text
    assert f'href="/records/{ordered[0]}" rel="prev"' in middle and f'href="/records/{ordered[2]}" rel="next"' in middle
    first = client.get(f"/records/{ordered[0]}").text
    assert 'rel="prev"' not in first and "first of this filter" in first
    client.get("/queue?q=SKE0000003")  # a narrower filter: no neighbours left
    alone = client.get(f"/records/{ordered[1]}").text
    assert 'rel="prev"' not in alone and 'rel="next"' not in alone


def test_csv_export_holds_the_whole_filter_and_defuses_formulas(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    response = client.get("/queue.csv?region=KE&rule=missing_or_unreadable")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {int(r["id"]) for r in rows} == set(kenya.values())
    by_txn = {r["transaction_id"]: r for r in rows}
    assert by_txn["SKE0000004"]["rules"] == "missing_or_unreadable:occurred_at"
    assert by_txn["SKE0000002"]["product_id"] == "KE-P00001"
    assert 'href="/queue.csv?region=KE' in client.get("/queue?region=KE").text

    from kanda.review.web.pages import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("-5") == "'-5" and _cell("KE") == "KE"


def test_the_fix_form_offers_the_regions_creators_and_products(settings: Settings, kenya: dict[str, int]):
    page = signed_in(settings).get(f"/records/{kenya['SKE0000002']}").text
    creators = re.search(r'<datalist id="known-creators">(.*?)</datalist>', page).group(1)
    products = re.search(r'<datalist id="known-products">(.*?)</datalist>', page).group(1)
    assert '<option value="KE-C0001">' in creators and "NG-C" not in creators
    assert '<option value="KE-P00001">' in products
    assert 'name="creator_id" value="KE-C0001" class="mono" autocomplete="off" list="known-creators"' in page


def test_the_bulk_action_has_no_default_and_does_nothing_until_one_is_chosen(settings: Settings, kenya: dict[str, int]):
    client = signed_in(settings)
    page = client.get("/queue").text
    select = re.search(r'<select name="action" required>(.*?)</select>', page, re.S).group(1)
    assert re.search(r'<option value="" selected>choose an action', select)
    csrf = token(client, "/queue")
    nothing = client.post("/queue/bulk", data={"scope": "all", "reason": "oops", "status": "open", "csrf_token": csrf})
    assert nothing.status_code == 200 and "Choose an action first: nothing was changed." in nothing.text
    assert {item(settings, i).status for i in kenya.values()} == {"new"}


def test_a_stripe_refunds_form_shows_the_refunds_own_date_as_in_the_file(settings: Settings, tmp_path: Path):
    """A Stripe refund whose `Refunded date (UTC)` is unreadable is quarantined for its time. Its form showed the
    charge's `Created date` as the text "in the file", and a steward approving it as shown booked the refund on the
    charge's day. The form shows the refund's own date, and its amount is the refund's."""
    page = quarantined_form(
        settings,
        "EG",
        tmp_path / "payments.csv",
        "id;Created date (UTC);Amount;Amount Refunded;Currency;Fee;Refunded date (UTC);Status;kanda_ref (metadata)\n"
        "ch_r;2026-10-01 13:00:00;500,00;200,00;egp;7,50;N/A;Partially Refunded;EG-C0001.EG-P00001\n",
    )
    form = fields(page)
    assert (form["occurred_at"], form["amount"]) == ("N/A", "-200,00")
    assert re.search(r'data-testid="as-in-file">N/A</td>', page)


def test_a_stripe_disputes_form_shows_the_disputed_amount_as_in_the_file(settings: Settings, tmp_path: Path):
    """A lost dispute whose `Disputed Amount` is unreadable is quarantined for its amount. Its form shows that text
    as the one in the file, not the charge's whole `Amount`, which a steward would have typed back in."""
    page = quarantined_form(
        settings,
        "EG",
        tmp_path / "payments.csv",
        "id;Created date (UTC);Amount;Amount Refunded;Currency;Fee;Status;Disputed Amount;Dispute Status;"
        "kanda_ref (metadata)\n"
        "ch_d;2026-10-01 13:00:00;500,00;0,00;egp;7,50;Disputed;N/A;lost;EG-C0001.EG-P00001\n",
    )
    assert re.search(r'data-testid="as-in-file">N/A</td>', page)


def test_a_bkash_refunds_form_shows_its_completed_time_as_in_the_file(settings: Settings, tmp_path: Path):
    """bKash's refund answer is timed by its `completedTime`. When that is unreadable, the form showed the execute
    time's text, which a refund answer does not have: nothing "as in the file" for the steward to correct."""
    refund = {"paymentID": "TR0011abc", "refundTrxID": "8KL0RFND", "originalTrxID": "8KL0ORIG",
              "transactionStatus": "Completed", "amount": "500.00", "currency": "BDT",
              "completedTime": "21 Feb 2021 15:40", "merchantInvoiceNumber": "BD-C0001.BD-P00001"}  # fmt: skip
    page = quarantined_form(settings, "BD", tmp_path / "bkash.ndjson", json.dumps(refund) + "\n")
    assert re.search(r'data-testid="as-in-file">21 Feb 2021 15:40</td>', page)


GUMROAD_HEADER = (
    "Purchase ID,Item Name,Purchase Email,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),"
    "Net Total (TZS),Refunded?,Partial Refund (TZS),Fully Refunded?,Disputed?,Dispute Won?,Country,Payment Type,"
    "Buyer Currency,Buyer Total,Buyer Refunded Total,Purchase State\n"
)


def test_a_gumroad_partial_refunds_form_shows_the_refund_not_the_sale(settings: Settings, tmp_path: Path):
    """A Gumroad partial refund whose `Partial Refund` is unreadable (`1O,000.00`) is quarantined for its amount.
    Its form offered the sale's `Sale Price` as the text in the file and the sale's `Net Total` as its net, and a
    steward approving what was shown (negated) loaded a full refund. The form shows the refund's own text and no
    net (money going back has none of its own); a full refund's shows the Sale Price, not its zero partial."""
    line = "Kj3aB9x0Qw,[TZ-C0001.TZ-P00001] Course,a@example.com,2026-10-01,09:15:30,30950.00,464.25,30485.75,"
    page = quarantined_form(
        settings,
        "TZ",
        tmp_path / "purchases.csv",
        GUMROAD_HEADER + line + "1,1O000.00,0,0,0,Tanzania,card,tzs,30950.00,10000.00,successful\n",
    )
    form = fields(page)
    assert (form["amount"], form["net"]) == ("1O000.00", "")
    (shown,) = re.findall(r'data-testid="as-in-file">(.*?)</td>', page)
    assert "1" in shown and "000.00" in shown and "30950" not in shown  # the letter O is marked (`reveal`)

    from kanda.review.notation import RailContext

    full = {"Sale Price (TZS)": "30950.00", "Partial Refund (TZS)": "0.00", "Net Total (TZS)": "30485.75"}
    rail = RailContext.of("TZ", full)
    assert rail.raw_text(full, "amount_minor", "refund") == "30950.00"
    assert rail.raw_text(full, "net_minor", "refund") is None
    assert rail.raw_text(full, "net_minor", "sale") == "30485.75"


def quarantined_form(settings: Settings, region: str, path: Path, content: str) -> str:
    """`content` written to `path` and ingested into `region` (its one record quarantined), then that record's
    review page as a steward of every region sees it."""
    from tests.support.files import ingest_written

    report = ingest_written(settings, region, path, content)
    assert report.quarantined == 1, report
    enqueue_region(settings, region)
    create_accounts(settings)
    (record,) = items(settings, region)
    return signed_in(settings, "amina").get(f"/records/{record.id}").text
