"""JazzCash IPN records (`jazzcash_ipn`, Pakistan): one JSON object per line, as our IPN listener stores them.

Fields: `pp_TxnRefNo` (the merchant's payment reference: the transaction id), `pp_Amount` (**paisa** as a string,
"10000" = PKR 100.00), `pp_TxnCurrency`, `pp_TxnDateTime` (`YYYYMMDDHHmmss`, Asia/Karachi wall time),
`pp_ResponseCode`, `pp_ResponseMessage`, `pp_RetreivalReferenceNo` (sic), `pp_BillReference` (carries
"<creator>.<product>"), `ppmpf_1..5` (ppmpf_1 = buyer phone, 03xx...), `pp_SecureHash`, and `pp_TxnType`.

Vocabulary (response codes are JazzCash's; the pending set and the refund representation are our design):
- `pp_ResponseCode` "000" or "121" -> success; "124" (voucher/over-the-counter order placed, awaiting payment) and
  "157" (transaction pending) -> pending; any other 3-digit code ("199", "999", "110", ...) -> failed; missing or
  malformed -> null (quarantined).
- `pp_TxnType` "REFUND" / "REVERSAL" are money going back for the original payment: the record repeats the
  original `pp_TxnRefNo`, `pp_Amount` is the positive amount returned (negated here), `pp_TxnDateTime` is the time
  of the refund. Any other type (MWALLET, MPAY, OTC, MIGS, ...) is a sale, and its type becomes the `channel`.
- The IPN carries no fee (JazzCash deducts its MDR at settlement), so `fee_minor` is 0 and no `net_minor` is
  stated. `pp_SecureHash` is not verified here: the integrity salt is a merchant secret the listener checks.

`source_row` is the 1-based number of the record among the file's non-blank lines. Records without a
`pp_TxnRefNo` and `pp_Amount` (e.g. listener health pings) are not payments: they are dropped and counted in
`ignored`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    finish,
    int_string,
    iter_ndjson_chunks,
    normalise_phone,
    raw_record,
    reference_parts,
    rejection,
    utc_from_local,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

FORMAT = "jazzcash_ipn"
FIELDS = [
    "pp_Version",
    "pp_TxnType",
    "pp_TxnRefNo",
    "pp_Amount",
    "pp_TxnCurrency",
    "pp_TxnDateTime",
    "pp_BillReference",
    "pp_Description",
    "pp_ResponseCode",
    "pp_ResponseMessage",
    "pp_RetreivalReferenceNo",
    "ppmpf_1",
    "ppmpf_2",
    "ppmpf_3",
    "ppmpf_4",
    "ppmpf_5",
    "pp_SecureHash",
]
SCHEMA: dict[str, pl.DataType] = {name: pl.String() for name in FIELDS}
EXPECTS = Expects(
    "JazzCash IPN records, one JSON object per line",
    "ndjson",
    ("pp_TxnRefNo", "pp_Amount", "pp_TxnCurrency", "pp_TxnDateTime", "pp_ResponseCode", "pp_BillReference"),
)
SUCCESS_CODES = ["000", "121"]
PENDING_CODES = ["124", "157"]
_MONEY_BACK = {"REFUND": "refund", "REVERSAL": "reversal"}


class JazzCashAdapter:
    format_name = FORMAT
    expects = EXPECTS

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        offset = 0
        for chunk in iter_ndjson_chunks(path, ctx.batch_rows, SCHEMA, expects=EXPECTS, region=ctx.region):
            payment = pl.col("pp_TxnRefNo").is_not_null() | pl.col("pp_Amount").is_not_null()
            frame = chunk.with_row_index("source_row", offset=offset + 1).with_columns(
                pl.col("source_row").cast(pl.Int64)
            )
            data = frame.filter(payment)
            if offset == 0 and data.is_empty() and chunk.height > 0:
                problem = (
                    "not a JazzCash IPN file: no record in the first block has pp_TxnRefNo or pp_Amount "
                    "(is this another rail's feed?)"
                )
                raise rejection("wrong_columns", problem, EXPECTS, ctx.region)
            offset += chunk.height
            yield AdapterChunk(frame=self._map(data, ctx), ignored=frame.height - data.height)

    @staticmethod
    def _map(frame: pl.DataFrame, ctx: ReadContext) -> pl.DataFrame:
        kind = pl.col("pp_TxnType").str.strip_chars().str.to_uppercase()
        event_type = kind.replace_strict(_MONEY_BACK, default="sale", return_dtype=pl.String)
        code = pl.col("pp_ResponseCode").str.strip_chars()
        status = (
            pl.when(code.is_in(SUCCESS_CODES))
            .then(pl.lit("success"))
            .when(code.is_in(PENDING_CODES))
            .then(pl.lit("pending"))
            .when(code.str.contains(r"^\d{3}$"))
            .then(pl.lit("failed"))
        )
        paisa = int_string(pl.col("pp_Amount"))
        # The region's exponent is 2 (paisa); a region with another exponent would need rescaling here.
        amount = pl.when(event_type == "sale").then(paisa).otherwise(-paisa.abs())
        creator, product = reference_parts(pl.col("pp_BillReference").str.strip_chars(), ctx.region.reference_pattern)
        mapped = frame.with_columns(
            transaction_id=pl.col("pp_TxnRefNo").str.strip_chars().replace("", None),
            event_type=event_type,
            status=status,
            creator_id=creator,
            product_id=product,
            channel=pl.when(event_type == "sale").then(kind.str.to_lowercase()).otherwise(None),
            amount_minor=amount,
            fee_minor=pl.lit(0, pl.Int64),
            currency=pl.col("pp_TxnCurrency").str.strip_chars().str.to_uppercase(),
            occurred_at=utc_from_local(pl.col("pp_TxnDateTime"), "%Y%m%d%H%M%S", ctx.region.zone),
            _contact=normalise_phone(pl.col("ppmpf_1"), ctx.region.calling_code),
            raw_record=raw_record(FIELDS),
        )
        return finish(add_buyer_ref(mapped, "_contact", ctx.salt))


ADAPTER = register(JazzCashAdapter())
