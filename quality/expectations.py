"""Great Expectations suites: what must hold of the data once it is stored, not of each row at the door.

The boundary (pandera, `quality/contract.py`) judges every incoming row before it is loaded. These suites judge
the result: each region's loaded sale events of each local day, and the published central rollups. They catch
what no single row shows (an event id stored twice, a day holding another day's events, a rollup whose money
does not add up), what can change after the boundary (a manual UPDATE, a reprocessed steward fix, a bug in a
release or a model), and they leave a browsable record in Data Docs.

A validation costs GX a few tenths of a second whatever its size, so one validation judges many regions and days
at once: the stored days of every region in one frame, each rollup table over every region in one frame. What
differs by region or day is therefore not a suite parameter but a column beside the row, computed by the SQL that
reads the frame: the store the row came from (`store_region`), its region's currency (`expected_currency`), the
UTC bounds of its local day (`day_start_utc`, `day_end_utc`), and ids prefixed with their region
(`region_creator_id`) so that one regex with one alternative per region (`keyed_pattern`) holds each row to its
own region's pattern. The runner (`kanda.checks.gx_runner`) splits each result back into one verdict per region
and day by the rows GX reports unexpected.

GX's pandas engine compares a column with constants or with one other column, not with an expression, so the
other derived columns (`amount_sign`, `abs_amount`, `amount_minus_fee`, `expected_net`, `creator_onboarded`,
`buyer_ref_length`, `channel_well_formed`) are computed by the same SQL; each expectation's note says so in Data Docs.

`great_expectations` takes seconds to import: it is imported inside the functions that build suites.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from quality.contract import CHANNEL_PATTERN, EVENT_TYPES, STATUSES
from regions import RegionConfig

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

#: The suite on the loaded sale events of each region and local day (one validation for many of them).
SALE_EVENTS_SUITE = "sale_events_day"

#: One suite per published rollup table, run on the regions' rows of the newest central publication.
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


#: What separates the region from an id in `region_creator_id` / `region_product_id` (never part of a code).
KEY_SEPARATOR = "|"


def sale_events_sql() -> str:
    """One region's stored events of the given local days, with the columns the suite judges.

    Named parameters: `$region` and `$currency` (the store's region and its currency), `$days` and the UTC bounds
    of each day, `$day_starts` and `$day_ends` (same order; `day_bounds`): computed in Python from the region's zone,
    as when they were suite parameters, rather than with DuckDB's own copy of the time-zone rules. Each event is
    held to what its own batch's rail stated when it was read (`batch_rails`, as the rollups' `fees_stated`), so
    that a rail that later stops stating fees does not flag the fees its earlier files did state."""
    money_back = ", ".join(f"'{t}'" for t in MONEY_BACK)
    return f"""
        WITH days AS (
            SELECT unnest($days) AS local_date, unnest($day_starts) AS day_start_utc,
                unnest($day_ends) AS day_end_utc
        )
        SELECT {", ".join(f"e.{c}" for c in SALE_EVENT_COLUMNS)},
            length(e.buyer_ref) AS buyer_ref_length,
            e.channel IS NULL OR regexp_full_match(e.channel, '{CHANNEL_PATTERN}') AS channel_well_formed,
            CAST(sign(e.amount_minor) AS INTEGER) AS amount_sign,
            CASE WHEN e.event_type = 'sale' THEN 1 WHEN e.event_type IN ({money_back}) THEN -1 END AS expected_sign,
            abs(e.amount_minor) AS abs_amount,
            e.amount_minor - e.fee_minor AS amount_minus_fee,
            CASE WHEN r.fees_stated THEN e.fee_minor ELSE 0 END AS expected_fee,
            e.creator_id IN (SELECT creator_id FROM creators WHERE region = e.region) AS creator_onboarded,
            $region AS store_region,
            $currency AS expected_currency,
            d.day_start_utc,
            d.day_end_utc,
            $region || '{KEY_SEPARATOR}' || e.creator_id AS region_creator_id,
            $region || '{KEY_SEPARATOR}' || e.product_id AS region_product_id
        FROM sale_events AS e JOIN days AS d ON e.local_date = d.local_date
        LEFT JOIN batch_rails AS r ON r.batch_id = e.batch_id AND r.source = e.source
        ORDER BY e.local_date, e.occurred_at
    """


def sale_events_sql_parameters(region: RegionConfig, days: list[dt.date]) -> dict[str, Any]:
    """The named parameters of `sale_events_sql` for a region's days."""
    bounds = [day_bounds(region, day) for day in days]
    return {
        "region": region.code,
        "currency": region.currency,
        "days": days,
        "day_starts": [start for start, _ in bounds],
        "day_ends": [end for _, end in bounds],
    }


def day_bounds(region: RegionConfig, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a local day of the region starts (included) and ends (excluded)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=region.tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=region.tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def rollup_sql(table: str) -> str:
    """A published rollup, the rows of the regions in `?` (a list) with the currencies in `?` (same order), with
    the net its parts say it must have (where it has money) and the ids keyed by region."""
    columns = ["t.*", "r.expected_currency"]
    if table not in COUNT_ONLY:
        columns.append("t.gross_minor - t.refunds_minor - t.reversals_minor - t.fees_minor AS expected_net")
    if table in ("creator_daily", "product_daily"):
        columns.append(f"t.region || '{KEY_SEPARATOR}' || t.creator_id AS region_creator_id")
    if table == "product_daily":
        columns.append(f"t.region || '{KEY_SEPARATOR}' || t.product_id AS region_product_id")
    return f"""
        WITH r AS (
            SELECT unnest(?::VARCHAR[]) AS region, unnest(?::VARCHAR[]) AS expected_currency
        )
        SELECT {", ".join(columns)}
        FROM rollups.{table} AS t JOIN r ON t.region = r.region
        ORDER BY t.region, t.local_date
    """


def rollup_sql_parameters(regions: list[RegionConfig]) -> list[Any]:
    return [[r.code for r in regions], [r.currency for r in regions]]


def keyed_pattern(patterns: dict[str, str]) -> str:
    """One regex for ids keyed by their region (`KE|KE-C0001`): each region's full-match pattern applies to the
    ids of that region only, as if each region were validated with its own pattern."""
    alternatives = []
    for code, pattern in sorted(patterns.items()):
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError(f"the id pattern of {code} must be a full-match regex (^...$), not {pattern!r}")
        alternatives.append(f"{re.escape(code + KEY_SEPARATOR)}(?:{pattern[1:-1]})")
    return "^(?:" + "|".join(alternatives) + ")$"


def sale_events_parameters(regions: list[RegionConfig]) -> dict[str, Any]:
    """Suite parameters for the stored events of these regions: their creator and product id patterns."""
    return {
        "creator_pattern": keyed_pattern({r.code: r.creator_pattern for r in regions}),
        "product_pattern": keyed_pattern({r.code: r.product_pattern for r in regions}),
    }


def rollup_parameters(regions: list[RegionConfig]) -> dict[str, Any]:
    """Suite parameters for the rollup rows of these regions: the regions and their id patterns."""
    return {"region": [r.code for r in regions], **sale_events_parameters(regions)}


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def sale_events_suite() -> ExpectationSuite:
    """What must be true of a region's stored events of one local day (and of all its days together)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    keys = ["event_id", "creator_id", "product_id", "occurred_at"]
    expectations = [
        *(gxe.ExpectColumnValuesToNotBeNull(column=c, notes="A key column of the stored event.") for c in keys),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["store_region", "event_id"],
            ignore_row_if="any_value_is_missing",
            notes="Derived: store_region is the region whose store the row was read from. One payment's event"
            " (transaction:event_type:status) is stored once in its region, on whichever day; duplicates are"
            " counted, never loaded.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="region",
            column_B="store_region",
            ignore_row_if="either_value_is_missing",
            notes="A region's store holds only that region's events.",
        ),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        _currency_expectation(),
        *_id_expectations(("creator", "product")),
        gxe.ExpectColumnValuesToBeInSet(
            column="creator_onboarded",
            value_set=[True],
            notes="Derived: the creator is in the region's registry copy. Sales of unknown creators are held in"
            " quarantine until the creator is onboarded, never loaded.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="amount_sign",
            column_B="expected_sign",
            notes="Derived: amount_sign = sign(amount_minor); expected_sign = 1 for a sale, -1 for "
            + ", ".join(MONEY_BACK)
            + " (none for another event type). A sale brings money in; refunds, reversals and chargebacks take it"
            " back. Zero is never an event. (Not a pair-in-set check on event_type: GX runs that one row by row.)",
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
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="fee_minor",
            column_B="expected_fee",
            notes="Derived: expected_fee = fee_minor, or 0 where the event's rail stated no fees when its file was"
            " read (the store's batch_rails; `kanda regions list` shows each rail's answer now). A fee there was not"
            " sent by the rail: typed by hand or altered. The rollups' fees_stated is false for such events.",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="occurred_at",
            column_B="day_start_utc",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            notes="Derived: day_start_utc is the instant the row's local day starts in the region's zone. Every"
            " event of the day happened within that local day.",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="day_end_utc",
            column_B="occurred_at",
            or_equal=False,
            ignore_row_if="either_value_is_missing",
            notes="Derived: day_end_utc is the instant the next local day starts (excluded).",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="buyer_ref_length",
            value_set=[64],
            notes="Derived: length(buyer_ref). Buyer contacts are stored only as 64-character salted hashes;"
            " the values themselves are not read, so no contact detail can reach Data Docs.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="channel_well_formed",
            value_set=[True],
            notes="Derived: the channel is NULL or a lower-case word that starts with a letter (the contract's"
            " CHANNEL_PATTERN). channel_daily publishes channels as they are, so an e-mail address or phone number"
            " there would leave the region; the values themselves are not read here either.",
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
        _currency_expectation(),
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
        expectations += _id_expectations(("creator", "product") if table == "product_daily" else ("creator",))
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
        _currency_expectation(),
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


def _currency_expectation():
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnPairValuesToBeEqual(
        column_A="currency",
        column_B="expected_currency",
        ignore_row_if="either_value_is_missing",
        notes="Derived: expected_currency is the currency of the row's region. A region settles in its own currency.",
    )


def _id_expectations(kinds: tuple[str, ...]) -> list:
    """Each id matches its own region's pattern: the id prefixed with its region, against `keyed_pattern`."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToMatchRegex(
            column=f"region_{kind}_id",
            regex=_param(f"{kind}_pattern"),
            notes=f"Derived: region_{kind}_id = region{KEY_SEPARATOR}{kind}_id, the region being the store's for"
            f" sale events. The {kind} id has its own region's shape ({kind}_pattern has one alternative per"
            " region).",
        )
        for kind in kinds
    ]
