"""A review database made before assignment, product search and the digest existed keeps working: the new columns
are added (and the product id backfilled from the parsed fields) the first time this kanda opens it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from kanda.review import accounts, db
from kanda.review.actor import Actor
from kanda.review.pii import mask_field
from kanda.review.service import ReviewFilter, get_item, list_items
from kanda.settings import Settings


def older_database(path: Path) -> None:
    """The review and account tables as the previous release created them, with one item and one account."""
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE review_items (id INTEGER PRIMARY KEY, region VARCHAR(8) NOT NULL,
          quarantine_id VARCHAR(200) NOT NULL UNIQUE, batch_id VARCHAR(200) NOT NULL, source VARCHAR(64) NOT NULL,
          source_file VARCHAR(500) NOT NULL, source_row BIGINT NOT NULL, transaction_id VARCHAR(200),
          creator_id VARCHAR(64), local_date DATE, hold VARCHAR(64), raw_record JSON NOT NULL, parsed JSON NOT NULL,
          rules JSON NOT NULL, status VARCHAR(16) NOT NULL, edits JSON NOT NULL, decided_by VARCHAR(200),
          decision_reason TEXT, applied_batch VARCHAR(200), applied_at DATETIME, quarantined_at DATETIME NOT NULL,
          enqueued_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
        CREATE TABLE account_users (name VARCHAR(64) PRIMARY KEY, password_hash VARCHAR(255) NOT NULL,
          role VARCHAR(16) NOT NULL, regions VARCHAR(255), active BOOLEAN NOT NULL, created_at DATETIME NOT NULL,
          password_changed_at DATETIME NOT NULL);
        INSERT INTO account_users VALUES ('wanjiru', 'x', 'steward', 'KE', 1, '2026-10-01 00:00:00',
          '2026-10-01 00:00:00');
        """
    )
    con.execute(
        "INSERT INTO review_items VALUES (1, 'KE', 'q1', 'b1', 'mpesa_statement', 'f.csv', 3, 'SKE1', 'KE-C0001',"
        " NULL, NULL, '{}', ?, '[]', 'new', '{}', NULL, NULL, NULL, NULL, '2026-10-05 10:00:00',"
        " '2026-10-05 10:00:00', '2026-10-05 10:00:00')",
        (json.dumps({"product_id": "KE-P00007"}),),
    )
    con.commit()
    con.close()


def test_an_older_review_database_gains_the_new_columns(settings: Settings):
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    older_database(path)

    (found,) = list_items(settings, Actor("t", "viewer", None), ReviewFilter(search="p00007"))
    assert (found.product_id, found.assignee) == ("KE-P00007", None)
    account = accounts.get_user(settings, "wanjiru")
    assert account is not None and account.digest and account.email is None


def test_names_are_masked_in_free_text_and_name_fields_but_references_stay_readable():
    details = "Pay Bill Online from +254 722 000 111 - AMINA HASSAN Acc. KE-C0011.KE-P00041"
    assert mask_field("Details", details, "254") == (
        "Pay Bill Online from **************11 - A*** H*** Acc. KE-C0011.KE-P00041"
    )
    assert mask_field("Details", "Pay Bill Online from 0712345678 - JOSÉ MWANGI", "254").endswith("- J*** M***")
    assert mask_field("Details", "Reversal of SCA2000002 Acc. KE-C0011.KE-P00041", "254") == (
        "Reversal of SCA2000002 Acc. KE-C0011.KE-P00041"
    )
    assert mask_field("Discord username", "kwame_beats", "233") == "k***"


def test_names_and_phones_a_steward_needs_not_see_are_masked_wherever_the_rail_writes_them():
    """Shown in clear to every role before: a Paystack customer's `first_name`/`last_name` and a checkout's custom
    name field inside the JSON objects kept as text, a phone written with dashes, and M-Pesa names after a contact
    followed by "Account" or "via Till", or after "to"."""
    customer = json.dumps({"first_name": "Chioma", "last_name": "Okafor", "email": "chioma@mail.example"})
    assert json.loads(mask_field("data.customer", customer, "234")) == {
        "first_name": "C***",
        "last_name": "O***",
        "email": "ch***@mail.example",
    }
    metadata = json.dumps(
        {
            "kanda_ref": "NG-C0001.NG-P00001",
            "custom_fields": [
                {"display_name": "Full name", "variable_name": "full_name", "value": "Chioma Okafor"},
                {"display_name": "Phone", "variable_name": "phone", "value": "0803-123-4567"},
            ],
        }
    )
    masked = mask_field("data.metadata", metadata, "234")
    assert "Chioma" not in masked and "4567" not in masked and "NG-C0001.NG-P00001" in masked
    assert mask_field("data.metadata", masked, "234") == masked  # masks stay idempotent
    for details, name in [
        ("Pay Bill Online from 0712-345-678 - PETER KAMAU Acc. KE-C0001.KE-P00001", "PETER KAMAU"),
        ("Pay Bill Online from 0712345678 - GRACE NJERI Account KE-C0001.KE-P00001", "GRACE NJERI"),
        ("Merchant Payment from 254712345678 - DAVID MWANGI via Till 55555", "DAVID MWANGI"),
        ("Customer Transfer to 0712345678 - JANE DOE", "JANE DOE"),
    ]:
        shown = mask_field("Details", details, "254")
        assert name not in shown and "345" not in shown, shown
    for kept in ("2026-10-05 10:00:00", "1,000,000.00", "KE-C0001.KE-P00001", "SCA2000002"):
        assert mask_field("Details", kept, "254") == kept


def test_items_enqueued_before_names_were_masked_are_masked_on_first_use(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """An older database kept payers' names in its raw records; the first kanda that opens it masks them, once,
    page by page (a page of one item here, so that every page is read)."""
    monkeypatch.setattr(db, "_UPGRADE_PAGE", 1)
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    older_database(path)
    details = "Pay Bill Online from ********78 - JANE WANJIKU Acc. KE-C0001.KE-P00007"  # phone masked, name not
    con = sqlite3.connect(path)
    con.execute("UPDATE review_items SET raw_record = ?", (json.dumps({"Details": details, "Customer Name": "Jo"}),))
    con.execute(
        "INSERT INTO review_items SELECT 2, region, 'q2', batch_id, source, source_file, 4, 'SKE2', creator_id,"
        " local_date, hold, ?, parsed, rules, status, edits, decided_by, decision_reason, applied_batch, applied_at,"
        " quarantined_at, enqueued_at, updated_at FROM review_items WHERE id = 1",
        (json.dumps({"Details": details.replace("JANE WANJIKU", "PETER KAMAU")}),),
    )
    con.commit()
    con.close()

    item = get_item(settings, Actor("t", "viewer", None), 1)
    assert item.raw_record == {
        "Details": "Pay Bill Online from ********78 - J*** W*** Acc. KE-C0001.KE-P00007",
        "Customer Name": "J***",
    }
    with sqlite3.connect(path) as raw:
        records = [r for (r,) in raw.execute("SELECT raw_record FROM review_items ORDER BY id").fetchall()]
        assert len(records) == 2 and not any("WANJIKU" in r or "KAMAU" in r for r in records)
        assert "P*** K***" in records[1]
        assert ("mask_names",) in raw.execute("SELECT name FROM review_upgrades").fetchall()


def test_items_holding_a_fee_their_rail_repeated_lose_it_on_first_use(settings: Settings):
    """An older Paystack spec booked a reversal's repeated fee; a steward's fix of such an item would load it, so the
    first kanda that opens the database takes it off (the sale's own fee stays)."""
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    older_database(path)
    reversal = {"event_type": "reversal", "amount_minor": -80_000, "fee_minor": 1_200, "net_minor": -81_200}
    sale = {"event_type": "sale", "amount_minor": 80_000, "fee_minor": 1_200, "net_minor": 78_800}
    con = sqlite3.connect(path)
    con.execute("UPDATE review_items SET source = 'paystack_webhook', parsed = ? WHERE id = 1", (json.dumps(reversal),))
    for item_id, source, parsed in ((2, "paystack_webhook", sale), (3, "razorpay_webhook", reversal)):
        con.execute(
            "INSERT INTO review_items SELECT ?, region, ?, batch_id, ?, source_file, ?, transaction_id, creator_id,"
            " local_date, hold, raw_record, ?, rules, status, edits, decided_by, decision_reason, applied_batch,"
            " applied_at, quarantined_at, enqueued_at, updated_at FROM review_items WHERE id = 1",
            (item_id, f"q{item_id}", source, item_id, json.dumps(parsed)),
        )
    con.commit()
    con.close()

    viewer = Actor("t", "viewer", None)
    assert get_item(settings, viewer, 1).parsed == {**reversal, "fee_minor": 0, "net_minor": -80_000}
    assert get_item(settings, viewer, 2).parsed == sale
    assert get_item(settings, viewer, 3).parsed == reversal  # another rail: its fee is its own
    with sqlite3.connect(path) as raw:
        names = {name for (name,) in raw.execute("SELECT name FROM review_upgrades").fetchall()}
        assert names == {"mask_names", "sale_only_fees", "yoco_event_times", "mtn_request_keys", "mask_nested_names"}


def test_yoco_items_an_older_spec_timed_by_the_payload_move_to_the_events_time(settings: Settings):
    """An older Yoco spec timed every event two hours late (the payload's South African wall time read as UTC). A
    steward's fix loads an item from its parsed fields, so the first kanda that opens the database moves a Yoco
    item's time back, with its local day and a refund's minute; another rail's item keeps its time."""
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    older_database(path)
    late = dt.datetime(2026, 10, 5, 22, 30, 1, tzinfo=dt.UTC)  # 20:30:01 UTC, 22:30 in Johannesburg
    refund = {"event_type": "refund", "occurred_at": late.isoformat(), "local_date": "2026-10-06",
              "event_ref": int(late.timestamp()) // 60, "amount_minor": None}  # fmt: skip
    con = sqlite3.connect(path)
    con.execute(
        "UPDATE review_items SET region = 'ZA', source = 'yoco', parsed = ? WHERE id = 1", (json.dumps(refund),)
    )
    con.execute(
        "INSERT INTO review_items SELECT 2, region, 'q2', batch_id, 'razorpay_webhook', source_file, 2,"
        " transaction_id, creator_id, local_date, hold, raw_record, ?, rules, status, edits, decided_by,"
        " decision_reason, applied_batch, applied_at, quarantined_at, enqueued_at, updated_at FROM review_items",
        (json.dumps(refund),),
    )
    con.commit()
    con.close()

    viewer = Actor("t", "viewer", None)
    moved = late - dt.timedelta(hours=2)
    yoco = get_item(settings, viewer, 1)
    assert yoco.parsed["occurred_at"] == moved.isoformat() and yoco.parsed["local_date"] == "2026-10-05"
    assert yoco.parsed["event_ref"] == int(moved.timestamp()) // 60 and yoco.local_date == dt.date(2026, 10, 5)
    assert get_item(settings, viewer, 2).parsed == refund


def test_mtn_items_an_older_spec_keyed_by_order_are_keyed_by_the_request_their_record_names(settings: Settings):
    """An older MTN MoMo spec keyed every record by its order (`externalId`), which a retried push repeats. A
    steward's fix loads an item from its parsed fields, so the first kanda that opens the database keys an item
    as the fixed spec reads its record: a request by its `referenceId`, money going back by the request it names;
    a refund whose record names none keeps its key (the store's quarantine does the same)."""
    path = Path(settings.app_db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    older_database(path)
    con = sqlite3.connect(path)
    items = [
        (1, {"referenceId": "req-a", "externalId": "ORD-1", "kind": "requesttopay"}, "sale"),
        (
            2,
            {"referenceId": "ref-1", "referenceIdToRefund": "req-a", "externalId": "ORD-1", "kind": "refund"},
            "refund",
        ),
        (3, {"referenceId": "ref-2", "externalId": "ORD-1", "kind": "refund"}, "refund"),
    ]
    con.execute("DELETE FROM review_items")
    for item_id, raw, event_type in items:
        con.execute(
            "INSERT INTO review_items VALUES (?, 'BJ', ?, 'b1', 'mtn_momo_collection', 'p.ndjson', ?, 'ORD-1',"
            " 'BJ-C0001', NULL, NULL, ?, ?, '[]', 'new', '{}', NULL, NULL, NULL, NULL, '2026-10-05 10:00:00',"
            " '2026-10-05 10:00:00', '2026-10-05 10:00:00')",
            (item_id, f"q{item_id}", item_id, json.dumps(raw), json.dumps({"event_type": event_type,
                                                                             "transaction_id": "ORD-1"})),
        )  # fmt: skip
    con.commit()
    con.close()

    viewer = Actor("t", "viewer", None)
    keys = [(i.transaction_id, i.parsed["transaction_id"]) for i in (get_item(settings, viewer, n) for n in (1, 2, 3))]
    assert keys == [("req-a", "req-a"), ("req-a", "req-a"), ("ORD-1", "ORD-1")]
