"""M-Pesa statement export (Kenya), CSV: `Receipt No, Completion Time, Details, Transaction Status, Paid In,
Withdrawn, Balance`.

A statement is a ledger of the till's account, not a list of sales, so rows are classified:

| row                                                          | event_type / status               | amount     |
|--------------------------------------------------------------|-----------------------------------|------------|
| Paid In, status Completed / Pending / Failed, Expired        | sale / success, pending, failed   | +Paid In   |
| Paid In, status Reversed (the payment listed again)          | sale, then reversal / success     | ±Paid In   |
| Paid In, Details saying Reversal or Refund (money came back) | none: quarantined, never a sale   |            |
| Withdrawn, Details "Reversal of [transaction] <receipt> ..." | reversal / (status as above)      | -Withdrawn |
| Withdrawn, Details "Refund of [transaction] <receipt> ..."   | refund / (status as above)        | -Withdrawn |
| Withdrawn, "Pay Utility Reversal" (no receipt in Details)    | reversal of Linked Transaction ID | -Withdrawn |
| other Withdrawn rows naming an account (`Acc. ...`)          | none: quarantined, never ignored  |            |
| charges, sweeps between the org's own accounts, loans, ...   | ignored, in either column         |            |
| any other Withdrawn row (payouts, transfers)                 | ignored                           |            |
| repeated page-header rows, rows without a receipt number     | ignored (but see below)           |            |

Real statements, as public integrations read them ([T] third-party, [I] inference):
- [T] The org portal's export (Cecypo-Tech/frappe-mpsa-payments `statement_parser.py` and its fixture
  `tests/fixtures/make_fixture.py`): `Receipt No., Completion Time, Initiation Time, Details, Transaction Status,
  Paid In, Withdrawn, Balance, Balance Confirmed, Reason Type, Other Party Info, Linked Transaction ID, A/C No.,
  Currency`, times `DD-MM-YYYY HH:MM:SS`, Details `Pay Bill from 25470****111 - NAME Acc. <account>`; each payment
  has a "Pay Bill Charge" twin under the same receipt (blank Paid In, negative Withdrawn). Its newer template
  heads the money columns `Paid In (KSHs)`, `Withdrawn (KSHs)`, `Balance (KSHs)` and lists sweeps such as
  "Utility Account to Organization Settlement Account" as a Paid In / Withdrawn pair under one receipt.
- [T] A reversed paybill payment reads "Pay Utility Reversal ..." (a paybill's CSV logger in the public code
  corpus skips rows starting "Pay Utility Reversal", "Utility Account", "Organization Settlement" when it books
  payments; several statement categorisers list the same words), naming no receipt in Details.
- [I] The org export's Linked Transaction ID is the receipt such a reversal undoes; used only where Details names
  none or the same one, and only when it looks like a receipt. Such a reversal names no account (`Acc.`): the
  ingest gives it the creator and product of the sale it undoes, where kanda holds that sale
  (`kanda/regional/owners.py`); a reversal read alone, as here, has none.
- [T] Personal statements (PDF converted): Withdrawn printed negative ("-425.00"), masked phones
  ("2547******584"), "Funds received from - <phone> NAME", Fuliza's "OverDraft of Credit Party" sharing the
  receipt of the payment it funded, "Customer Transfer of Funds Charge", "Withdrawal Charge".

- transaction_id: the payment's receipt number; reversal and refund rows carry the receipt they undo in Details, so
  they link to the sale. A payment seen first as Pending and later Completed has one receipt. A row with a
  completion time and money paid in but no receipt is a record with its transaction id missing (quarantined).
- amounts: major units with comma thousands (`"10,000.00"`), read exactly into minor units; withdrawals may be
  printed negative, so their absolute value is taken. A Paid In keeps its sign: a negative Paid In is a negative
  sale, which the contract quarantines, never money received. The statement lists M-Pesa's charges as separate
  rows, so a sale's fee_minor is 0 here. Currency is the region's (a statement has one account currency), unless
  the file has a Currency column (the org export): then each row's own, so a row in another currency is
  quarantined, never booked as shillings ("KSH"/"KSHS" read as KES).
- Completion Time is local (the region's zone) as `YYYY-MM-DD HH:MM:SS`, `DD/MM/YYYY HH:MM[:SS]` or
  `DD-MM-YYYY HH:MM:SS`, or with the month's name and a 12-hour clock as a PDF converter writes it on request
  ([T] DavidAmunga/mpesa2csv `dateFormatter.ts`: `11-Feb-2025 01:42 PM`, `11/Feb/2025 01:42 PM`). A numeric date
  with AM/PM is left unread (quarantined): it is how a spreadsheet in a US locale writes dates, month first. A file
  whose slash dates are month first (a date such as 12/13/2026) is rejected (`wrong_date_order`): read day first,
  its dates up to the 12th would load on the wrong day.
- creator/product: the Pay Bill account reference in Details (`... Acc. KE-C0001.KE-P00001`), by the region pattern,
  which ends the account with Details (or its first line): read unanchored, "KE-P000012" loaded as KE-P00001. The
  account is as the buyer typed it, so it is matched regardless of case and the ids are upper-cased
  ("ke-c0001.ke-p00001" is KE-C0001's KE-P00001, not a row without a creator).
- buyer_ref: the phone after "from" in Details; masked phones (`0****393`) give a null buyer_ref.
- Header variants are accepted by a normalised name (`Receipt No.`, `Paid Out` for Withdrawn, a `(KSHs)` unit,
  extra columns such as `Balance Confirmed`, a BOM); the header may follow a few title lines, which are counted as
  ignored.
- Lines with another field count (disclaimers, "Page 3 of 9") are skipped by the CSV reader and counted as ignored,
  unless the line starts with a receipt number: that is a record with a stray or missing separator (Paid In written
  4,300.00 without quotes, a comma in Details, a last field missing), a sale that would vanish while every count
  balances, so the file is rejected (`malformed`), naming the line and its field count.
- source_row: the 1-based number of the record among the records after the header that have the statement's field
  count (so repeated page headers and ignored rows consume numbers; disclaimer lines do not).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from regions.parsing import (
    add_buyer_ref,
    check_file,
    detect_encoding,
    iter_csv_chunks,
    major_to_minor,
    map_chunk,
    map_pool,
    month_first_record,
    month_first_rejection,
    normalise_phone,
    numbered_chunks,
    raw_record,
    reference_groups,
    reference_parts,
    rejection,
    require_columns,
    utc_from_local,
)
from regions.rails import register
from regions.rails.base import AdapterChunk, Expects, ReadContext

#: Normalised header name (lower case, letters and digits only) -> canonical column.
ALIASES = {
    "receiptno": "receipt",
    "receiptnumber": "receipt",
    "receipt": "receipt",
    "completiontime": "time",
    "completiondate": "time",
    "details": "details",
    "transactionstatus": "status",
    "status": "status",
    "paidin": "paid_in",
    "withdrawn": "withdrawn",
    "paidout": "withdrawn",
    "withdrawals": "withdrawn",
    # optional: the M-PESA org portal's export names the receipt a reversal undoes, and each row's currency
    "linkedtransactionid": "linked",
    "currency": "currency",
}
REQUIRED = ["receipt", "time", "details", "status", "paid_in", "withdrawn"]
OPTIONAL = ["linked", "currency"]
#: The required columns as M-Pesa's statement names them, in the order of REQUIRED.
EXPECTS = Expects(
    "an M-Pesa statement CSV",
    "csv",
    ("Receipt No", "Completion Time", "Details", "Transaction Status", "Paid In", "Withdrawn"),
)
#: Transaction Status -> status. An attempt that Cancelled or Expired (the buyer never entered the PIN) moved no
#: money, as a Failed one: quarantined as an unknown word, it was a row a steward could only reject.
_STATUS = {
    "completed": "success",
    "pending": "pending",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "failed",
}
_TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%b-%Y %I:%M %p",
    "%d/%b/%Y %I:%M %p",
]
#: "Reversal of <receipt>", "Refund of transaction <receipt>": the receipt is the first word after "of" (within a
#: few words) that starts with a letter and holds a digit, as receipts do (QGH7XK2L9P), so neither a phone number
#: nor a word such as "transaction" is taken for one: read as a receipt, every
#: reversal so worded shared the id TRANSACTION, and the second of them vanished as its duplicate. A receipt of
#: another length (`_UNDONE_RECEIPT`), or none, leaves the reversal without a transaction id: quarantined, never
#: guessed, and never ignored like a charge. So does a first such word that is money ("Reversal of KES10000.00
#: for ..." named receipt KES10000): a currency before digits alone (`_MONEY_WORD`), or a word that goes on with a
#: decimal or thousands mark and a digit (group 3).
_UNDO = r"(?i)\b(reversal|refund)\b(?:\s+of\b(?:\s+(?:\S+\s+){0,3}?\b([A-Z]{1,11}[0-9][A-Z0-9]{0,10})\b([.,][0-9])?)?)?"
_UNDONE_RECEIPT = (8, 12)
_MONEY_WORD = r"^(?:KES|KSHS?|USD)[0-9]+$"
#: A receipt number as the first field of a line: 8 to 12 capital letters and digits (SBA1000001, QGH7XK2L9P).
_RECEIPT = re.compile(r"[A-Z0-9]{8,12}")
#: Rows that are not a customer paying, whichever column their money is in (ignored): M-PESA's own charges ("Pay
#: Bill Charge", "Customer Transfer of Funds Charge": words only, ending in Charge; a payment's Details always
#: hold a number), the org account's sweeps between its own accounts ("Utility Account to Organization Settlement
#: Account", listed as a Paid In / Withdrawn pair under one receipt), and on a personal statement money that is a
#: loan, savings or a business paying the holder (Fuliza's "OverDraft of Credit Party", M-Shwari, KCB M-PESA,
#: "Funds received from", "Business Payment from", ...). Anchored at the start of Details: a payment's Details
#: start "Pay Bill ..." / "Merchant ...", so no buyer's name or account can make one match.
_NOT_A_PAYMENT = (
    r"(?i)^(?:[a-z -]*\bcharge"
    r"|(?:utility|organization [a-z]+) account to organization [a-z]+ account"
    r"|(?:overdraft of credit party|od loan repayment|m-shwari (?:deposit|withdraw|loan)"
    r"|kcb m-pesa (?:deposit|withdraw)"
    r"|funds received from|business payment from|salary payment from|promotion payment from"
    r"|deposit of funds at agent|unit trust withdraw)\b.*)$"
)
#: A header's unit in the org portal's newer export ("Paid In (KSHs)"): the region's currency, Kenya shillings.
_HEADER_UNIT = re.compile(r"\(\s*(?:kshs?|kes)\s*\)\s*$", re.IGNORECASE)
#: What the org portal writes in its Currency column for shillings, besides the ISO code.
_SHILLINGS = {"KSH": "KES", "KSHS": "KES"}
#: How far into the file the header row is looked for (title lines of a PDF-to-CSV conversion).
HEADER_SEARCH_LINES = 30


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _HEADER_UNIT.sub("", name).lower())


class MpesaStatementAdapter:
    format_name = "mpesa_statement"
    expects = EXPECTS
    states_fees = False  # M-Pesa's charges are rows of their own, not a sale's fee (see above)
    running_totals = False  # a reversal is a row of its own

    def read(self, path: Path, ctx: ReadContext) -> Iterator[AdapterChunk]:
        check_file(path, EXPECTS, ctx.region)
        encoding = detect_encoding(path)
        try:
            header_index, names = _find_header(path, encoding, ctx)
            canonical = [ALIASES.get(_normalise(n), n) for n in names]
            _require_complete(path, len(names), ctx)
        except csv.Error as exc:  # e.g. a field over the csv module's size limit: not a statement's line
            problem = f"the CSV is malformed: a line cannot be read as CSV ({exc})"
            raise rejection("malformed", problem, EXPECTS, ctx.region) from None
        chunks = iter_csv_chunks(
            path,
            ctx.batch_rows,
            column_names=names,
            skip_rows=header_index + 1,
            ragged="skip",
            record_line=_starts_with_receipt,
            encoding=encoding,
            expects=EXPECTS,
            region=ctx.region,
        )
        time_column = names[canonical.index("time")]
        with map_pool() as pool:
            for rows, skipped in numbered_chunks(chunks, header_index):
                month_first = month_first_record(rows.get_column(time_column), rows.get_column("source_row"))
                if month_first is not None:
                    raise month_first_rejection(month_first, EXPECTS, ctx.region)
                frame, ignored = map_chunk(
                    pool, functools.partial(_map, names=names, canonical=canonical, ctx=ctx), rows
                )
                yield AdapterChunk(frame=frame, ignored=ignored + skipped)


def _find_header(path: Path, encoding: str, ctx: ReadContext) -> tuple[int, list[str]]:
    """The line number and names of the header: the first line naming a receipt and a completion time."""
    first: list[str] = []
    with path.open("r", encoding=encoding, newline="") as handle:
        for index, line in enumerate(handle):
            if index >= HEADER_SEARCH_LINES:
                break
            fields = [f.strip() for f in next(csv.reader([line.lstrip("\ufeff")]), [])]
            first = first or fields
            present = {ALIASES.get(_normalise(f)) for f in fields}
            if {"receipt", "time"} <= present:
                matched = [ALIASES.get(_normalise(f), f) for f in fields]
                require_columns(matched, EXPECTS, ctx.region, required=REQUIRED, found=fields)
                return index, fields
    if not first:
        raise rejection("empty_file", "the file has no header row (its first lines are blank)", EXPECTS, ctx.region)
    matched = [ALIASES.get(_normalise(f), f) for f in first]
    require_columns(matched, EXPECTS, ctx.region, required=REQUIRED, found=first)
    problem = f"no header row in the first {HEADER_SEARCH_LINES} lines"
    raise rejection("wrong_columns", problem, EXPECTS, ctx.region)  # pragma: no cover - require_columns raised


def _starts_with_receipt(line: str) -> bool:
    """Whether a line's first field is a receipt number, i.e. the line is a record and not a structure line.

    Disclaimers, "Page 2 of 9", totals and title lines start with words; a line that starts with a receipt number
    is a payment even when its field count is wrong. Called only for lines with the wrong field count and for the
    last line. The first field is the text before the first comma (a receipt number holds no comma), so a damaged
    line cannot make this raise.
    """
    first, _, rest = line.partition(",")
    first = first.strip().strip('"').strip()
    if _RECEIPT.fullmatch(first) is None:
        return False
    # An all-caps word before a comma ("DISCLAIMER, figures in KES") is a structure line; a receipt of letters only
    # is still a record when a date follows it, as the Completion Time does.
    return any(c.isdigit() for c in first) or rest.strip().strip('"')[:1].isdigit()


def _require_complete(path: Path, n_fields: int, ctx: ReadContext) -> None:
    """Reject a file cut off inside a record.

    Lines with the wrong field count are skipped (disclaimers), so a cut-off last record would vanish silently. A
    last line without a newline that starts like a record (a receipt number) but lacks fields is a truncated
    download, not a disclaimer.
    """
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65_536))
        tail = handle.read()
    if tail.endswith((b"\n", b"\r")):
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("latin-1")
    fields = next(csv.reader([last]), [])
    if _starts_with_receipt(last) and len(fields) < n_fields:
        # the line itself is content: only its field count is reported
        problem = (
            f"the file ends in the middle of a record (truncated download?): the last line has {len(fields)} of "
            f"{n_fields} fields and no line end"
        )
        raise rejection("truncated", problem, EXPECTS, ctx.region)


def _map(rows: pl.DataFrame, names: list[str], canonical: list[str], ctx: ReadContext) -> tuple[pl.DataFrame, int]:
    """Statement rows -> adapter rows, and how many lines were not records.

    Every value used more than once is first added to the chunk as a working column (`_receipt`, `_withdrawal`,
    ...): an eager polars select shares no subexpressions, so an expression used in four places runs four times.
    `raw_record` still reads the cells as they arrived.
    """
    by_canonical = dict(zip(canonical, names, strict=True))
    optional = [
        (pl.col(by_canonical[canon]).str.strip_chars() if canon in by_canonical else pl.lit(None, pl.String)).alias(
            f"_{canon}"
        )
        for canon in OPTIONAL
    ]
    work = rows.with_columns(
        *(pl.col(by_canonical[canon]).str.strip_chars().alias(f"_{canon}") for canon in REQUIRED), *optional
    ).with_columns(_status=pl.col("_status").str.to_lowercase())
    empty_in = pl.col("_paid_in").is_in(["", "-", "0", "0.00"])
    empty_out = pl.col("_withdrawn").is_in(["", "-", "0", "0.00"])
    work = work.with_columns(
        reference_groups(pl.col("_details"), "(?i)" + ctx.region.reference_pattern),
        _withdrawal=empty_in & ~empty_out,
        _undo=pl.col("_details").str.extract_groups(_UNDO),
        _not_a_payment=pl.col("_details").str.contains(_NOT_A_PAYMENT),
    )
    receipt, details, status_raw = pl.col("_receipt"), pl.col("_details"), pl.col("_status")
    is_withdrawal, undo = pl.col("_withdrawal"), pl.col("_undo")
    undo_kind = undo.struct.field("1").str.to_lowercase()
    # Money going back is worded "Reversal of <receipt>", "Refund of ...", or with no receipt at all ("Pay Utility
    # Reversal", the org portal's words, which name the receipt in Linked Transaction ID): any such withdrawal is a
    # reversal or refund, kept whether or not its receipt can be read, never ignored like a charge: ignored, the
    # sale stayed counted while its money went back. The same words on money paid in (a reversal coming back) are
    # no sale: kept with no event type, so quarantined, never loaded as a sale of the account named beside them.
    money_back = undo.struct.field("1").is_not_null() & ~pl.col("_not_a_payment")
    # A payout names no creator's account; money going out of the account with one (a reversal worded otherwise, or
    # a payment whose amount a conversion put under Withdrawn) is kept with no event type, so quarantined: ignored,
    # it would vanish while every count balanced, and the sale it may undo would stay counted.
    names_account = reference_parts()[0].is_not_null()
    money_back = money_back | (is_withdrawal & names_account & ~pl.col("_not_a_payment"))
    # Repeated page headers have the right field count; their "Receipt No" cell gives them away. A row with a
    # completion time and money paid in but no receipt is a record even without its receipt: it is quarantined for
    # the missing receipt, not ignored, or a payment would vanish while every count balanced.
    carries_money = (pl.col("_time") != "") & (~empty_in | (~empty_out & money_back))
    data_row = ((receipt != "") | carries_money) & (_normalise_expr(receipt) != "receiptno")
    kept = work.filter(data_row & ~pl.col("_not_a_payment") & (~is_withdrawal | money_back))
    ignored = rows.height - kept.height
    event_type = (
        pl.when(is_withdrawal)
        .then(undo_kind)
        .when(money_back)
        .then(pl.lit(None, pl.String))
        .when(status_raw == "reversed")
        .then(pl.lit("reversal"))
        .otherwise(pl.lit("sale"))
    )
    status = (
        pl.when(status_raw == "reversed")
        .then(pl.lit("success"))
        .otherwise(status_raw.replace_strict(_STATUS, default=None))
    )
    # The receipt a withdrawal undoes: named in Details (first word after "of" that looks like a receipt), or in the
    # org portal's Linked Transaction ID. Neither, or two that disagree, and it has none: quarantined, never guessed.
    named = undo.struct.field("2").str.to_uppercase()
    in_details = (
        pl.when(
            named.str.len_chars().is_between(*_UNDONE_RECEIPT)
            & undo.struct.field("3").is_null()
            & ~named.str.contains(_MONEY_WORD)
        )
        .then(named)
        .otherwise(None)
    )
    linked = pl.col("_linked").str.to_uppercase()
    linked = pl.when(linked.str.contains(r"^[A-Z0-9]{8,12}$")).then(linked).otherwise(None)
    undone = (
        pl.when(in_details.is_null() | linked.is_null() | (in_details == linked))
        .then(pl.coalesce(in_details, linked))
        .otherwise(None)
    )
    # A Currency column (the org portal's export) is read: a row in another currency is quarantined, never booked
    # as shillings. Without one, the statement's account currency is the region's.
    currency_text = pl.col("_currency").str.to_uppercase()
    currency = (
        pl.when(currency_text.is_null() | (currency_text == ""))
        .then(pl.lit(ctx.region.currency))
        .otherwise(currency_text.replace(_SHILLINGS))
    )
    # Withdrawals may be printed negative, so their size is taken; Paid In keeps its sign, so a negative Paid In
    # stays a negative sale and is quarantined (as on every rail) instead of being booked as money received.
    paid, returned = pl.col("_paid"), pl.col("_returned")
    creator, product = (part.str.to_uppercase() for part in reference_parts())
    mapped = kept.with_columns(
        event_type=event_type,
        _paid=major_to_minor(pl.col("_paid_in"), ctx.region.exponent),
        _returned=major_to_minor(pl.col("_withdrawn"), ctx.region.exponent).abs(),
    ).select(
        pl.col("source_row"),
        pl.when(is_withdrawal).then(undone).when(receipt != "").then(receipt).alias("transaction_id"),
        pl.col("event_type"),
        status.alias("status"),
        creator.alias("creator_id"),
        product.alias("product_id"),
        normalise_phone(details.str.extract(r"(?i)\bfrom\s+(\+?[\d*][\d* ]*[\d*])", 1), ctx.region.calling_code).alias(
            "contact"
        ),
        pl.lit("mpesa").alias("channel"),
        pl.when(is_withdrawal)
        .then(-returned)
        .when(pl.col("event_type") == "sale")
        .then(paid)
        .otherwise(-paid)
        .alias("amount_minor"),
        pl.lit(0, pl.Int64).alias("fee_minor"),
        currency.alias("currency"),
        utc_from_local(pl.col("_time"), _TIME_FORMATS, ctx.region.zone).alias("occurred_at"),
        raw_record(names),
        (~is_withdrawal & (pl.col("event_type") == "reversal")).alias("_relisted"),
    )
    return add_buyer_ref(_with_relisted_sales(mapped), "contact", ctx.salt), ignored


def _with_relisted_sales(mapped: pl.DataFrame) -> pl.DataFrame:
    """A payment listed with status Reversed yields its sale before its reversal, on the same line.

    Whether a statement also lists the payment as Completed is not something a file shows: where it does, the sale
    here is a duplicate of that row's; where a statement shows the payment once, as Reversed, a reversal alone took
    from the creator money that was never counted in. The sale makes the figure right either way (net 0)."""
    relisted = mapped.filter(pl.col("_relisted"))
    if relisted.is_empty():
        return mapped.drop("_relisted")
    sales = relisted.with_columns(event_type=pl.lit("sale"), amount_minor=-pl.col("amount_minor"))
    both = pl.concat([sales.with_columns(_relisted=pl.lit(False)), mapped.with_columns(_relisted=pl.lit(True))])
    return both.sort("source_row", "_relisted", maintain_order=True).drop("_relisted")


def _normalise_expr(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


ADAPTER = register(MpesaStatementAdapter())
