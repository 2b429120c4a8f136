"""What one creator's daily report says, as plain data: the seam between gathering figures and rendering them.

`kanda.reports.data` fills these from a region's store (line-level data never leaves the region);
`kanda.reports.message` turns one into an email. Money stays in integer minor units of `currency` until the
renderer formats it for the creator's locale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DayFigures:
    """A creator's local day in minor units: the same definitions as `creator_daily` (cash basis by local day)."""

    orders: int
    gross_minor: int
    refunds_minor: int
    reversals_minor: int
    fees_minor: int
    net_minor: int


@dataclass(frozen=True)
class ProductLine:
    product_id: str
    title: str
    orders: int
    net_minor: int


@dataclass(frozen=True)
class TrendPoint:
    local_date: dt.date
    net_minor: int


@dataclass(frozen=True)
class SaleLine:
    """One row of the CSV attachment: a successful money movement of the creator's day, the buyer masked.

    Only lines that count in the figures are listed (status `success`, on the local day), so the file's `net`
    column adds up to the report's net; pending and failed attempts are only counted (`other_attempts`).
    """

    occurred_at_local: dt.datetime
    transaction_id: str
    product_id: str
    product_title: str
    event_type: str
    status: str
    channel: str | None
    amount_minor: int
    fee_minor: int
    buyer: str | None  # masked buyer reference, never an email or phone


@dataclass(frozen=True)
class HeldRecords:
    """Records of this creator held for review on that day, so missing money is explained, not silent."""

    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # rule -> rows


@dataclass(frozen=True)
class Restatement:
    """A recent day whose net changed after its report went out (a late refund, a released record, ...)."""

    local_date: dt.date
    reported_net_minor: int  # what the delivered report said
    net_minor: int  # what the day says now


@dataclass(frozen=True)
class CreatorReport:
    region: str
    creator_id: str
    creator_name: str
    email: str
    language: str  # "en", "sw", ...
    locale: str  # Babel locale, e.g. "sw_TZ"
    currency: str  # ISO 4217
    exponent: int  # ISO 4217 minor-unit exponent (0 for UGX, XOF, ...)
    zone: str  # IANA zone of the region
    local_date: dt.date
    day: DayFigures
    previous_day: DayFigures | None
    seven_day_average_net_minor: int | None  # mean net of the 7 local days before `local_date`
    net_usd_minor: int | None  # USD cents; None when no FX rate was known on or before the day
    fx_date: dt.date | None
    top_products: list[ProductLine]
    trend: list[TrendPoint]  # the 30 local days ending on `local_date`, zeros included
    sales: list[SaleLine]  # the money movements that make up `day`, nothing else
    held: HeldRecords
    # Payments of the day that did not succeed on it (pending or failed attempts, each once): told, not listed.
    other_attempts: int = 0
    # Earlier days (of the last 7) whose delivered report stated another net; filled only when delivering.
    restated: list[Restatement] = field(default_factory=list)
    # `creator_daily.fees_stated` of the day: False when some of the day's money came through a rail that states
    # no fee in its files (M-Pesa statements, Wave sessions, ...). Those payments' fees are 0 only because nothing
    # was stated, and the report says so instead of showing a fee of 0 (see `fees_partly_stated`).
    fees_stated: bool = True

    @property
    def fees_partly_stated(self) -> bool:
        """Some of the day's fees were stated and some not: a day mixing a rail that states fees (Paystack, Stripe)
        with one that does not (an M-Pesa statement).

        The rollup keeps only `bool_and` over the events' rails, so this is read from it and the day's fees: an
        event whose rail stated no fee carries fee 0 (its reader writes 0, a steward's fix with a fee there is
        refused, and the stored events' suite checks `fee_minor = 0` for them), so fees other than 0 on a day
        that is not all stated are the stated ones. Net is after them and before the others; showing "not
        reported" there left a column that did not add up to Net and hid that fees were taken. A mixed day whose
        stated fees sum to 0 reads as not stated, which still adds up: no fee was taken from the Net.
        """
        return not self.fees_stated and self.day.fees_minor != 0
