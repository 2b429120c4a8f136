"""Mapping rules fixed after rows were stored under them: what a fixed rule would have given an older row.

A rail's spec fix changes what new files load; rows an older kanda stored (events, quarantined rows' parsed fields,
review items) are corrected once where the row itself shows what the fix gives (`kanda.regional.upgrades` for a
store, `kanda.review.db` for the review database).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

#: Rails whose money going back repeated the sale's fee before their specs read the fee on sales only: a Paystack
#: reversal re-sends the charge with its `fees`, a Chapa refund document in the transaction's shape can repeat
#: its `charge`, and a Flutterwave refund or lost chargeback built from the charge can repeat its `app_fee`. Their
#: specs now give every event but a sale fee 0, so net = amount.
SALE_ONLY_FEE_SOURCES = ("paystack_webhook", "chapa", "flutterwave")


def repeats_a_sale_fee(source: str | None, event_type: str | None, fee_minor: object) -> bool:
    """Whether a row's fee is one its rail's fixed spec would not have booked (see SALE_ONLY_FEE_SOURCES)."""
    return source in SALE_ONLY_FEE_SOURCES and event_type not in (None, "sale") and fee_minor not in (None, 0)


def without_repeated_fee(parsed: dict) -> dict:
    """Parsed contract fields with the repeated fee taken off: fee 0, net = amount (null when the amount is)."""
    return {**parsed, "fee_minor": 0, "net_minor": parsed.get("amount_minor")}


#: Yoco's payload `createdDate` is South African wall time marked `Z` (its documented sample event is created two
#: hours before the payment it reports), and an older spec read it as UTC: every Yoco event two hours late. The
#: spec reads the event's own time now; a stored event is moved back by the two hours, which puts it on its local
#: day and gives a refund the minute (its `event_ref`) that the same webhook delivered again now gets.
YOCO_SOURCE = "yoco"
YOCO_PAYLOAD_AHEAD = dt.timedelta(hours=2)


def at_yoco_event_time(parsed: dict, zone: str, refund_ref: Callable[[dt.datetime], int | None]) -> dict:
    """Parsed contract fields of a Yoco row an older spec timed by its payload, moved to the event's time.

    `refund_ref` is the contract's reference for a refund at a time (`quality.contract.event_ref_value`), passed in
    because the contract sits a layer above the rails' rules.
    """

    text = parsed.get("occurred_at")
    if not isinstance(text, str):
        return parsed
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - YOCO_PAYLOAD_AHEAD
    except ValueError:
        return parsed
    moved = {
        **parsed,
        "occurred_at": when.isoformat(),
        "local_date": when.astimezone(ZoneInfo(zone)).date().isoformat(),
    }
    if parsed.get("event_type") == "refund" and parsed.get("event_ref"):
        moved["event_ref"] = refund_ref(when)
    return moved


#: MTN MoMo Collection: an older spec keyed every record by `externalId`, which MTN does not hold unique and our
#: checkout repeats when a customer retries a push: two attempts of one order were one payment. The spec keys a
#: request-to-pay by its own `referenceId` now, and money going back by the `referenceIdToRefund` it names.
MTN_SOURCE = "mtn_momo_collection"


def mtn_request_key(event_type: str | None, raw: dict) -> str | None:
    """The transaction id the fixed MTN spec reads from a record: None where the record names none (a refund an
    older poller logged without `referenceIdToRefund`), which the caller resolves or leaves as it was."""
    name = "referenceId" if event_type == "sale" else "referenceIdToRefund" if event_type else None
    key = raw.get(name) if name else None
    return key.strip() if isinstance(key, str) and key.strip() else None


#: Flutterwave: an older spec booked the whole `app_fee` as the seller's, also where the customer bore it
#: (`charged_amount` above `amount`); the spec takes the customer's part off now (`fields.charged`).
FLUTTERWAVE_SOURCE = "flutterwave"

#: Gumroad-style exports: an older spec left the affiliate's commission (`Affiliate commission`) out of the fee,
#: though the seller pays it out of the sale (`fields.deductions` now).
GUMROAD_SOURCE = "platform_csv"
