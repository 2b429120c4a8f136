"""The canonical sale-event contract every regional adapter maps to.

One row is one event about one payment: the sale itself, or a later refund, reversal or chargeback, each with the
status the rail reported. Money is signed int64 minor units (sales positive, refunds/reversals/chargebacks
negative); times are UTC; `local_date` is the day in the region's own zone. Raw emails and phones never appear
here: `buyer_ref` is a salted hash made inside the adapter.

The model is the single definition of validity: the ingestion boundary validates every batch with it, and data
stewards' fixes go back through it. It is also the one schema source: the store's `sale_events` table
(`kanda.regional.schema.sale_events_ddl`), the frames' dtypes (`contract_dtypes`), `event_id` (`EVENT_ID_SQL`,
`event_id_expr`) and the column descriptions (`column_descriptions`) are all derived from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandera.polars as pa
import polars as pl
import polars_hash as plh

from regions import all_regions, creator_pattern, product_pattern
from regions.money import MINOR_UNIT_EXPONENT

EVENT_TYPES = ("sale", "refund", "reversal", "chargeback")
STATUSES = ("pending", "success", "failed")
#: Largest absolute amount accepted: 10^12 minor units (10 billion in a two-decimal currency). A larger value is
#: almost certainly a unit error (major units read as minor, or the x100 zero-decimal bug).
MAX_ABS_MINOR = 10**12
EARLIEST = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
#: A payment channel as rails name one (card, mobile_money, bank transfer, mwallet): a lower-case word of at most
#: 40 characters that starts with a letter. `channel` is copied from a rail's own field and published as it is
#: (`channel_daily`), so the shape is what keeps a buyer's e-mail address or phone number, mapped there by a
#: changed export or a mistaken spec, out of the central layer: either one fails it ('@', '.', '+', a leading digit).
CHANNEL_PATTERN = r"^[a-z][a-z0-9_ -]{0,39}$"

#: `event_id` is one payment's event of one type and status: what makes redelivery harmless. Derived, never read
#: from a rail; the store computes it as a virtual column from the same parts. A payment has one sale of each
#: status and is reversed at most once, but may be refunded more than once (in two parts): `event_ref` tells
#: refunds apart, and is 0 otherwise, so a sale's id is its first three parts.
EVENT_ID_PARTS = ("transaction_id", "event_type", "status", "event_ref")
EVENT_ID_SEPARATOR = ":"
EVENT_ID_SQL = (
    f" || '{EVENT_ID_SEPARATOR}' || ".join(EVENT_ID_PARTS[:3])
    + f" || CASE WHEN event_ref = 0 THEN '' ELSE '{EVENT_ID_SEPARATOR}' || CAST(event_ref AS VARCHAR) END"
)
#: The event type that a payment may have more than once, told apart by `event_ref`.
REPEATABLE_EVENT = "refund"
#: `event_ref` of a refund, in SQL: the minute it happened (minutes since 1970, UTC). Minutes, not microseconds:
#: the same refund in two statements may be printed with and without its seconds (M-Pesa, MoMo).
REFUND_MINUTE_SQL = "epoch_us(occurred_at) // 60000000"


def event_id_expr() -> pl.Expr:
    """`event_id` as a polars expression: the same value as `EVENT_ID_SQL` (NULL if a part is NULL)."""
    head = pl.concat_str([pl.col(c) for c in EVENT_ID_PARTS[:3]], separator=EVENT_ID_SEPARATOR)
    ref = pl.col("event_ref")
    with_ref = pl.concat_str([head, ref.cast(pl.String)], separator=EVENT_ID_SEPARATOR)
    return pl.when(ref == 0).then(head).otherwise(with_ref)


def event_ref_expr(rail_ref: str | None = None) -> pl.Expr:
    """`event_ref` as a rail's reader gives it: 0 except on a refund, which is told apart from the payment's other
    refunds by the rail's own id of the refund record (`rail_ref`, a text column: a stable 64-bit hash of it) where
    the rail's spec names one (`fields.event_ref`), else by the minute it happened, which a redelivery repeats and
    a second refund does not. Rails whose files restate a running total instead (`Adapter.running_totals`) are
    settled against the store when a batch loads, which sets it to the total."""
    ref = pl.col("occurred_at").dt.epoch("s") // 60
    if rail_ref is not None:
        ref = pl.when(pl.col(rail_ref).is_not_null()).then(_stable_hash(rail_ref)).otherwise(ref)
    return pl.when(pl.col("event_type") == REPEATABLE_EVENT).then(ref).otherwise(pl.lit(0, pl.Int64))


def _stable_hash(column: str) -> pl.Expr:
    # polars' own hash may change between releases; a stored reference must not
    return plh.col(column).nchash.xxhash64().reinterpret(signed=True)


def event_id_value(row: Mapping[str, object]) -> str | None:
    """`event_id_expr` for one row of Python values (a steward's edited row)."""
    parts = [row.get(c) for c in EVENT_ID_PARTS]
    if any(p is None for p in parts):
        return None
    head = EVENT_ID_SEPARATOR.join(str(p) for p in parts[:3])
    return head if parts[3] == 0 else f"{head}{EVENT_ID_SEPARATOR}{parts[3]}"


def event_ref_value(event_type: str | None, occurred_at: dt.datetime | None, parsed: object = None) -> int | None:
    """`event_ref_expr` for one row of Python values (a steward's edited row): the reference the rail's reader gave
    (`parsed`) where the row is still a refund and had one, else the refund's minute; 0 for any other event."""
    if event_type != REPEATABLE_EVENT:
        return 0
    if isinstance(parsed, int) and parsed != 0:
        return parsed
    if occurred_at is None:
        return None
    delta = occurred_at.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) // 60


class SaleEvent(pa.DataFrameModel):
    # Checked against the configured regions when a batch is validated, not when this module is imported: regions
    # may be added from KANDA_REGIONS_DIR (rail specs) after the contract was first loaded.
    region: str = pa.Field(description="Region code (e.g. NG, KE, EG) whose store holds the row.")
    source: str = pa.Field(
        str_length={"min_value": 1}, description="The rail (adapter) that read the row, e.g. paystack or mpesa."
    )
    source_file: str = pa.Field(str_length={"min_value": 1}, description="Name of the native file the row came from.")
    source_row: pl.Int64 = pa.Field(
        ge=1, description="1-based row number in that file, so any stored value can be traced back."
    )
    batch_id: str = pa.Field(
        str_length={"min_value": 1},
        description="The ingestion batch (one per file or release) that loaded the row; see the ledger.",
    )
    transaction_id: str = pa.Field(
        str_length={"min_value": 1, "max_value": 128},
        description="The rail's payment id; a payment's sale and later refunds or reversals share it.",
    )
    event_id: str = pa.Field(
        str_length={"min_value": 1},
        description="transaction_id:event_type:status, and :event_ref for a refund; derived; one stored row per"
        " event id.",
    )
    event_type: str = pa.Field(isin=list(EVENT_TYPES), description="sale, refund, reversal or chargeback.")
    status: str = pa.Field(
        isin=list(STATUSES),
        description="pending, success or failed, as the rail reported it; only success moves money.",
    )
    event_ref: pl.Int64 = pa.Field(
        description="Tells apart the refunds of one payment (refunded in two parts): 0 for any other event; for a"
        " refund, the minute it happened (minutes since 1970, UTC), a hash of the rail's own refund id where the rail"
        " gives one, or, on rails whose exports state a running total of refunds (Stripe, Gumroad), that total in"
        " minor units. Derived.",
    )
    creator_id: str = pa.Field(
        str_matches=creator_pattern(),
        description="Creator: region code, C and four ASCII digits (NG-C0001), decoded from the payment reference.",
    )
    product_id: str = pa.Field(
        str_matches=product_pattern(),
        description="Product: region code, P and five ASCII digits (NG-P00001), decoded from the payment reference.",
    )
    # Made by the adapters' salted SHA-256 (64 hex characters); a length check catches a raw email or phone slipping
    # through at a fraction of a regex's cost over every row.
    buyer_ref: str = pa.Field(
        nullable=True,
        str_length={"min_value": 64, "max_value": 64},
        description="Salted SHA-256 of the buyer's email or phone (never the raw value); NULL when the rail gave none.",
    )
    channel: str = pa.Field(
        nullable=True,
        str_matches=CHANNEL_PATTERN,
        description="Payment channel as the rail names it, in lower case (card, mpesa, bank_transfer, ...): a word"
        " that starts with a letter, at most 40 characters; NULL when the rail did not say.",
    )
    amount_minor: pl.Int64 = pa.Field(
        in_range={"min_value": -MAX_ABS_MINOR, "max_value": MAX_ABS_MINOR},
        description="Signed amount in minor units of currency: sales positive, money going back negative.",
    )
    fee_minor: pl.Int64 = pa.Field(
        in_range={"min_value": 0, "max_value": MAX_ABS_MINOR},
        description="Fee the rail kept, in minor units of currency, never negative.",
    )
    net_minor: pl.Int64 = pa.Field(description="amount_minor - fee_minor, in minor units of currency.")
    currency: str = pa.Field(
        isin=sorted(MINOR_UNIT_EXPONENT), description="ISO 4217 code; always the region's settlement currency."
    )
    occurred_at: pl.Datetime("us", "UTC") = pa.Field(  # type: ignore[valid-type]
        ge=EARLIEST, description="When the event happened, UTC (microseconds)."
    )
    local_date: pl.Date = pa.Field(
        description="The region's local calendar day of occurred_at (its IANA zone): the day every rollup uses."
    )

    @pa.check("region", name="isin")
    def region_is_configured(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(sorted(all_regions())))

    @pa.dataframe_check(name="amount_sign_matches_event_type")
    def amount_sign_matches_event_type(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Sales are positive, money going back is negative; a zero or wrong-signed amount is a mapping error."""
        sale = pl.col("event_type") == "sale"
        return data.lazyframe.select(
            pl.when(sale).then(pl.col("amount_minor") > 0).otherwise(pl.col("amount_minor") < 0)
        )

    @pa.dataframe_check(name="net_is_amount_minus_fee")
    def net_is_amount_minus_fee(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("net_minor") == pl.col("amount_minor") - pl.col("fee_minor"))

    @pa.dataframe_check(name="fee_within_amount")
    def fee_within_amount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A fee larger than the money it was charged on is a unit or column error (the Post-load suite's
        `abs_amount >= fee_minor` says the same after the fact): it would load a sale whose net is negative."""
        return data.lazyframe.select(pl.col("fee_minor") <= pl.col("amount_minor").abs())

    @pa.dataframe_check(name="currency_is_region_currency")
    def currency_is_region_currency(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A region settles in one currency; anything else is a misrouted file or a mapping error."""
        expected = {code: region.currency for code, region in all_regions().items()}
        return data.lazyframe.select(pl.col("currency") == pl.col("region").replace_strict(expected, default=None))

    @pa.dataframe_check(name="creator_in_region")
    def creator_in_region(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("creator_id").str.slice(0, 2) == pl.col("region"))

    @pa.dataframe_check(name="not_in_future")
    def not_in_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A small allowance for clock skew; a sale dated tomorrow is a time-zone or format error."""
        limit = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return data.lazyframe.select(pl.col("occurred_at") <= limit)

    class Config:
        strict = True
        ordered = False
        coerce = False


#: Column order of the contract, used wherever frames are built or written.
CONTRACT_COLUMNS: list[str] = list(SaleEvent.to_schema().columns)

#: Contract columns computed from others rather than stored: the store derives them as virtual columns.
VIRTUAL_COLUMNS: dict[str, str] = {"event_id": EVENT_ID_SQL}


def contract_dtypes() -> dict[str, pl.DataType]:
    """The polars dtype of every contract column, in contract order (to build or decode frames of the contract)."""
    columns = SaleEvent.to_schema().columns
    return {name: columns[name].dtype.type for name in CONTRACT_COLUMNS}


def column_descriptions() -> dict[str, str]:
    """Every contract column's description, for docs, the store and Dagster's column schema."""
    columns = SaleEvent.to_schema().columns
    return {name: columns[name].description or "" for name in CONTRACT_COLUMNS}


#: Rules a data steward may waive with a justification (the row is then loaded as it is): the value is plausible
#: and the data stay consistent. Every other rule is an error that needs a fix or a rejection.
WARNING_RULES: frozenset[str] = frozenset({"not_in_future"})

#: The column each row-level rule is about, so that a quarantine reason names a column and its value.
RULE_COLUMNS: dict[str, str] = {
    "amount_sign_matches_event_type": "amount_minor",
    "net_is_amount_minus_fee": "net_minor",
    "fee_within_amount": "fee_minor",
    "currency_is_region_currency": "currency",
    "creator_in_region": "creator_id",
    "not_in_future": "occurred_at",
}
