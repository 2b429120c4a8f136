"""The rail spec: one YAML document that says how a rail's native file maps to the sale contract.

Operators onboard a country by describing its files, not by writing a parser, so the spec is the whole interface:
it is validated on load with pydantic (`extra="forbid"`: a misspelt key is an error, not a silently ignored
line) and every error names the file, the line and the key path, because the person reading it is editing YAML,
not Python. `kanda regions schema` exports the JSON Schema so editors can complete and check specs as they type.

A *source* says where a value comes from: a column (a plain string is a column name), a fixed value, or a small
set of named transforms (split, regex capture, JSON path, lookup table, coalesce, concat, case). Columns are named
by their canonical name (a key of `header.aliases`) or by the header as printed; in NDJSON by a dotted JSON path
(`data.amount`). `@event_type` and `@status` name the values the spec already derived, so an amount can depend on
the event (Stripe's `Amount` for sales, `Amount Refunded` for refunds).

This module imports nothing from kanda or the rest of `regions`, so region configs can embed a spec.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from regions.yamlfile import SpecError, node_lines, read_yaml  # noqa: F401 - re-exported

EventType = Literal["sale", "refund", "reversal", "chargeback"]
Status = Literal["pending", "success", "failed"]

#: The keys that tell one kind of source from another.
SOURCE_KINDS = ("column", "value", "split", "regex", "json", "lookup", "coalesce", "concat", "case")


def _text_keys(value: Any) -> Any:
    """Numbers as keys ("0"/"1" flags written unquoted) are their text; YAML 1.1 booleans (yes/no/on/off) are
    ambiguous, so they must be quoted."""
    if not isinstance(value, dict):
        return value
    for key in value:
        if isinstance(key, bool):
            raise ValueError(f"key {key!r} was read as a boolean (YAML reads yes/no/on/off so): quote it")
    return {str(k): v for k, v in value.items()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSource(_Strict):
    column: str = Field(min_length=1, description="A header (canonical alias or as printed) or a JSON path.")
    missing: str | None = Field(
        None, description="The value when the file has no such column (older exports); the column is then optional."
    )


class ValueSource(_Strict):
    value: str | int | None = Field(description="A fixed value for every row.")


class SplitArgs(_Strict):
    of: Source
    separator: str = Field(min_length=1)
    index: int = Field(description="0-based part; negative counts from the end. Missing part: null.")


class SplitSource(_Strict):
    split: SplitArgs


class RegexArgs(_Strict):
    of: Source
    pattern: str
    group: int | str = Field(1, description="Capture group number or name; no match: null.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern


class RegexSource(_Strict):
    regex: RegexArgs


class JsonArgs(_Strict):
    of: Source
    path: str = Field(pattern=r"^\$", description="JSONPath into a JSON-text value, e.g. `$.kanda_ref`.")


class JsonSource(_Strict):
    json_: JsonArgs = Field(alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LookupArgs(_Strict):
    of: Source
    table: dict[str, str | None] = Field(description="Value (compared trimmed, case-insensitive) -> result.")
    default: str | None = Field(None, description="Result for values not in the table (null: quarantined).")

    _keys = field_validator("table", mode="before")(lambda v: _text_keys(v))


class LookupSource(_Strict):
    lookup: LookupArgs


class CoalesceSource(_Strict):
    coalesce: list[Source] = Field(min_length=1, description="The first non-empty of these.")


class ConcatArgs(_Strict):
    parts: list[Source] = Field(min_length=1)
    separator: str = ""


class ConcatSource(_Strict):
    concat: ConcatArgs


class CaseArgs(_Strict):
    of: Source
    when: dict[str, Source] = Field(description="Value of `of` (exact) -> source.")
    default: Source | None = None
    missing: Source | None = Field(None, description="When `of` is null; default: `default`.")

    _keys = field_validator("when", mode="before")(lambda v: _text_keys(v))


class CaseSource(_Strict):
    case: CaseArgs


def _source_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "name"
    if isinstance(value, dict):
        kinds = [k for k in value if k in SOURCE_KINDS]
        return kinds[0] if len(kinds) == 1 else None
    if isinstance(value, BaseModel):
        return next(k for k in SOURCE_KINDS if k in type(value).model_fields or f"{k}_" in type(value).model_fields)
    return None


Source = Annotated[
    Annotated[str, Tag("name")]
    | Annotated[ColumnSource, Tag("column")]
    | Annotated[ValueSource, Tag("value")]
    | Annotated[SplitSource, Tag("split")]
    | Annotated[RegexSource, Tag("regex")]
    | Annotated[JsonSource, Tag("json")]
    | Annotated[LookupSource, Tag("lookup")]
    | Annotated[CoalesceSource, Tag("coalesce")]
    | Annotated[ConcatSource, Tag("concat")]
    | Annotated[CaseSource, Tag("case")],
    Discriminator(
        _source_kind,
        custom_error_type="source",
        custom_error_message="a source is a column name or a mapping with exactly one of: " + ", ".join(SOURCE_KINDS),
    ),
]


#: The values the engine derives for each row (`fields.event_type` and `fields.status`, else the vocabulary), which
#: sources read by these names: Stripe's amount is `Amount` for a sale and `Amount Refunded` for a refund.
DERIVED_VALUES = ("@event_type", "@status")


def derived_reads(*sources: Any) -> list[str]:
    """The derived values (`@event_type`, `@status`) that sources or conditions read, nested ones included.

    The engine derives them once a row is known to be data and reads them after: a source that is itself read to
    derive them (a vocabulary's word, an ignore rule, the event type, the status, the reference beside them) would
    read a value that does not exist yet, which polars reports as a missing column. The model refuses such a spec
    on load, naming the key, instead.
    """
    found: list[str] = []

    def walk(src: Any) -> None:
        if src is None or isinstance(src, ValueSource):
            return
        if isinstance(src, str):
            if src in DERIVED_VALUES and src not in found:
                found.append(src)
        elif isinstance(src, ColumnSource):
            walk(src.column)
        elif isinstance(src, Condition):
            walk(src.of)
            for inner in [*(src.all or []), *(src.any or []), src.not_]:
                walk(inner)
        elif isinstance(src, CoalesceSource):
            for item in src.coalesce:
                walk(item)
        elif isinstance(src, ConcatSource):
            for item in src.concat.parts:
                walk(item)
        elif isinstance(src, CaseSource):
            for item in [src.case.of, *src.case.when.values(), src.case.default, src.case.missing]:
                walk(item)
        elif isinstance(src, SplitSource | RegexSource | JsonSource | LookupSource):
            args = {SplitSource: "split", RegexSource: "regex", JsonSource: "json_", LookupSource: "lookup"}
            walk(getattr(src, args[type(src)]).of)

    for src in sources:
        walk(src)
    return found


def _not_derived(where: str, *sources: Any) -> None:
    read = derived_reads(*sources)
    if read:
        raise ValueError(
            f"reads {' and '.join(read)}, which is derived after {where}; read the column it is derived from instead"
        )


class Header(_Strict):
    search_lines: int = Field(30, ge=1, description="How many lines may precede the header (report titles).")
    aliases: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Canonical column -> header spellings seen over time, compared ignoring case, spaces and "
        "punctuation. `{currency}` stands for the region's currency code; a file whose such column names another "
        "currency, `Sale Price (USD)`, is refused as another region's (`($)` is a platform's fixed label).",
    )
    optional: list[str] = Field(default_factory=list, description="Referenced columns that may be absent (null).")
    present: Literal["any", "all"] = Field(
        "any",
        description="JSON lines: the first 100,000 records of a file must hold `any` (default) or `all` of the "
        "required fields, else the file is refused as another rail's.",
    )


class Condition(_Strict):
    """A test on a row: one check on one source (`of`), or `all` / `any` / `not` of conditions.

    A check on a missing value is false (so `not` of it is true): an absent optional flag column is an unset flag.
    `nonzero` reads the value as an amount: true when it is given and is not zero; text that does not parse counts
    as given, so an unreadable refund becomes a refund of unknown size (quarantined), never "nothing refunded".
    """

    of: Source | None = None
    equals: str | None = None
    one_of: list[str] | None = None
    matches: str | None = None
    empty: bool | None = None
    missing: bool | None = Field(None, description="The value is absent (null); an empty string is not missing.")
    nonzero: bool | None = None
    is_header: bool | None = Field(None, description="The cell repeats its own header (a repeated page header).")
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(None, alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_condition(self) -> Condition:
        checks = [
            k
            for k in ("equals", "one_of", "matches", "empty", "missing", "nonzero", "is_header")
            if getattr(self, k) is not None
        ]
        combined = [k for k in ("all", "any", "not_") if getattr(self, k) is not None]
        if combined:
            if checks or self.of is not None or len(combined) != 1:
                raise ValueError("a condition is either `of` with one check, or exactly one of: all, any, not")
            return self
        if self.of is None or len(checks) != 1:
            raise ValueError(
                "a condition needs `of` and exactly one of: equals, one_of, matches, empty, missing, nonzero, is_header"
            )
        if self.matches is not None:
            re.compile(self.matches)
        return self


#: An ignore rule is a condition: rows for which it holds are structure, not data.
IgnoreRule = Condition


class Amount(_Strict):
    unit: Literal["major", "minor", "minor_x100"] = Field(
        description="major: '1,234.50' in the currency's units; minor: integer minor units; minor_x100: integer "
        "minor units times 100 (Stripe's documented habit for some zero-decimal currencies)."
    )
    divisor: int = Field(1, ge=1, description="For minor units: the source's value per minor unit (x100 -> 100).")
    decimal: Literal[".", ",", "auto"] = Field(
        ".",
        description="Decimal mark of major amounts; the other mark groups. auto: ',' in a semicolon-separated file "
        "(a comma-decimal locale's CSV), else '.'.",
    )
    sign: Literal["event_type", "as_given", "sales_as_given", "negate_back"] = Field(
        "event_type",
        description="event_type: sales as written (a negative sale is quarantined), everything else negative; "
        "as_given: the text's sign; sales_as_given: the same as event_type (an older name); negate_back: sales as "
        "written, everything else (and an unknown event) negated as written.",
    )

    @property
    def scale_down(self) -> int:
        return 100 if self.unit == "minor_x100" else self.divisor


class Time(_Strict):
    formats: list[str] = Field(
        default_factory=lambda: ["iso"],
        min_length=1,
        description="strftime formats tried in order; `iso` (ISO 8601 with offset), `epoch_s`, `epoch_ms`.",
    )
    zone: Literal["utc", "local", "offset"] = Field(
        description="utc: wall times in UTC; local: the region's zone; offset: each value carries its offset."
    )
    native_digits: bool = Field(False, description="Bengali / Arabic-Indic digits may appear in times.")


class Vocabulary(_Strict):
    of: Source
    map: dict[str, tuple[EventType, Status]] = Field(description="Word (case-insensitive) -> [event_type, status].")

    _keys = field_validator("map", mode="before")(lambda v: _text_keys(v))
    ignore: list[str] = Field(default_factory=list, description="Words of rows that are not sales (payouts).")
    default_event_type: EventType | None = "sale"

    @field_validator("of")
    @classmethod
    def _reads_no_derived_value(cls, of: Source) -> Source:
        _not_derived("the vocabulary (it derives them)", of)
        return of


class Buyer(_Strict):
    of: Source
    kind: Literal["email", "phone"]


class Settled(_Strict):
    """What a payment in another currency than the region's settled for, where the rail states it beside the payment
    (Stripe's `Converted Amount` in `Converted Currency`, beside `Amount` in `Currency`).

    A buyer charged in USD on an account that settles in EGP: the export states the EGP that reached the account,
    so the event loads in the region's currency with that figure, exactly, instead of waiting for a steward to
    retype it. Only the rail's own stated figure is used, never a rate: an event whose settled figure the row does
    not state (empty or zero) keeps the payment's currency and amount, and is quarantined for its currency as before.
    """

    currency: Source = Field(description="The currency the settled figures are in (the account's settlement one).")
    amount: Source = Field(description="The row's own event's amount as settled, in `currency`.")


class Fields(_Strict):
    transaction_id: Source
    event_type: Source | None = Field(None, description="Default: from `vocabulary`, else 'sale'.")
    status: Source | None = Field(None, description="Default: from `vocabulary`, else 'success'.")
    amount: Source
    fee: Source | None = Field(None, description="Default 0; an empty cell is 0 (unless `fee_required` holds).")
    fee_required: Condition | None = Field(
        None,
        description="Rows on which the rail always states the fee (Paystack's successful charges): an empty or "
        "absent fee there is a fee of unknown size, so unreadable (quarantined), never a fee of 0 that would show "
        "the seller the whole price as their net. Elsewhere an empty fee is 0.",
    )
    net: Source | None = Field(None, description="Stated net, checked by the contract; default amount - fee.")
    currency: Source | None = Field(
        None, description="Default: the region's currency (also when it names an optional column a file lacks)."
    )
    fee_currency: Source | None = Field(
        None,
        description="The currency the fee is stated in, where a rail states it apart from the event's (Stripe's "
        "`Converted Currency`: the account's settlement currency). A fee in another currency than the region's is "
        "unreadable, so quarantined, never booked as if it were in the region's. Empty or absent: the region's.",
    )
    charged: Source | None = Field(
        None,
        description="What the buyer paid for a sale, where a rail lets the buyer bear its fee (Flutterwave's "
        "`charged_amount` is the amount plus the fee then): what it exceeds the amount by is the fee's part the buyer "
        "paid, taken off the stated fee. More than the fee, less than the amount, or unreadable: the fee is "
        "unreadable (quarantined). Empty or absent: the fee as stated.",
    )
    deductions: list[Source] = Field(
        default_factory=list,
        description="Further amounts the rail takes from the seller on the row's own event, stated in columns of "
        "their own beside the fee (Gumroad's `Affiliate commission`, paid to the affiliate out of the seller's "
        "revenue): each is added to the fee and taken off a stated net, which such a rail writes before them "
        "(Gumroad's `Net Total` is Sale Price less Fees). An empty cell or absent column is 0; unreadable or "
        "negative, the fee is unreadable (quarantined).",
    )
    settled: Settled | None = Field(
        None,
        description="Where a rail states what a payment in another currency settled for in the account's currency "
        "(Stripe's `Converted Amount` in `Converted Currency`): on a row whose `currency` is a known ISO code other "
        "than the region's and whose settled currency is the region's, an event whose settled figure is stated (not "
        "empty, not zero) loads in the region's currency with that figure; any other event of such a row keeps the "
        "payment's currency and amount, so it is quarantined for its currency. The row's own event reads `amount` "
        "here, each further event its template's `settled_amount`. Not with `net`, `charged` or `deductions`, which "
        "such a rail would state in the payment's currency.",
    )
    occurred_at: Source
    reference: Source | None = Field(None, description="Text the region's reference pattern finds creator/product in.")
    creator_id: Source | None = None
    product_id: Source | None = None
    buyer: Buyer | None = None
    channel: Source | None = None
    event_ref: Source | None = Field(
        None,
        description="The rail's own id of each refund record (a refund's reference id): tells a payment's refunds "
        "apart, and a redelivery from a second refund, better than the minute they happened (the default). Only "
        "for rails whose refunds carry an id of their own from the start: stores filled before take the minute.",
    )

    @field_validator("event_type", "status", "reference")
    @classmethod
    def _reads_no_derived_value(cls, src: Source | None) -> Source | None:
        _not_derived("the event type, status and reference are read (side by side)", src)
        return src

    @model_validator(mode="after")
    def _creator_and_product(self) -> Fields:
        if self.reference is None and (self.creator_id is None or self.product_id is None):
            raise ValueError("give `reference` (read with the region's pattern) or both `creator_id` and `product_id`")
        return self

    @model_validator(mode="after")
    def _settled_figures_alone(self) -> Fields:
        """A settled figure replaces the amount only: a stated net, a charged amount or a deduction would still be
        in the payment's currency, and mixed with it would make a plausible wrong figure."""
        if self.settled is None:
            return self
        if self.currency is None:
            raise ValueError("`settled` needs `currency`: the payment's own currency, which it is read instead of")
        mixed = [name for name in ("net", "charged") if getattr(self, name) is not None]
        mixed += ["deductions"] if self.deductions else []
        if mixed:
            raise ValueError(f"`settled` cannot be combined with {', '.join(mixed)} (stated in the payment's currency)")
        return self


class AbsAmount(_Strict):
    abs: Money


class MinusAmount(_Strict):
    minus: tuple[Money, Money] = Field(description="The first amount less the second (what was not yet refunded).")


class WhenAmount(_Strict):
    when: Condition
    then: Money
    otherwise: Money


class EventAmount(_Strict):
    event: str = Field(description="The amount of this row's event of that name (its template's), 0 if it has none.")


def _money_kind(value: Any) -> str:
    if isinstance(value, dict):
        for kind in ("abs", "minus", "when", "event"):
            if kind in value:
                return kind
    if isinstance(value, BaseModel):
        for kind, model in (("abs", AbsAmount), ("minus", MinusAmount), ("when", WhenAmount), ("event", EventAmount)):
            if isinstance(value, model):
                return kind
    return "source"


#: An amount: a source read as money (in the spec's `amount` unit, sign as written), or a little arithmetic on them.
Money = Annotated[
    Annotated[Source, Tag("source")]
    | Annotated[AbsAmount, Tag("abs")]
    | Annotated[MinusAmount, Tag("minus")]
    | Annotated[WhenAmount, Tag("when")]
    | Annotated[EventAmount, Tag("event")],
    Discriminator(_money_kind),
]


class EventTemplate(_Strict):
    """A further event one row yields (a refund beside its charge), when its condition holds.

    The row's own event (from `fields`) comes first; each template's event follows in list order, on the same
    transaction, creator, product and buyer, and at the row's time unless it names its own. It carries no fee (the
    row's fee belongs to its first event); a stated net is its amount.
    """

    name: str | None = Field(None, description="For `{event: name}` references; default its event_type.")
    when: Condition
    event_type: EventType
    status: Source | None = Field(None, description="Default: the row's status (`@status`).")
    occurred_at: Source | None = Field(
        None,
        description="When it happened, read with the spec's time formats (Stripe's `Refunded date (UTC)`); "
        "default, and where it is empty, the row's time.",
    )
    amount: Money
    settled_amount: Source | None = Field(
        None,
        description="Its amount as settled in the account's currency, where the rail states it (Stripe's `Converted "
        "Amount Refunded`): read instead of `amount` on a row that `fields.settled` says was paid in another "
        "currency, when stated (not empty, not zero). Absent, or not stated: the event keeps the payment's currency "
        "and amount (quarantined for its currency).",
    )
    sign: Literal["negative", "negate", "as_given"] = Field(
        "negative", description="negative: minus its absolute value; negate: minus the value; as_given."
    )

    @property
    def key(self) -> str:
        return self.name or self.event_type


class WriterHints(_Strict):
    """How the synthetic writer renders what a reader cannot tell it (only for `kanda generate` / tests)."""

    reference_template: str = Field(
        "{creator_id}.{product_id}", description="Text for the reference column, e.g. '[{creator_id}.{product_id}]'."
    )
    preamble: list[str] = Field(default_factory=list, description="Title lines before the header.")
    trailer: list[list[str]] = Field(default_factory=list, description="Rows after the data (a Totals row).")


class RailSpec(_Strict):
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$", description="Defaults to the rail folder name.")
    description: str = ""
    format: Literal["csv", "xlsx", "ndjson"]
    encoding: Literal["auto", "utf-8", "latin-1"] = "auto"
    delimiter: Literal["auto", ",", ";", "\t", "|"] | list[Literal[",", ";", "\t", "|"]] = Field(
        "auto",
        description="auto: whichever separator finds the header; a list: only these (the first is the rail's own, "
        "named in a rejection); another separator is then a wrong delimiter.",
    )
    expects: str = Field(
        "",
        description="What the rail's files are, as a rejection says it: 'a Stripe payments CSV export'. "
        "Default: 'a <name> file'.",
    )
    ragged: Literal["reject", "skip"] = Field(
        "reject", description="skip: lines with another field count (disclaimers) are ignored and counted."
    )
    header: Header = Field(default_factory=Header)
    ignore: list[IgnoreRule] = Field(default_factory=list, description="Rows that are structure, not data.")
    vocabulary: Vocabulary | None = None
    amount: Amount
    time: Time
    fields: Fields
    channel_default: str | None = None
    raw: list[str] = Field(
        default_factory=list,
        description="Columns or JSON fields kept in each row's raw record besides those the spec reads, first and "
        "in this order (a CSV row keeps all its columns anyway; JSON lines keep only named fields).",
    )
    events: list[EventTemplate] = Field(
        default_factory=list, description="Further events a row yields (fan-out), e.g. a refund beside its sale."
    )
    money_back: Literal["per_event", "running_total"] = Field(
        "per_event",
        description="per_event: each refund, reversal or chargeback is a record of its own (a second refund of a "
        "payment is a second event, a redelivery the same one). running_total: the file restates what went back "
        "on a payment so far (an export's Amount Refunded); a batch loads only what the total adds to the store.",
    )
    writer: WriterHints = Field(default_factory=WriterHints)

    @field_validator("ignore")
    @classmethod
    def _ignore_reads_no_derived_value(cls, rules: list[IgnoreRule]) -> list[IgnoreRule]:
        for index, rule in enumerate(rules):
            read = derived_reads(rule)
            if read:
                raise ValueError(
                    f"rule {index} reads {' and '.join(read)}, which is derived only for the rows no rule sets "
                    "aside; read the column it is derived from instead"
                )
        return rules

    @model_validator(mode="after")
    def _settled_amounts_need_settled(self) -> RailSpec:
        if self.fields.settled is None:
            for index, template in enumerate(self.events):
                if template.settled_amount is not None:
                    raise ValueError(
                        f"event {index} has `settled_amount` but `fields.settled` is not given: "
                        "it says which rows were paid in another currency and where the settlement currency is"
                    )
        return self

    @field_validator("events")
    @classmethod
    def _events_named_before_use(cls, events: list[EventTemplate]) -> list[EventTemplate]:
        """`{event: name}` reads an event defined earlier in `events` (so no template depends on itself)."""
        known: list[str] = []
        for index, template in enumerate(events):
            for name in _event_references(template.amount):
                if name not in known:
                    raise ValueError(
                        f"event {index}'s amount names event {name!r}, which no earlier template defines "
                        f"(defined before it: {', '.join(known) or 'none'})"
                    )
            known.append(template.key)
        return events


def _event_references(money: Any) -> list[str]:
    if isinstance(money, EventAmount):
        return [money.event]
    if isinstance(money, AbsAmount):
        return _event_references(money.abs)
    if isinstance(money, MinusAmount):
        return [*_event_references(money.minus[0]), *_event_references(money.minus[1])]
    if isinstance(money, WhenAmount):
        return [*_event_references(money.then), *_event_references(money.otherwise)]
    return []


for _model in (SplitArgs, RegexArgs, JsonArgs, LookupArgs, CoalesceSource, ConcatArgs, CaseArgs, Condition):
    _model.model_rebuild()
for _model in (AbsAmount, MinusAmount, WhenAmount, EventAmount, EventTemplate):
    _model.model_rebuild()
for _model in (Vocabulary, Buyer, Settled, Fields, RailSpec):
    _model.model_rebuild()


# ------------------------------------------------------------------------------------------------ loading with lines
# SpecError, node_lines and read_yaml live in regions.yamlfile (region files use them without the spec models).
def located_errors(error: ValidationError, lines: dict[tuple, int], origin: str, prefix: tuple = ()) -> list[str]:
    """pydantic errors as `origin:line: key.path: message`, the line being the deepest key of the path in the file."""
    problems = []
    for item in error.errors():
        loc = [
            part for part in item["loc"] if part not in ("name", *SOURCE_KINDS) or _is_key(prefix, item["loc"], part)
        ]
        path, shown = prefix, []
        for part in loc:
            part = "json" if part == "json_" else part
            if (*path, part) in lines:
                path = (*path, part)
                shown.append(str(part))
            elif isinstance(part, str) and shown[-1:] != [part]:
                shown.append(part)
        line = lines.get(path, lines.get(prefix, 1))
        key = ".".join([*map(str, prefix), *shown]) or "(top)"
        problems.append(f"{origin}:{line}: {key}: {item['msg']}")
    return problems


def _is_key(prefix: tuple, loc: tuple, part: Any) -> bool:
    """Whether a loc element that looks like a union tag is really a YAML key (a field called `value`, `column`)."""
    index = loc.index(part)
    return index == len(loc) - 1 or loc[index + 1] == part


def parse_spec(
    data: Any, *, lines: dict[tuple, int] | None = None, origin: str = "<spec>", prefix: tuple = ()
) -> RailSpec:
    try:
        return RailSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(located_errors(exc, lines or {}, origin, prefix)) from None


def load_spec(path: Path) -> RailSpec:
    """A rail spec file (`regions/rails/<rail>/spec.yaml`); its name defaults to the folder's."""
    data, lines = read_yaml(path.read_text(encoding="utf-8"), str(path))
    spec = parse_spec(data, lines=lines, origin=str(path))
    return spec if spec.name else spec.model_copy(update={"name": path.parent.name})


def json_schema() -> dict:
    """The rail spec's JSON Schema, for editors (`kanda regions schema > rail-spec.schema.json`)."""
    schema = RailSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kanda rail spec"
    return schema
