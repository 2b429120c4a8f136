"""Currency facts. Money is always an integer count of minor units; the exponent comes from ISO 4217, never from data.

Some rails send zero-decimal currencies multiplied by 100 anyway (Stripe for UGX), so guessing the exponent from
the numbers is exactly the bug this table prevents: such a source declares it (`amount.unit: minor_x100` in a rail
spec) instead.

The table covers every currency CLDR knows (via Babel, which is kept up to date with it), corrected to ISO 4217
where CLDR's "digits" follow everyday cash practice instead (CLDR gives IDR or HUF 0 digits; ISO 4217 gives 2).
A new region in any currency therefore needs no code here.
"""

from __future__ import annotations

from babel.numbers import get_currency_precision, list_currencies

#: ISO 4217 minor units where CLDR's `digits` differ for a currency still in circulation.
_ISO_CORRECTIONS: dict[str, int] = {
    "AFN": 2,
    "ALL": 2,
    "COP": 2,
    "HUF": 2,
    "IDR": 2,
    "IQD": 3,
    "IRR": 2,
    "KPW": 2,
    "LAK": 2,
    "LBP": 2,
    "MGA": 2,
    "MMK": 2,
    "SOS": 2,
    "SYP": 2,
    "YER": 2,
}


def _iso_4217() -> dict[str, int]:
    table = {code: get_currency_precision(code) for code in list_currencies() if len(code) == 3 and code.isupper()}
    table.update(_ISO_CORRECTIONS)
    return dict(sorted(table.items()))


#: ISO 4217 minor-unit exponents (NGN 2, UGX 0, RWF 0, XOF 0, VND 0, KWD 3, CLF 4, ...).
MINOR_UNIT_EXPONENT: dict[str, int] = _iso_4217()


def exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENT[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}: not an ISO 4217 code") from None
