"""A rail's own notation in the fix form: a steward types what the file says, ingestion's parsing reads it.

A steward fixing `12,3O0.00` wants to type `12,300.00`, not work out `1230000`; fixing an M-Pesa time they copy
`05/10/2026 21:30` from the statement, in Nairobi time, not an ISO instant in UTC. So the form's money and time
fields take the rail's notation, and this module converts them with the very expressions the rail's reader uses
(`regions.parsing.major_to_minor`, `utc_from_local` with the reader's own format list, `bkash_time_to_utc`, ...):
there is no second parser whose idea of "12.300,00" could differ from ingestion's. What it will store is shown back
("1230000 minor units (KES 12,300.00)", "2026-10-05 18:30 UTC") before anything is saved.

The review service keeps its canonical edit notation (integer minor units, ISO instants): conversion happens here,
at the edge, and the CLI keeps working in canonical terms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from regions import RegionConfig, get_region
from regions.parsing import int_string, major_to_minor, naive_datetime, utc_from_iso, utc_from_local

if TYPE_CHECKING:
    from regions.spec.model import RailSpec

#: Form field -> the contract column it fills (the money fields are typed in the rail's notation).
MONEY_FIELDS = {"amount": "amount_minor", "fee": "fee_minor", "net": "net_minor"}
#: An amount text that says nothing went back ("0", "0.00", "-0,00"), skipped for the next field (`raw_text`).
_ZERO = re.compile(r"\s*[-+]?[0.,\s]*0[0.,\s]*")
TIME_FIELD = "occurred_at"
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class Notation:
    """How one rail writes money and time, and where its raw record keeps them."""

    source_format: str
    #: major units as text ("12,300.00") or minor units as text ("1230000", Paystack's kobo)
    minor_units_in_file: bool
    #: the reader's time formats, and whether the file's times are the region's local time (else UTC)
    time_formats: tuple[str, ...]
    local_time: bool
    #: raw fields (as the file names them) holding each column's text, first found wins
    raw_fields: dict[str, tuple[str, ...]]
    #: a reader-specific time expression (bKash's "GMT+0600", Paystack's ISO), instead of `time_formats`
    time_expr: Callable[[pl.Expr], pl.Expr] | None = None
    #: minor units in the file per minor unit stored (VNPAY writes VND x100)
    divisor: int = 1
    #: the decimal mark of major amounts; None: decided by the record's own amount text (a comma-decimal export)
    decimal: str | None = "."
    #: where one event of a row reads a column from fields of its own ((event_type, column) -> fields): a Stripe
    #: row's refund has its own amount and date
    event_fields: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


def _bkash_time(expr: pl.Expr) -> pl.Expr:
    from regions.rails.bkash.times import bkash_time_to_utc

    return bkash_time_to_utc(expr)


def _reader_formats(rail: str) -> tuple[str, ...]:
    """The time formats the rail's reader tries, taken from the reader itself."""
    if rail == "mpesa":
        from regions.rails.mpesa.reader import _TIME_FORMATS

        return tuple(_TIME_FORMATS)
    from regions.rails import spec_rail_path  # a spec rail: its formats are in its spec.yaml
    from regions.spec.model import load_spec

    path = spec_rail_path(rail)
    assert path is not None, f"rail {rail!r} has neither a reader nor a spec"
    return tuple(load_spec(path).time.formats)


def notation_for(source_format: str) -> Notation:
    if source_format == "mpesa_statement":
        return Notation(
            source_format,
            False,
            _reader_formats("mpesa"),
            True,
            {"amount_minor": ("Paid In", "Withdrawn", "Paid Out"), "occurred_at": ("Completion Time",)},
        )
    if source_format == "momo_export":
        return Notation(
            source_format, False, _reader_formats("momo"), True, {"amount_minor": ("Amount",), "fee_minor": ("Fee",),
                                                                  "occurred_at": ("Date",)}
        )  # fmt: skip
    if source_format == "jazzcash_ipn":
        # the rail's format (regions/rails/jazzcash/spec.yaml: pp_TxnDateTime "%Y%m%d%H%M%S", local)
        return Notation(
            source_format,
            True,
            ("%Y%m%d%H%M%S",),
            True,
            {"amount_minor": ("pp_Amount",), "occurred_at": ("pp_TxnDateTime",)},
        )
    if source_format == "paystack_webhook":
        # the fields regions/rails/paystack/spec.yaml reads: a charge's price is `requested_amount` (`amount` holds
        # the fee a customer bore); a reversal (a `reversed` charge, or a dispute resolved against the merchant,
        # whose record has no amount, paid_at or status of a charge) is `refund_amount` at `resolvedAt` where stated,
        # else the charge's `updated_at`, and what a steward gives a dispute a status from is its `resolution`
        return Notation(
            source_format,
            True,
            (),
            False,
            {"amount_minor": ("data.requested_amount", "data.amount", "requested_amount", "amount"),
             "fee_minor": ("data.fees", "fees"), "status": ("data.status", "status"),
             "occurred_at": ("data.paid_at", "data.created_at", "paid_at", "created_at")},
            utc_from_iso,
            event_fields={
                ("reversal", "amount_minor"): ("data.requested_amount", "data.amount", "data.refund_amount"),
                ("reversal", "occurred_at"): ("data.resolvedAt", "data.updated_at"),
                ("reversal", "status"): ("data.resolution", "data.status"),
            },
        )  # fmt: skip
    if source_format == "bkash_execute":
        return Notation(
            source_format,
            False,
            (),
            False,
            {"amount_minor": ("amount",), "occurred_at": ("paymentExecuteTime", "paymentCreateTime")},
            _bkash_time,
            # the times the spec reads by event: money going back at its completedTime, a refund's own amount
            event_fields={
                ("refund", "occurred_at"): ("completedTime", "paymentExecuteTime"),
                ("reversal", "occurred_at"): ("completedTime", "paymentExecuteTime"),
                ("refund", "amount_minor"): ("amount", "refundAmount"),
            },
        )
    if source_format == "stripe_payments":
        # the reader's formats (regions/rails/stripe/reader.py: naive_datetime(created, [...]) in UTC)
        return Notation(
            source_format,
            False,
            ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"),
            False,
            {"amount_minor": ("Amount",), "fee_minor": ("Fee",), "occurred_at": ("Created date (UTC)", "Created")},
            # a refund's own amount, and its date where the export states one (else the charge's, as the spec reads);
            # a dispute's amount where the export states it
            event_fields={
                ("refund", "amount_minor"): ("Amount Refunded",),
                ("reversal", "amount_minor"): ("Disputed Amount", "Amount"),
                ("refund", "occurred_at"): ("Refunded date (UTC)", "Created date (UTC)", "Created"),
                # money going back has no fee of its own (spec.yaml `events`): not the charge's Fee
                ("refund", "fee_minor"): (),
                ("reversal", "fee_minor"): (),
            },
        )
    if source_format == "platform_csv":
        # the rail's format (regions/rails/gumroad/spec.yaml: "Purchase Date" + " " + "Purchase Time", UTC); the raw
        # record keeps the headers as printed: the region's currency (TZ is this rail's region), or `($)` in rows an
        # older kanda quarantined before it refused dollar files
        return Notation(
            source_format,
            False,
            ("%Y-%m-%d %H:%M:%S",),
            False,
            {"amount_minor": ("Sale Price ($)", "Sale Price (TZS)", "Sale Price"),
             "fee_minor": ("Fees ($)", "Fees (TZS)", "Fees"),
             "net_minor": ("Net Total ($)", "Net Total (TZS)", "Net Total"), "occurred_at": ("Purchase Date",)},
            # a row's refund is its Partial Refund, or the whole Sale Price when fully refunded (a zero partial
            # refund is skipped); money going back has no fee and no net of its own (spec.yaml `events`): the sale's
            # Fees and Net Total were offered for it, and a steward typing them back stored the sale's figures
            event_fields={
                ("refund", "amount_minor"): ("Partial Refund (TZS)", "Partial Refund ($)", "Partial Refund",
                                             "Sale Price (TZS)", "Sale Price ($)", "Sale Price"),
                ("refund", "fee_minor"): (), ("refund", "net_minor"): (),
                ("reversal", "fee_minor"): (), ("reversal", "net_minor"): (),
            },
        )  # fmt: skip
    return _spec_notation(source_format)


def _spec_notation(source_format: str) -> Notation:
    """The notation a declarative rail's spec states (its money unit and decimal mark, its time formats and zone,
    the fields it reads them from), for every spec rail the hand-written ones above do not cover, inline ones too."""
    from regions.rails import get_adapter
    from regions.spec.engine import SpecAdapter

    adapter = get_adapter(source_format)
    if not isinstance(adapter, SpecAdapter):
        raise ValueError(f"no notation known for source format {source_format!r}")
    spec = adapter.spec
    fields = spec.fields
    raw = {
        column: _raw_names(spec, source)
        for column, source in (
            ("amount_minor", fields.amount),
            ("fee_minor", fields.fee),
            ("net_minor", fields.net),
            ("occurred_at", fields.occurred_at),
        )
        if source is not None
    }
    formats = tuple(f for f in spec.time.formats if f not in ("iso", "epoch_s", "epoch_ms"))
    return Notation(
        source_format,
        spec.amount.unit != "major",
        formats,
        spec.time.zone == "local",
        raw,
        time_expr=None if formats else utc_from_iso,
        divisor=spec.amount.scale_down if spec.amount.unit != "major" else 1,
        decimal=None if spec.amount.decimal == "auto" else spec.amount.decimal,
    )


def _raw_names(spec: RailSpec, source: object) -> tuple[str, ...]:
    """Where a spec source's text sits in a raw record: each column it reads (`columns_of`, the engine's own walk),
    under the spellings its exports print (header aliases) and its canonical name."""
    from regions.spec.engine import columns_of

    names: list[str] = []
    for column in columns_of(source):
        for name in [*spec.header.aliases.get(column, []), column]:
            if "{" not in name and name not in names:  # a `{currency}` spelling names no single header
                names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class RailContext:
    """A record's region and rail, and the decimal mark its file uses (Stripe's comma-decimal locale writes
    "1.234,50"; the reader decides by the file's delimiter, which the raw record no longer shows, so the record's
    own amount text decides here)."""

    region: RegionConfig
    notation: Notation
    decimal: str

    @classmethod
    def of(cls, region: str, raw_record: dict) -> RailContext:
        config = get_region(region)
        notation = notation_for(config.source_format)
        decimal = notation.decimal or "."
        if notation.source_format == "stripe_payments" or notation.decimal is None:
            fields = ("Amount", "Fee") if notation.source_format == "stripe_payments" else ()
            fields += notation.raw_fields.get("amount_minor", ()) + notation.raw_fields.get("fee_minor", ())
            sample = str(next((raw_record[f] for f in fields if raw_record.get(f) not in (None, "")), ""))
            decimal = "," if re.search(r",\d{1,2}$", sample.strip()) else "."
        return cls(config, notation, decimal)

    # ------------------------------------------------------------------------------------------------ reading
    def parse_money(self, text: str) -> int | None:
        """Minor units of `text` as the rail writes money, by the reader's own parser; None if unreadable."""
        expr = pl.col("t")
        if self.notation.minor_units_in_file:
            units, divisor = int_string(expr), self.notation.divisor
            value = units if divisor == 1 else pl.when(units % divisor == 0).then(units // divisor)
        else:
            value = major_to_minor(expr, self.region.exponent, decimal=self.decimal)
        return pl.DataFrame({"t": [text]}, schema={"t": pl.String}).select(value).item()

    def parse_time(self, text: str) -> dt.datetime | None:
        """The UTC instant of `text`: an ISO time with an offset, or a time as the file writes it (the region's
        local time where the file is local); None when it is neither, or names an instant outside Python's calendar
        (years 1 to 9999 in UTC: `0001-01-01T00:00:00+05:00` is in year 0 there)."""
        try:
            return self._parse_time(text)
        except (ValueError, OverflowError):
            return None

    def _parse_time(self, text: str) -> dt.datetime | None:
        frame = pl.DataFrame({"t": [text.strip()]}, schema={"t": pl.String})
        if _OFFSET.search(text.strip()):
            iso = frame.select(utc_from_iso(pl.col("t").str.replace(" ", "T"))).item()
            if iso is not None:
                return iso
        n = self.notation
        if n.time_expr is not None:
            expr = n.time_expr(pl.col("t"))
        elif n.local_time:
            expr = utc_from_local(pl.col("t"), list(n.time_formats), self.region.zone)
        else:
            expr = naive_datetime(pl.col("t"), list(n.time_formats)).dt.replace_time_zone("UTC")
        return frame.select(expr).item()

    # ------------------------------------------------------------------------------------------------ writing
    def money_text(self, minor: int) -> str:
        """Minor units as the rail writes them ("12,300.00"; Paystack "1230000")."""
        if self.notation.minor_units_in_file:
            return str(minor * self.notation.divisor)
        return self.major_text(minor)

    def major_text(self, minor: int) -> str:
        exp = self.region.exponent
        sign = "-" if minor < 0 else ""
        whole, frac = divmod(abs(minor), 10**exp)
        thousands = "," if self.decimal == "." else "."
        text = f"{whole:,}".replace(",", thousands)
        return f"{sign}{text}{self.decimal}{frac:0{exp}d}" if exp else f"{sign}{text}"

    def time_text(self, when: dt.datetime) -> str:
        """A UTC instant as the file writes it (local time in the reader's first format, or ISO)."""
        n = self.notation
        if n.time_expr is not None or not n.time_formats:
            return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        zone = ZoneInfo(self.region.zone) if n.local_time else dt.UTC
        return when.astimezone(zone).strftime(n.time_formats[0].replace("%.f", ""))

    def time_hint(self) -> str:
        n = self.notation
        if n.time_expr is not None or not n.time_formats:
            return "as in the file, e.g. 2026-10-05T18:30:00Z"
        example = dt.datetime(2026, 10, 5, 21, 30).strftime(n.time_formats[0].replace("%.f", ""))
        where = f"{self.region.zone} local time" if n.local_time else "UTC"
        return f"as in the file, e.g. {example} ({where})"

    def money_hint(self) -> str:
        if self.notation.minor_units_in_file:
            return f"minor units as in the file, e.g. {1230000}"
        return f"{self.region.currency} as in the file, e.g. {self.major_text(1230000)}"

    def will_store_money(self, minor: int) -> str:
        return f"{minor} minor units ({self.region.currency} {self.major_text(minor)})"

    @staticmethod
    def will_store_time(when: dt.datetime) -> str:
        return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def raw_text(self, raw_record: dict, column: str, event_type: str | None = None) -> str | None:
        """The text the file had for `column` of the row's `event_type` event, if the raw record holds it: an event
        with fields of its own reads only those (none: the event has no such figure in the file), and money going
        back skips a zero amount (Gumroad's Partial Refund of a full refund) for the next field."""
        own = (event_type or "", column)
        events = self.notation.event_fields
        fields = events[own] if own in events else self.notation.raw_fields.get(column, ())
        going_back = event_type not in (None, "sale") and column == "amount_minor"
        for key in fields:
            value = raw_record.get(key)
            if value in (None, "") or (going_back and _ZERO.fullmatch(str(value))):
                continue
            return str(value)
        return None


@dataclass
class Converted:
    """A form's rail-notation values as canonical edits, what each will store, and what could not be read."""

    edits: dict[str, str]
    will_store: dict[str, str]
    errors: dict[str, str]


def convert(ctx: RailContext, form: dict[str, str]) -> Converted:
    """Canonical edits from form text: money fields (`amount`, `fee`, `net`) and `occurred_at` in the rail's
    notation; every other field as typed. An unreadable money or time value is reported, not guessed."""
    edits: dict[str, str] = {}
    will_store: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, text in form.items():
        text = "" if text is None else str(text)
        if name in MONEY_FIELDS:
            column = MONEY_FIELDS[name]
            if not text.strip():
                edits[column] = ""
                continue
            minor = ctx.parse_money(text)
            if minor is None:
                errors[column] = f"cannot read {text!r}: {ctx.money_hint()}"
                continue
            edits[column] = str(minor)
            will_store[column] = ctx.will_store_money(minor)
        elif name == TIME_FIELD:
            if not text.strip():
                edits[name] = ""
                continue
            when = ctx.parse_time(text)
            if when is None:
                errors[name] = (
                    f"cannot read {text!r}: a time {ctx.time_hint()}, or an ISO time with an offset such as"
                    " 2026-10-05T10:00:00Z"
                )
                continue
            edits[name] = when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            will_store[name] = ctx.will_store_time(when)
        else:
            edits[name] = text
    return Converted(edits, will_store, errors)
