"""Great Expectations suites: what must hold of the data once it is stored, not of each row at the door.

The boundary (pandera, `quality/contract.py`) judges every incoming row before it is loaded. These suites judge
the result: one region's loaded sale events for one local day, and the published central rollups. They catch
what no single row shows (an event id stored twice, a day holding another day's events, a rollup whose money
does not add up), what can change after the boundary (a manual UPDATE, a reprocessed steward fix, a bug in a
release or a model), and they leave a browsable record in Data Docs.

GX's pandas engine compares a column with constants or with one other column, not with an expression. The
frames are therefore read with a few derived columns (`amount_sign`, `abs_amount`, `amount_minus_fee`,
`expected_net`, `creator_onboarded`, `buyer_ref_length`), computed by the SQL beside the columns they judge; each
expectation's note says so in Data Docs. Region-specific values (currency, id patterns, the UTC bounds of the
local day) are suite parameters, so one suite serves every region and every day.

`great_expectations` takes seconds to import: it is imported inside the functions that build suites.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from quality.contract import EVENT_TYPES, STATUSES
from regions import RegionConfig

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

#: The suite run on one region's loaded sale events of one local day.
SALE_EVENTS_SUITE = "sale_events_day"

#: One suite per published rollup table, run on a region's slice of the newest central publication.
ROLLUP_SUITES: dict[str, str] = {
    "creator_daily": "central_creator_daily",
    "product_daily": "central_product_daily",
    "region_daily": "central_region_daily",
    "channel_daily": "central_channel_daily",
}

#: The grain of each rollup: exactly one row per key.
ROLLUP_KEYS: dict[str, list[str]] = {
    "creator_daily": ["region", "local_date", "creator_id"],
    "product_daily": ["region", "local_date", "product_id"],
    "region_daily": ["region", "local_date"],
    "channel_daily": ["region", "local_date", "channel"],
}
#: Rollups without money (payment counts only): no net to derive, no USD rate to check.
COUNT_ONLY = frozenset({"channel_daily"})

#: Columns of the stored sale events that the suite reads (buyer_ref only as its length: Data Docs show failing
#: values, and a raw email that slipped into buyer_ref must not be copied into a static site).
SALE_EVENT_COLUMNS = [
    "region",
    "transaction_id",
    "event_id",
    "event_type",
    "status",
    "creator_id",
    "product_id",
    "amount_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "occurred_at",
    "local_date",
]

MONEY_BACK = [t for t in EVENT_TYPES if t != "sale"]


def sale_events_sql(days: int) -> str:
    """The stored events of `days` local days (`?` placeholders), with the derived columns the suite judges."""
    marks = ", ".join("?" * days)
    return f"""
        SELECT {", ".join(f"e.{c}" for c in SALE_EVENT_COLUMNS)},
            length(e.buyer_ref) AS buyer_ref_length,
            CAST(sign(e.amount_minor) AS INTEGER) AS amount_sign,
            abs(e.amount_minor) AS abs_amount,
            e.amount_minor - e.fee_minor AS amount_minus_fee,
            e.creator_id IN (SELECT creator_id FROM creators WHERE region = e.region) AS creator_onboarded
        FROM sale_events AS e
        WHERE e.local_date IN ({marks})
        ORDER BY e.local_date, e.occurred_at
    """


def rollup_sql(table: str) -> str:
    """A published rollup over every region, with the net its parts say it must have (where it has money)."""
    if table in COUNT_ONLY:
        return f"SELECT * FROM rollups.{table} ORDER BY region, local_date"
    return f"""
        SELECT *, gross_minor - refunds_minor - reversals_minor - fees_minor AS expected_net
        FROM rollups.{table}
        ORDER BY region, local_date
    """


def sale_events_parameters(region: RegionConfig, day: dt.date) -> dict[str, Any]:
    """Suite parameters for one region's local day: its currency, id patterns, and the day's bounds in UTC."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=region.tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=region.tz)
    return {
        "region": [region.code],
        "currency": [region.currency],
        "creator_pattern": region.creator_pattern,
        "product_pattern": region.product_pattern,
        "day_start_utc": start.astimezone(dt.UTC),
        "day_end_utc": end.astimezone(dt.UTC),
    }


def rollup_parameters(region: RegionConfig) -> dict[str, Any]:
    return {
        "region": [region.code],
        "currency": [region.currency],
        "creator_pattern": region.creator_pattern,
        "product_pattern": region.product_pattern,
    }


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def sale_events_suite() -> ExpectationSuite:
    """What must be true of a region's stored events of one local day."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    keys = ["event_id", "creator_id", "product_id", "occurred_at"]
    expectations = [
        *(gxe.ExpectColumnValuesToNotBeNull(column=c, notes="A key column of the stored event.") for c in keys),
        gxe.ExpectColumnValuesToBeUnique(
            column="event_id",
            notes="One payment's event (transaction:event_type:status) is stored once; duplicates are counted,"
            " never loaded.",
        ),
        gxe.ExpectColumnValuesToBeInSet(column="region", value_set=_param("region")),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeInSet(
            column="currency", value_set=_param("currency"), notes="A region settles in its own currency."
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="creator_id", regex=_param("creator_pattern")),
        gxe.ExpectColumnValuesToMatchRegex(column="product_id", regex=_param("product_pattern")),
        gxe.ExpectColumnValuesToBeInSet(
            column="creator_onboarded",
            value_set=[True],
            notes="Derived: the creator is in the region's registry copy. Sales of unknown creators are held in"
            " quarantine until the creator is onboarded, never loaded.",
        ),
        gxe.ExpectColumnPairValuesToBeInSet(
            column_A="event_type",
            column_B="amount_sign",
            value_pairs_set=[("sale", 1), *((t, -1) for t in MONEY_BACK)],
            notes="Derived: amount_sign = sign(amount_minor). A sale brings money in; refunds, reversals and"
            " chargebacks take it back. Zero is never an event.",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="fee_minor", min_value=0, notes="Fees are never negative."),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="abs_amount",
            column_B="fee_minor",
            or_equal=True,
            notes="Derived: abs_amount = |amount_minor|. A rail's fee cannot exceed the money it was taken from.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="net_minor",
            column_B="amount_minus_fee",
            notes="Derived: amount_minus_fee = amount_minor - fee_minor, computed when the day is read.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="occurred_at",
            min_value=_param("day_start_utc"),
            max_value=_param("day_end_utc"),
            strict_max=True,
            notes="Every event of the day happened within that local day of the region's zone (UTC bounds).",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="buyer_ref_length",
            value_set=[64],
            notes="Derived: length(buyer_ref). Buyer contacts are stored only as 64-character salted hashes;"
            " the values themselves are not read, so no contact detail can reach Data Docs.",
        ),
    ]
    return gx.ExpectationSuite(name=SALE_EVENTS_SUITE, expectations=expectations)


def rollup_suite(table: str) -> ExpectationSuite:
    """What must be true of a region's slice of one published rollup table."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    if table in COUNT_ONLY:
        return _count_suite(table)
    keys = ROLLUP_KEYS[table]
    money = ["gross_minor", "refunds_minor", "reversals_minor", "fees_minor"]
    expectations = [
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in [*keys, "currency", "net_minor"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=keys, notes="The grain of the table: one row per key."),
        gxe.ExpectColumnValuesToBeInSet(column="region", value_set=_param("region")),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=_param("currency")),
        gxe.ExpectColumnValuesToBeBetween(column="orders", min_value=0),
        *(
            gxe.ExpectColumnValuesToBeBetween(
                column=c, min_value=0, notes="Stored as a positive amount; the sign is in the net."
            )
            for c in money
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="net_minor",
            column_B="expected_net",
            notes="Derived: expected_net = gross_minor - refunds_minor - reversals_minor - fees_minor"
            " (fct_daily_money: refunds, reversals and chargebacks are successful money going back).",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="net_usd_minor", notes="A USD rate exists on or before the day (the as-of rule)."
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="local_date",
            column_B="fx_date",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            notes="The USD rate used is the latest on or before the local day, never a later one.",
        ),
    ]
    if table != "region_daily":
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(column="creator_id", regex=_param("creator_pattern")))
    if table == "product_daily":
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(column="product_id", regex=_param("product_pattern")))
    if table == "region_daily":
        expectations += _payment_expectations(("payment_failure_rate", "reversal_rate", "quarantine_rate"))
    return gx.ExpectationSuite(name=ROLLUP_SUITES[table], expectations=expectations)


def _count_suite(table: str) -> ExpectationSuite:
    """A rollup of payment counts (channel_daily): its grain, region, currency, and counts that fit together."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    keys = ROLLUP_KEYS[table]
    expectations = [
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in [*keys, "currency"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=keys, notes="The grain of the table: one row per key."),
        gxe.ExpectColumnValuesToBeInSet(column="region", value_set=_param("region")),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=_param("currency")),
        *_payment_expectations(("payment_failure_rate", "reversal_rate")),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="successful_payments",
            column_B="reversed_payments",
            or_equal=True,
            notes="Reversed payments are some of the payments that succeeded that day.",
        ),
    ]
    return gx.ExpectationSuite(name=ROLLUP_SUITES[table], expectations=expectations)


def _payment_expectations(rates: tuple[str, ...]) -> list:
    import great_expectations.expectations as gxe

    return [
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1, notes="A rate (share).")
            for c in rates
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="payments",
            column_B="failed_payments",
            or_equal=True,
            notes="Failed payments are some of the payments first seen that day.",
        ),
    ]
