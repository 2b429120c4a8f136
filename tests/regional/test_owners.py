"""Money going back that names its payment but not whose it was is loaded with the creator and product of the
payment's sale, wherever that sale is: in the same chunk, earlier in the same file, or in the store."""

from __future__ import annotations

import dataclasses

import polars as pl

from kanda.regional.ingest import ingest_files
from kanda.regional.owners import with_payment_owners
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import ingest_written

#: The M-Pesa org portal's export: its reversals ("Pay Utility Reversal") name the undone receipt only in Linked
#: Transaction ID, with no `Acc.` and an empty A/C No.
HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
    "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.,Currency"
)


def _sale(receipt: str, account: str, time: str = "01-02-2025 10:15:00") -> str:
    return (
        f'{receipt},{time},{time},Pay Bill from 25471****678 - JANE **** WANJIKU Acc. {account},Completed,"5,000.00",,'
        f'"5,000.00",true,Pay Utility,25471****678 - JANE **** WANJIKU,,{account},KES\n'
    )


def _reversal(receipt: str, undone: str, time: str = "02-02-2025 09:30:00") -> str:
    return (
        f'{receipt},{time},{time},Pay Utility Reversal,Completed,,"-5,000.00",0.00,true,Pay Utility Reversal,'
        f"25471****678 - JANE **** WANJIKU,{undone},,KES\n"
    )


def _events(settings: Settings, *payments: str) -> list[tuple]:
    with open_store(settings, "KE", read_only=True) as con:
        return con.execute(
            "SELECT transaction_id, event_type, creator_id, product_id, amount_minor FROM sale_events"
            " WHERE transaction_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY transaction_id, amount_minor DESC",
            [list(payments)],
        ).fetchall()


def test_a_reversal_naming_only_its_receipt_takes_the_sale_s_creator_and_product_from_the_same_file(
    settings: Settings,
) -> None:
    """Each such reversal was quarantined for its creator and product, and a steward typed in the sale's."""
    content = HEADER + "\n" + _sale("TBA1AAAA01", "KE-C0001.KE-P00001") + _reversal("TBA2RRRR01", "TBA1AAAA01")
    report = ingest_written(settings, "KE", settings.home / "statement.csv", content)
    assert (report.loaded, report.quarantined) == (2, 0), report
    assert _events(settings, "TBA1AAAA01") == [
        ("TBA1AAAA01", "sale", "KE-C0001", "KE-P00001", 500_000),
        ("TBA1AAAA01", "reversal", "KE-C0001", "KE-P00001", -500_000),
    ]


def test_the_sale_may_be_in_the_store_or_in_another_chunk_of_the_same_file(settings: Settings) -> None:
    """A statement listed newest first has a reversal before the sale it undoes, chunks apart."""
    january = HEADER + "\n" + _sale("TBA1AAAA01", "KE-C0001.KE-P00001")
    ingest_written(settings, "KE", settings.home / "january.csv", january)
    small = dataclasses.replace(settings, batch_rows=2)  # chunks of two lines
    february = settings.home / "february.csv"
    february.write_text(
        HEADER
        + "\n"
        + _reversal("TBA2RRRR02", "TBA1AAAA02", "02-02-2025 09:45:00")
        + _reversal("TBA2RRRR01", "TBA1AAAA01")
        + _sale("TBA1AAAA03", "KE-C0003.KE-P00003", "02-02-2025 08:05:00")
        + _sale("TBA1AAAA02", "KE-C0002.KE-P00002", "02-02-2025 08:00:00")
    )
    (report,) = ingest_files(small, "KE", [february]).files
    assert (report.loaded, report.quarantined) == (4, 0), report
    assert _events(settings, "TBA1AAAA01", "TBA1AAAA02") == [
        ("TBA1AAAA01", "sale", "KE-C0001", "KE-P00001", 500_000),
        ("TBA1AAAA01", "reversal", "KE-C0001", "KE-P00001", -500_000),
        ("TBA1AAAA02", "sale", "KE-C0002", "KE-P00002", 500_000),
        ("TBA1AAAA02", "reversal", "KE-C0002", "KE-P00002", -500_000),
    ]


def test_a_reversal_of_a_payment_kanda_never_saw_is_still_quarantined(settings: Settings) -> None:
    report = ingest_written(
        settings, "KE", settings.home / "s.csv", HEADER + "\n" + _reversal("TBA2RRRR09", "TBA1ZZZZ09")
    )
    assert (report.loaded, report.quarantined) == (0, 1), report
    with open_store(settings, "KE", read_only=True) as con:
        (reasons,) = con.execute("SELECT CAST(reasons AS VARCHAR) FROM quarantine").fetchall()[0]
    assert "creator_id" in reasons and "product_id" in reasons


def _chunk(*rows: tuple) -> pl.DataFrame:
    schema = dict.fromkeys(["transaction_id", "event_type", "creator_id", "product_id"], pl.String)
    schema["source_row"] = pl.Int64
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_an_owner_is_taken_only_when_the_payment_s_sales_agree_on_one() -> None:
    """Two sales of one payment id that name different creators (a rail reusing an id) leave the refund as it came;
    so does a reference that names a creator but no product (broken, not missing), and a sale's own row."""
    chunk = _chunk(
        ("P1", "refund", None, None, 1),
        ("P2", "refund", None, None, 2),
        ("P2", "refund", "C9", None, 3),
        ("P2", "sale", None, None, 4),
    )
    found = pl.DataFrame(
        {"transaction_id": ["P1", "P1", "P2"], "creator_id": ["C1", "C2", "C3"], "product_id": ["X", "X", "Y"]}
    )
    filled = with_payment_owners(
        chunk, lambda payments: found.filter(pl.col("transaction_id").is_in(payments.implode()))
    )
    assert filled.select("creator_id", "product_id").rows() == [(None, None), ("C3", "Y"), ("C9", None), (None, None)]
