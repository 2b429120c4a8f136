"""Currency facts. Money is always an integer count of minor units; the exponent comes from ISO 4217, never from data.

Some rails send zero-decimal currencies multiplied by 100 anyway (Stripe for UGX), so guessing the exponent from
the numbers is exactly the bug this table prevents.
"""

from __future__ import annotations

# ISO 4217 minor-unit exponents for the currencies kanda handles.
MINOR_UNIT_EXPONENT: dict[str, int] = {
    "NGN": 2,
    "GHS": 2,
    "KES": 2,
    "TZS": 2,
    "UGX": 0,
    "PKR": 2,
    "BDT": 2,
    "XOF": 0,
    "EGP": 2,
    "USD": 2,
}


def exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENT[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}: add its ISO 4217 exponent to regions.money") from None
