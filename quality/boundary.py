"""The ingestion boundary: adapter output in, contract-valid rows and quarantine rows (with every reason) out.

pandera's `drop_invalid_rows` would throw the reasons away, so the boundary validates lazily (collecting every
failure), groups the failure cases by row and splits the batch in two. Nothing is dropped: each input row leaves
either as a valid event or as a quarantine row that says which rules it broke, on which column, with which value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from quality.contract import (
    CONTRACT_COLUMNS,
    EVENT_ID_PARTS,
    RULE_COLUMNS,
    WARNING_RULES,
    SaleEvent,
    event_id_expr,
    event_ref_expr,
)
from regions import RegionConfig
from regions.rails.base import RAIL_REF

#: Severity of each quarantine reason: `error` rows need a steward's fix or rejection; `hold` rows wait for
#: something outside the data (an onboarding) and are released automatically.
HOLD_RULES = {"unknown_creator": "hold"}
#: The rule of a delivery that repeats an event's identity with other money (`differing_repeats`).
REPEAT_DIFFERS = "repeat_differs"
#: The rule of a delivery that repeats an event's identity naming another creator or product than it was first
#: recorded with (`differing_repeats`).
REPEAT_OTHER_OWNER = "repeat_other_owner"
#: The rule of a refund told apart by its minute that repeats, at another minute, the payment, money and currency of a
#: refund whose time a steward supplied (`other_time_repeats`): the refund that time was guessed for, or a second one.
REPEAT_OTHER_TIME = "repeat_other_time"
#: What a delivery of an event must say again to be a duplicate: the money it moves and whose sale it is. Other
#: money, or another creator or product, is quarantined (`differing_repeats`): counted as a duplicate it would
#: vanish unseen, whichever of the two deliveries was right.
REPEATED_COLUMNS = ("amount_minor", "currency", "creator_id", "product_id")

QUARANTINE_COLUMNS = [
    "source",
    "source_file",
    "source_row",
    "transaction_id",
    "creator_id",
    "local_date",
    "raw_record",
    "parsed",
    "reasons",
    "hold",
]


class ContractShapeError(RuntimeError):
    """The adapter produced columns or dtypes the contract does not have: a bug in the adapter, not bad data."""


@dataclass
class Split:
    valid: pl.DataFrame
    quarantine: pl.DataFrame


def canonicalise(
    chunk: pl.DataFrame, region: RegionConfig, *, source: str, source_file: str, batch_id: str
) -> pl.DataFrame:
    """Adapter shape -> contract shape: the fields every region derives the same way.

    `event_id` is what makes redelivery harmless: one payment's event of one type and status (and, for a refund,
    `event_ref`: the rail's own refund id, from the adapter's `RAIL_REF` column where it gives one, else the minute
    it happened) is one row, however often the rail sends it. `local_date` is the region's own calendar day of the
    UTC instant.
    """
    net = pl.col("net_minor") if "net_minor" in chunk.columns else pl.col("amount_minor") - pl.col("fee_minor")
    rail_ref = RAIL_REF if RAIL_REF in chunk.columns else None
    return (
        chunk.with_columns(occurred_at=_within_calendar(pl.col("occurred_at")))
        .with_columns(event_ref=event_ref_expr(rail_ref))
        .with_columns(
            region=pl.lit(region.code),
            source=pl.lit(source),
            source_file=pl.lit(source_file),
            batch_id=pl.lit(batch_id),
            event_id=event_id_expr(),
            net_minor=net,
            local_date=pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.date(),
        )
        .select([*CONTRACT_COLUMNS, "raw_record"])
    )


#: The span of years a time can be checked, shown and stored in (Python's `datetime`); polars holds far more.
_FIRST_TIME = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_LAST_TIME = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def _within_calendar(occurred_at: pl.Expr) -> pl.Expr:
    """Null (so quarantined as unreadable, with the raw text) for a time outside years 1-9999: milliseconds read as
    seconds reach year 58,000, where the contract's checks, the local day and the steward pages would fail the
    whole file instead of quarantining the row. A day inside each end keeps every time zone's local day valid."""
    return pl.when(occurred_at.is_between(_FIRST_TIME, _LAST_TIME)).then(occurred_at)


def split_by_contract(frame: pl.DataFrame) -> Split:
    """Validate a contract-shaped batch; return valid rows and quarantine rows with their reasons."""
    contract = frame.select(CONTRACT_COLUMNS)
    try:
        SaleEvent.validate(contract, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    else:
        return Split(frame, _empty_quarantine())
    schema_level = failures.filter(pl.col("index").is_null())
    if not schema_level.is_empty():
        raise ContractShapeError(
            "adapter output does not match the contract: "
            + "; ".join(f"{r['column']}: {r['check']} ({r['failure_case']})" for r in schema_level.to_dicts())
        )
    reasons = _reasons_by_row(failures, contract)
    # A boolean mask rather than joins of the whole batch: the failing rows are few, and the batch carries the
    # nested raw_record, which a join would gather row by row.
    failing = pl.int_range(pl.len(), dtype=pl.UInt32).is_in(reasons["_index"].implode())
    valid = frame.filter(~failing)
    flagged = frame.with_row_index("_index").filter(failing).join(reasons, on="_index", how="inner")
    return Split(valid, to_quarantine(flagged.drop("_index"), hold=None))


def _reasons_by_row(failures: pl.DataFrame, contract: pl.DataFrame) -> pl.DataFrame:
    """One row per failing input row: a list of {rule, column, value, severity}.

    Row-level checks report the whole row as their failure case; the reason names the column the rule is about
    and that column's value, which is what a steward needs to see.
    """
    cases = failures.select(
        pl.col("index").cast(pl.UInt32).alias("_index"),
        pl.col("check").str.replace(r"\(.*$", "").alias("rule"),
        pl.col("column"),
        pl.col("failure_case").alias("value"),
        pl.col("schema_context"),
    )
    frame_level = cases.filter(pl.col("schema_context") == "DataFrameSchema")
    if not frame_level.is_empty():
        columns = frame_level["rule"].replace_strict(RULE_COLUMNS, default=None)
        failing_rows = contract.with_row_index("_index").filter(pl.col("_index").is_in(frame_level["_index"].implode()))
        values = failing_rows.join(frame_level.with_columns(column=columns).select("_index", "column"), on="_index")
        # The named column's value for each failing row, as text.
        picked = values.select(
            "_index",
            "column",
            pl.coalesce(
                [pl.when(pl.col("column") == c).then(pl.col(c).cast(pl.String)) for c in set(RULE_COLUMNS.values())]
            ).alias("value"),
        )
        frame_level = frame_level.drop("column", "value").with_columns(column=columns)
        frame_level = frame_level.join(picked.unique(["_index", "column"]), on=["_index", "column"], how="left")
        cases = pl.concat([cases.filter(pl.col("schema_context") != "DataFrameSchema"), frame_level], how="diagonal")
    cases = cases.with_columns(
        rule=pl.when(pl.col("rule") == "not_nullable").then(pl.lit("missing_or_unreadable")).otherwise("rule"),
        severity=pl.when(pl.col("rule").is_in(list(WARNING_RULES))).then(pl.lit("warning")).otherwise(pl.lit("error")),
    )
    cases = _without_echoes(cases)
    return (
        cases.sort("_index", "column", "rule")
        .group_by("_index", maintain_order=True)
        .agg(pl.struct("rule", "column", "value", "severity").alias("reasons"))
    )


#: Columns the boundary derives from others: when a source column already failed, the derived column's failure
#: is an echo of it and would only lengthen the list a steward reads.
DERIVED_FROM = {
    "net_minor": ("amount_minor", "fee_minor"),
    "event_id": EVENT_ID_PARTS,
    "event_ref": ("event_type", "occurred_at"),  # a refund's minute
    "local_date": ("occurred_at",),
}


def _without_echoes(cases: pl.DataFrame) -> pl.DataFrame:
    failed = cases.group_by("_index").agg(pl.col("column").alias("_failed"))
    echo = pl.lit(False)
    for derived, sources in DERIVED_FROM.items():
        source_failed = pl.col("_failed").list.eval(pl.element().is_in(list(sources))).list.any()
        echo = echo | ((pl.col("column") == derived) & source_failed)
    return cases.join(failed, on="_index").filter(~echo).drop("_failed")


def hold_unknown_creators(valid: pl.DataFrame, known_creators: pl.Series) -> Split:
    """Contract-valid rows whose creator is not in the registry yet are held, not loaded and not rejected."""
    unknown = ~valid["creator_id"].is_in(known_creators.implode())
    if not unknown.any():  # the usual case: no copy of the batch at all
        return Split(valid, _empty_quarantine())
    held = valid.filter(unknown)
    held = held.with_columns(
        reasons=pl.concat_list(
            pl.struct(
                rule=pl.lit("unknown_creator"),
                column=pl.lit("creator_id"),
                value=pl.col("creator_id"),
                severity=pl.lit(HOLD_RULES["unknown_creator"]),
            )
        )
    )
    return Split(valid.filter(~unknown), to_quarantine(held, hold="unknown_creator"))


def differing_repeats(repeats: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows for deliveries of a stored (or earlier) event that state other money, or name another creator
    or product, than it was first recorded with.

    `repeats` holds contract rows, their raw record as JSON text, and what the event was first recorded with
    (`recorded_amount`, `recorded_currency`, and, where compared, `recorded_creator_id`, `recorded_product_id`). A
    redelivery is harmless only if it says what the first delivery said: counted as a duplicate, a different amount
    would vanish unseen (a second refund of one payment within the same minute, on rails that tell refunds apart by
    their minute, is the usual cause), as would the other creator's claim to the sale, and loading it instead would
    double the event. So it is an error a steward must look at; the event as first recorded stays.
    """

    def reason(column: str, rule: str) -> pl.Expr:
        recorded = pl.col(recorded_column(column))
        return pl.when(pl.col(column).ne_missing(recorded)).then(
            pl.struct(
                rule=pl.lit(rule),
                column=pl.lit(column),
                value=pl.format("{} (this event was first recorded with {})", pl.col(column), recorded),
                severity=pl.lit("error"),
            )
        )

    reasons = [
        reason(c, REPEAT_DIFFERS if c in ("amount_minor", "currency") else REPEAT_OTHER_OWNER)
        for c in REPEATED_COLUMNS
        if recorded_column(c) in repeats
    ]
    flagged = repeats.with_columns(reasons=pl.concat_list(reasons).list.drop_nulls())
    return to_quarantine(flagged, hold=None)


def other_time_repeats(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows for refunds, told apart by their minute (the rail gives no refund id), that would double a
    refund of the same payment, amount and currency stored at another minute when one of the two times is a steward's.

    A refund delivered without a usable time (Paystack's refund events state none; an export dating refunds at the
    purchase) is loaded with the time a steward types, and so with that minute as its identity. When the rail then
    delivers the refund with its real time, or the steward guesses a time for a refund the rail had delivered, the
    minutes differ and the identities with them: loaded, the creator's net would lose the money twice with nothing
    flagged. Whether it is one refund or two only a person can tell, so the new row waits for a steward: rejected, the
    refund stays counted once; approved (`kanda.regional.batch` then loads it), it is the payment's second refund.

    `rows` holds contract rows, their raw record as JSON text, `recorded_at` (the stored refunds' times, as text)
    and `supplied_here` (whether the steward's time is this row's rather than the stored refund's).
    """
    value = (
        pl.when(pl.col("supplied_here"))
        .then(
            pl.format(
                "{} (a time a steward supplied; a refund of this payment for the same amount is already loaded at"
                " {}: if it is the same refund, reject this row; if it is a second refund, approve it)",
                pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                pl.col("recorded_at"),
            )
        )
        .otherwise(
            pl.format(
                "{} (a refund of this payment for the same amount was loaded at {} with a time a steward supplied: if"
                " it is the same refund, reject this row; if it is a second refund, approve it)",
                pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                pl.col("recorded_at"),
            )
        )
    )
    reason = pl.struct(
        rule=pl.lit(REPEAT_OTHER_TIME), column=pl.lit("occurred_at"), value=value, severity=pl.lit("error")
    )
    return to_quarantine(rows.with_columns(reasons=pl.concat_list(reason)), hold=None)


def recorded_column(column: str) -> str:
    """The column holding what an event was first recorded with (`recorded_amount` for `amount_minor`)."""
    return f"recorded_{column.removesuffix('_minor')}"


def to_quarantine(flagged: pl.DataFrame, *, hold: str | None) -> pl.DataFrame:
    """Quarantine rows: raw record (a struct, or JSON text already) and parsed fields as JSON, reasons as a JSON
    list."""
    raw = pl.col("raw_record")
    # A row quarantined for its time is counted on the day it arrived (the stores' `coalesce(local_date, arrival
    # day)`): the day a broken time names (a typo dated 2014, a day next year) would get a quarantine rate of 1.0
    # while the day it came in under-reported its own.
    # (a refund held for repeating another's money at another minute has a readable time: it keeps its day)
    time_failed = (
        pl.col("reasons")
        .list.eval(
            (pl.element().struct.field("column") == "occurred_at")
            & (pl.element().struct.field("rule") != REPEAT_OTHER_TIME)
        )
        .list.any()
    )
    return (
        flagged.select(
            "source",
            "source_file",
            "source_row",
            "transaction_id",
            "creator_id",
            pl.when(time_failed.fill_null(False)).then(None).otherwise(pl.col("local_date")).alias("local_date"),
            (raw if flagged.schema["raw_record"] == pl.String else raw.struct.json_encode()).alias("raw_record"),
            pl.struct(CONTRACT_COLUMNS).struct.json_encode().alias("parsed"),
            pl.col("reasons").list.eval(pl.element().struct.json_encode()).list.join(",").alias("_r"),
            pl.lit(hold, dtype=pl.String).alias("hold"),
        )
        .with_columns(reasons=pl.lit("[") + pl.col("_r") + pl.lit("]"))
        .select(QUARANTINE_COLUMNS)
    )


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "source": pl.String,
            "source_file": pl.String,
            "source_row": pl.Int64,
            "transaction_id": pl.String,
            "creator_id": pl.String,
            "local_date": pl.Date,
            "raw_record": pl.String,
            "parsed": pl.String,
            "reasons": pl.String,
            "hold": pl.String,
        }
    )
