"""A steward's edits applied to a quarantined row, and the row checked again by the same contract.

There is one definition of validity (`quality.contract.SaleEvent`), and a fix must meet exactly it: the edited
rows are rebuilt in the contract's shape, their derived fields (event id, net, local day) recomputed the way
`quality.boundary.canonicalise` derives them (a net the file states, as Gumroad's `Net Total`, is not derived
but kept, so that the contract checks a typed amount or fee against it as it would have on arrival), and the
batch goes through `quality.boundary.split_by_contract`, the function ingestion calls. A row whose creator is not
in the registry would only be held again on load, so that is reported too (severity `hold`). Many rows are checked
in one call (bulk approval validates one frame, not a row at a time).

Edits are text, as a form or a command line gives them: `*_minor` columns take an integer count of minor units
(within 64 bits, as the contract stores them; a larger number cannot be read, like any other unreadable value, and
so can a net derived from amount and fee that would not fit), `occurred_at` an ISO time (with an offset or `Z`; a
time without one is the region's local time), an empty string clears a value.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from quality.boundary import HOLD_RULES, REPEAT_DIFFERS, REPEAT_OTHER_OWNER, REPEATED_COLUMNS, split_by_contract
from quality.contract import (
    CONTRACT_COLUMNS,
    WARNING_RULES,
    contract_dtypes,
    event_id_value,
    event_ref_value,
)
from regions import get_region
from regions.money import MINOR_UNIT_EXPONENT
from regions.rails import fees_by_rail, get_adapter, source_states_fees

log = logging.getLogger(__name__)

#: Columns a steward may edit; provenance (region, source, file, row, batch) and the derived columns are not.
#: `buyer_ref` is a salted hash made by the adapter from the buyer's contact, which a person cannot type.
EDITABLE_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "event_type",
    "status",
    "creator_id",
    "product_id",
    "channel",
    "amount_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "occurred_at",
)
INTEGER_COLUMNS = frozenset({"amount_minor", "fee_minor", "net_minor"})
#: The contract's integers are 64-bit (`pl.Int64`): a value beyond them cannot be read, like any other unreadable one.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: A fee typed on a row whose rail states no fees (`kanda regions list`, column `fees`).
FEE_NOT_STATED = "fee_not_stated_by_rail"
#: Money left as it was in the row's currency when a fix changes the currency (`_not_converted`).
NOT_CONVERTED = "money_not_converted_to_new_currency"


@dataclass(frozen=True)
class Rule:
    """One broken rule: which, on which column, the offending value, and how serious (error, warning, hold)."""

    rule: str
    column: str | None
    value: str | None
    severity: str

    def as_dict(self) -> dict:
        return {"rule": self.rule, "column": self.column, "value": self.value, "severity": self.severity}


@dataclass
class Revalidation:
    """The contract's verdict on an edited row. `row` is the canonical row as it would be loaded (text values).

    `notices` are what a steward should know before deciding that do not stop an approval (severity `notice`: a
    refund whose typed time makes it a second refund of a payment, `kanda.review.refund_times`); `ok` ignores them.
    """

    ok: bool
    errors: list[Rule] = field(default_factory=list)
    row: dict[str, str | None] = field(default_factory=dict)
    notices: list[Rule] = field(default_factory=list)

    @property
    def waivable(self) -> bool:
        """Fails only warning-level rules, which a steward may waive with a justification."""
        return bool(self.errors) and all(e.severity == "warning" for e in self.errors)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": [e.as_dict() for e in self.errors],
            "notices": [n.as_dict() for n in self.notices],
            "row": self.row,
        }


def severity_of(rule: str, reported: str | None = None) -> str:
    """The current policy's severity of a rule (rows quarantined before a rule became a warning say `error`)."""
    if rule in HOLD_RULES:
        return HOLD_RULES[rule]
    if rule in WARNING_RULES:
        return "warning"
    return reported if reported in {"error", "warning", "hold"} else "error"


def as_text(value: object) -> str | None:
    """A parsed or edited value as the text a steward sees and types back."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass
class Candidate:
    """One quarantined row to check: its region, parsed fields (as stored), and the edits to apply."""

    region: str
    parsed: dict
    edits: dict[str, str]


def revalidate_rows(candidates: Sequence[Candidate], known_creators: dict[str, set[str]]) -> list[Revalidation]:
    """Apply each candidate's edits and run the contract over all of them at once; verdicts in input order."""
    if not candidates:
        return []
    rows, parse_errors = [], []
    for candidate in candidates:
        row, errors = edited_row(candidate)
        rows.append(row)
        parse_errors.append(errors)
    frame = contract_frame(rows).with_columns(raw_record=pl.struct(pl.int_range(pl.len()).alias("candidate")))
    split = split_by_contract(frame)
    failed: dict[int, list[Rule]] = {}
    if split.quarantine.height:
        decoded = split.quarantine.select(
            pl.col("raw_record").str.json_decode(pl.Struct({"candidate": pl.Int64})).struct.field("candidate"),
            "reasons",
        )
        for index, reasons in decoded.iter_rows():
            failed[index] = [
                Rule(r["rule"], r["column"], r["value"], severity_of(r["rule"], r["severity"]))
                for r in json.loads(reasons)
            ]
    results = []
    rails = fees_by_rail()
    for index, (row, errors) in enumerate(zip(rows, parse_errors, strict=True)):
        unreadable = {e.column for e in errors}
        # a value that could not be read is null in the frame: its "missing" verdict would only repeat the error
        found = errors + [e for e in failed.get(index, []) if e.column not in unreadable]
        fee = row.get("fee_minor")
        if fee not in (None, 0) and not source_states_fees(row.get("source"), rails):
            # The row's rail sends no fees: every other event of it has fee 0 and its rollups say "not stated", so a
            # typed fee would be counted as if the rail had stated it (and fail the stored events' suite).
            found.append(Rule(FEE_NOT_STATED, "fee_minor", as_text(fee), "error"))
        found += _not_converted(candidates[index])
        creator = row.get("creator_id")
        # A creator that is not onboarded holds the row whatever else is wrong with it short of an error: a warning
        # (a future date, say) must not hide the hold, or a waiver would be accepted that can never be applied.
        blocked = any(rule.severity == "error" for rule in found)
        known = known_creators.get(row["region"])  # None: no registry on this host
        if not blocked and known is not None and creator not in known:
            found.append(Rule("unknown_creator", "creator_id", creator, HOLD_RULES["unknown_creator"]))
        results.append(Revalidation(not found, found, {c: as_text(row.get(c)) for c in CONTRACT_COLUMNS}))
    return results


def _not_converted(candidate: Candidate) -> list[Rule]:
    """`NOT_CONVERTED` for each money column still holding what the row had in another currency, when the fix
    changes the row's currency (a Paystack charge in USD relabelled NGN): 10.00 dollars would load as 10.00 naira
    (and a zero-decimal currency's amount read 100 times too large or small), a plausible figure the contract cannot
    tell from a right one. The steward types the money in the new currency. A fix that only corrects a misspelt code
    (`KSH`, no currency at all) is left alone: that amount was read in the region's currency; so is a fee its rail
    states in a currency of its own (Stripe's `Converted Currency`), which the reader kept only in the region's."""
    if "currency" not in candidate.edits:
        return []
    before = candidate.parsed.get("currency")
    if before not in MINOR_UNIT_EXPONENT or before == candidate.edits["currency"].strip():
        return []
    columns = ["amount_minor"]
    spec = _spec_of(str(candidate.parsed.get("source") or ""))
    if spec is None or spec.fields.fee_currency is None:
        columns.append("fee_minor")
    return [
        Rule(NOT_CONVERTED, column, f"{candidate.parsed[column]} ({before})", "error")
        for column in columns
        if candidate.parsed.get(column) not in (None, 0) and column not in candidate.edits
    ]


def still_a_repeat(candidate: Candidate, rules: Sequence[Rule], verdict: Revalidation) -> Revalidation:
    """The verdict, failing `repeat_differs` (or `repeat_other_owner`) again if the row had failed it and the edits
    leave it the same event with the same money, creator and product.

    That rule is judged against the store when a batch loads, not by the contract: approved unchanged, the row
    would pass here and only be quarantined again on reprocess. Typing the money the event was first recorded with
    (a duplicate then) or a time in another minute (a refund of its own) changes the answer.

    `repeat_other_time` (a refund repeating, at another minute, one whose time a steward supplied) is not failed
    again: it asks whether the row is a second refund, and approving it unchanged is the answer yes, which the fix
    batch honours (`kanda.regional.batch`). A steward typing a time for a refund the rail already delivered at another
    minute is told so while editing (a notice, `kanda.review.refund_times`) and asked again when the fix loads, judged
    against the store as the other repeat rules are.
    """
    repeats = [rule for rule in rules if rule.rule in (REPEAT_DIFFERS, REPEAT_OTHER_OWNER)]
    if not repeats:
        return verdict
    edited, _ = edited_row(candidate)
    original, _ = edited_row(Candidate(candidate.region, candidate.parsed, {}))
    if any(edited.get(c) != original.get(c) for c in ("event_id", *REPEATED_COLUMNS)):
        return verdict
    return Revalidation(False, [*verdict.errors, *repeats], verdict.row)


def contract_frame(rows: list[dict]) -> pl.DataFrame:
    """Canonical rows (Python values) as a frame with exactly the contract's dtypes."""
    return pl.DataFrame(rows, schema=contract_dtypes())


def edited_row(candidate: Candidate) -> tuple[dict, list[Rule]]:
    """The stored parsed fields with the edits applied and the derived fields recomputed."""
    zone = ZoneInfo(get_region(candidate.region).zone)
    row = {c: _stored_value(c, candidate.parsed.get(c)) for c in CONTRACT_COLUMNS}
    errors: list[Rule] = []
    for column, text in candidate.edits.items():
        if column not in EDITABLE_COLUMNS:
            errors.append(Rule("not_editable", column, text, "error"))
            continue
        try:
            row[column] = _typed(column, text, zone)
        except ValueError as exc:
            errors.append(Rule(f"unreadable: {exc}", column, text, "error"))
            row[column] = None
    edited = set(candidate.edits)
    if edited & {"amount_minor", "fee_minor"} and "net_minor" not in edited and not net_stated(candidate.parsed):
        amount, fee = row["amount_minor"], row["fee_minor"]
        net = amount - fee if amount is not None and fee is not None else None
        if net is not None and not INT64_MIN <= net <= INT64_MAX:
            # each value fits in 64 bits but their difference does not: the derived net cannot be stored either
            errors.append(
                Rule("unreadable: amount_minor - fee_minor is beyond 64 bits", "net_minor", str(net), "error")
            )
            net = None
        row["net_minor"] = net
    parsed_ref = candidate.parsed.get("event_ref")
    if "occurred_at" in edited and parsed_ref == event_ref_value(
        "refund", _stored_value("occurred_at", candidate.parsed.get("occurred_at"))
    ):
        # the reader's reference was the refund's minute, which the edit moved: the minute of the time typed, so
        # that the fixed refund is the same event as the refund delivered at that time
        parsed_ref = None
    row["event_ref"] = event_ref_value(row["event_type"], row["occurred_at"], parsed_ref)
    row["event_id"] = event_id_value(row)
    when = row["occurred_at"]
    row["local_date"] = when.astimezone(zone).date() if when is not None else None
    return row, errors


def net_stated(parsed: dict) -> bool:
    """Whether the row's net is the file's own statement (a rail whose spec reads a net, e.g. Gumroad's `Net
    Total`, on the row's own event) rather than amount - fee. Such a net is checked by the contract against the
    amount and fee read beside it; derived again from a typed amount, it would follow a typo (5,000.00 typed for
    50,000.00 loaded with net 4,250.00 while the file said 49,250.00) and the check the file offered would be lost.
    The events a spec adds for money going back (`events:`) take their amount as net: those are derived."""
    if parsed.get("net_minor") is None:
        return False
    stated, added_types = _net_statement(str(parsed.get("source") or ""))
    return stated and parsed.get("event_type") not in added_types


def _net_statement(source: str) -> tuple[bool, frozenset[str]]:
    """Whether the rail reads a net from its files, and the event types its spec adds to a row (whose net is their
    amount)."""
    spec = _spec_of(source)
    if spec is None or spec.fields.net is None:
        return False, frozenset()
    return True, frozenset(t.event_type for t in spec.events)


def _spec_of(source: str):  # -> RailSpec | None (regions.spec imports regions: not annotated, as in regions.rails)
    """The spec of the rail named by a row's `source`; None for a hand-written reader or a rail kanda no longer
    knows."""
    try:
        return getattr(get_adapter(source), "spec", None)
    except KeyError:
        return None


def _stored_value(column: str, value: object) -> object:
    if value is None:
        return None
    if column == "occurred_at":
        return dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC)
    if column == "local_date":
        return dt.date.fromisoformat(str(value))
    return value


_INTEGER = re.compile(r"^[+-]?\d+$")


def _typed(column: str, text: str, zone: ZoneInfo) -> object:
    text = text.strip()
    if text == "":
        return None
    if column in INTEGER_COLUMNS:
        plain = text.replace(",", "").replace("_", "").replace(" ", "")
        if not _INTEGER.match(plain):
            raise ValueError("a whole number of minor units (e.g. 25000 for 250.00)")
        value = int(plain)
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"a whole number of minor units between {INT64_MIN} and {INT64_MAX} (64 bits)")
        return value
    if column == "occurred_at":
        unreadable = "an ISO time such as 2026-10-05T10:00:00Z"
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(unreadable) from None
        try:  # a time at the calendar's edge (0001-01-01 east of UTC) has no UTC instant Python can hold
            return (when if when.tzinfo else _local_instant(when, zone)).astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(unreadable) from None
    return text


def _local_instant(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A wall time typed without an offset, in the region's zone; refused where it names no single instant, as the
    rails' readers refuse it: in the hour repeated when the clocks go back either instant would be a guess, one of
    them an hour off (and a refund's minute tells it from the payment's other refunds), and a time skipped when they
    go forward never happened."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        ambiguous = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == wall
        what = "happened twice (the clocks went back)" if ambiguous else "never happened (the clocks went forward)"
        raise ValueError(
            f"{wall:%Y-%m-%d %H:%M} {what} in {zone.key}: type the time with its offset, e.g."
            f" {first.isoformat(timespec='seconds')}"
        )
    return first


def known_creators(registry_dir: Path, regions: set[str]) -> dict[str, set[str]]:
    """Creators in the registry file per region (what the next ingest syncs into the store); no region at all on a
    host without the registry file.

    The review pages and CLI run on the central host too (docs/deployment.md), which keeps no registry: read as
    empty, every fix there was held as `unknown_creator` and none could be approved. Where the registry is not
    here, this host cannot tell, so it does not hold: the fix is applied on the region's host by the same
    validation as ingestion, which holds a row of a creator not onboarded there.
    """
    path = registry_dir / "creators.csv"
    if not path.exists():
        return {}
    found: dict[str, set[str]] = {}
    for code in regions:
        rows = _registry_rows(path, code, ["creator_id", "region"])
        if rows is not None:
            found[code] = set(rows["creator_id"].drop_nulls())
    return found


def _registry_rows(path: Path, region: str, columns: list[str]) -> pl.DataFrame | None:
    """The region's records of a registry file, read as ingestion reads them: one region's broken record (the file
    is shared) stopped the review of every region with a traceback. A broken record of `region` itself: None (not
    known here; the region's ingest names it), with a warning."""
    from kanda.regional.ingest import RegistryError, registry_rows

    try:
        return registry_rows(path, get_region(region), columns)
    except RegistryError as exc:
        log.warning("%s: review reads no registry: %s", region, exc)
        return None


def registry_choices(registry_dir: Path, region: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The region's known creators and products as (id, label) pairs, for the fix form's pick-lists: the ids a
    fix can use without being held again."""

    def read(name: str, key: str) -> list[tuple[str, str]]:
        path = registry_dir / name
        frame = _registry_rows(path, region, [key, "region"]) if path.exists() else None
        if frame is None:
            return []
        frame = frame.sort(key)
        labels = [c for c in ("display_name", "name", "title", "creator_id") if c in frame.columns and c != key]
        label = pl.concat_str([pl.col(c).fill_null("") for c in labels[:1]]) if labels else pl.lit("")
        return [(k, v or "") for k, v in frame.select(pl.col(key), label.alias("label")).iter_rows()]

    return read("creators.csv", "creator_id"), read("products.csv", "product_id")
