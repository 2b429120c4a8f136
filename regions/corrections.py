"""Mapping rules fixed after rows were stored under them: what a fixed rule would have given an older row.

A rail's spec fix changes what new files load; rows an older kanda stored (events, quarantined rows' parsed fields,
review items) are corrected once where the row itself shows what the fix gives (`kanda.regional.upgrades` for a
store, `kanda.review.db` for the review database).
"""

from __future__ import annotations

#: Rails whose money going back repeated the sale's fee before their specs read the fee on sales only: a Paystack
#: reversal re-sends the charge with its `fees`, and a Chapa refund document in the transaction's shape can repeat
#: its `charge`. Their specs now give every event but a sale fee 0, so net = amount.
SALE_ONLY_FEE_SOURCES = ("paystack_webhook", "chapa")


def repeats_a_sale_fee(source: str | None, event_type: str | None, fee_minor: object) -> bool:
    """Whether a row's fee is one its rail's fixed spec would not have booked (see SALE_ONLY_FEE_SOURCES)."""
    return source in SALE_ONLY_FEE_SOURCES and event_type not in (None, "sale") and fee_minor not in (None, 0)


def without_repeated_fee(parsed: dict) -> dict:
    """Parsed contract fields with the repeated fee taken off: fee 0, net = amount (null when the amount is)."""
    return {**parsed, "fee_minor": 0, "net_minor": parsed.get("amount_minor")}
