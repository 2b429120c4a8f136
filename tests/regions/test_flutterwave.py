"""Flutterwave (CM, MW) read against its published format: who bore the fee.

Whether the merchant or the customer bears Flutterwave's fee is an account setting. Where the customer does,
`charged_amount` is the amount plus the fee and the merchant receives the whole amount; read as the merchant's,
`app_fee` took the fee off every such sale's net with nothing flagged.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from regions import get_region
from regions.rails import get_adapter
from tests.support.roundtrip import quarantine_rules, read_written, through_contract

REGION = get_region("CM")
ADAPTER = get_adapter(REGION.source_format)


def charge(
    payment: int,
    amount: int,
    charged: object,
    app_fee: object,
    event: str = "charge.completed",
    merchant_fee: object = 0,
) -> str:
    """A Cameroon (XAF) charge webhook, as Flutterwave delivers it (`merchant_fee` None: a delivery without it)."""
    data = {"id": payment, "tx_ref": f"kanda-{payment}", "amount": amount, "currency": "XAF", "app_fee": app_fee,
            "merchant_fee": merchant_fee, "status": "successful", "payment_type": "card",
            "created_at": "2026-10-05T09:00:00.000Z", "customer": {"email": f"b{payment}@mail.example"}}  # fmt: skip
    if charged is not None:
        data["charged_amount"] = charged
    if merchant_fee is None:
        del data["merchant_fee"]
    return json.dumps({"event": event, "data": data, "meta_data": {"kanda_ref": "CM-C0001.CM-P00001"}})


def test_a_fee_the_customer_bore_is_not_taken_off_the_sellers_net(tmp_path: Path) -> None:
    lines = [
        charge(1, 5000, 5000, 175),  # the merchant bore the fee: 175 off the net
        charge(2, 5000, 5175, 175),  # the customer paid it on top: the merchant received all 5000
        charge(3, 5000, 5100, 175),  # part of it on top: the merchant bore the other 75
        charge(4, 5000, None, 175),  # an older delivery without charged_amount: the fee as stated
        charge(5, 5000, 5300, 175),  # more on top than the whole fee: contradicts it, quarantined
        charge(6, 5000, 4900, 175),  # charged less than the amount: contradicts it, quarantined
        charge(7, 5000, "n/a", 175),  # unreadable
        charge(1, 5000, 5175, 0, event="refund.completed"),  # money back is not a sale: its fee stays as stated
    ]
    frame, _ = read_written(ADAPTER, REGION, tmp_path / "webhooks.ndjson", "".join(f"{line}\n" for line in lines))
    assert frame.select("transaction_id", "event_type", "fee_minor").rows() == [
        ("1", "sale", 175),
        ("2", "sale", 0),
        ("3", "sale", 75),
        ("4", "sale", 175),
        ("5", "sale", None),
        ("6", "sale", None),
        ("7", "sale", None),
        ("1", "refund", 0),
    ]
    split = through_contract(frame, REGION)
    for line in (5, 6, 7):
        assert quarantine_rules(split, line) == {("missing_or_unreadable", "fee_minor")}
    nets = dict(zip(split.valid["transaction_id"], split.valid["net_minor"], strict=False))
    assert (nets["2"], nets["3"]) == (5000, 4925)


def test_money_going_back_in_the_charges_shape_does_not_take_the_charges_fee_again(tmp_path: Path) -> None:
    """Flutterwave keeps its fee when it refunds (the refund states none), so the fee stays on the sale. A refund or
    lost chargeback our receiver records in the charge's shape, built from the charge, can repeat its `app_fee`:
    booked again, the creator's net lost the fee twice, a plausible figure nothing flagged."""
    lines = [
        charge(1, 5000, 5000, 175),
        charge(1, 5000, 5000, 175, event="refund.completed"),
        charge(2, 8000, 8000, 280),
        charge(2, 8000, 8000, 280, event="chargeback.lost"),
    ]
    frame, _ = read_written(ADAPTER, REGION, tmp_path / "webhooks.ndjson", "".join(f"{line}\n" for line in lines))
    split = through_contract(frame, REGION)
    assert split.quarantine.is_empty()
    assert split.valid.select("transaction_id", "event_type", "amount_minor", "fee_minor", "net_minor").rows() == [
        ("1", "sale", 5000, 175, 4825),
        ("1", "refund", -5000, 0, -5000),
        ("2", "sale", 8000, 280, 7720),
        ("2", "reversal", -8000, 0, -8000),
    ]
    assert sum(split.valid["net_minor"]) == -175 - 280  # what the creator is left with: the fees Flutterwave kept


def test_a_sale_with_a_white_label_markup_is_quarantined_for_its_fee(tmp_path: Path) -> None:
    """`merchant_fee` is a white-label subdomain owner's markup (Flutterwave's v2 fee docs), 0 in every v3 sample;
    v3 does not say whether a non-zero one is inside `app_fee`. Booking `app_fee` alone could take too little off
    the creator's net, a plausible figure: the sale is quarantined for its fee, with the markup in its raw record.
    Absent (older deliveries), 0 or "0", it changes nothing; money going back keeps no fee either way."""
    lines = [
        charge(1, 5000, 5000, 175, merchant_fee=0),
        charge(2, 5000, 5000, 175, merchant_fee="0"),
        charge(3, 5000, 5000, 175, merchant_fee=None),  # an older delivery without the field
        charge(4, 5000, 5000, 175, merchant_fee=50),
        charge(5, 5000, 5000, 175, merchant_fee="12.5"),
        charge(6, 5000, 5175, 175, merchant_fee=50),  # the customer bore the fee: still unknown what it holds
        charge(4, 5000, 5000, 0, event="refund.completed", merchant_fee=50),
    ]
    frame, _ = read_written(ADAPTER, REGION, tmp_path / "webhooks.ndjson", "".join(f"{line}\n" for line in lines))
    assert frame.select("transaction_id", "event_type", "fee_minor").rows() == [
        ("1", "sale", 175),
        ("2", "sale", 175),
        ("3", "sale", 175),
        ("4", "sale", None),
        ("5", "sale", None),
        ("6", "sale", None),
        ("4", "refund", 0),
    ]
    split = through_contract(frame, REGION)
    for line in (4, 5, 6):
        assert quarantine_rules(split, line) == {("missing_or_unreadable", "fee_minor")}
    (raw,) = split.quarantine.filter(pl.col("source_row") == 4)["raw_record"]
    assert json.loads(raw)["data.merchant_fee"] == "50"  # what the steward sees it for
    assert sorted(split.valid["source_row"]) == [1, 2, 3, 7]
