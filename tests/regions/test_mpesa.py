"""M-Pesa statement adapter: hand-written statements with the rail's dirt, file-level rejects, a writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from regions import get_region
from regions.rails.base import ADAPTER_SCHEMA, FileRejected
from regions.rails.mpesa import writer
from regions.rails.mpesa.reader import ADAPTER
from tests.support.files import make_files
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_no_contact_leaks,
    assert_rejected,
    assert_round_trip,
    assert_same_but_source_row,
    match_events,
    quarantine_rules,
    read_all,
    row,
    through_contract,
    truth_frame,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLES = RAILS / "mpesa" / "samples"
REGION = get_region("KE")
UTC = dt.UTC


def test_statement_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLES / "statement.csv", REGION)
    assert list(frame.columns) == [*ADAPTER_SCHEMA, "raw_record"]
    # 2 title lines, 2 disclaimer/page lines, 1 repeated header, 1 charge, 1 bank payout, 1 empty padded row.
    assert ignored == 8
    # line 10 lists a payment again as Reversed: its sale (a duplicate where the statement lists it as Completed
    # too), then its reversal
    assert frame["source_row"].to_list() == [1, 2, 3, 4, 5, 8, 9, 10, 10, 11, 12, 13, 14, 17]

    first = row(frame, 1)
    assert (first["transaction_id"], first["event_type"], first["status"]) == ("SBA1000001", "sale", "success")
    assert (first["amount_minor"], first["fee_minor"], first["currency"]) == (1_000_000, 0, "KES")
    assert first["occurred_at"] == dt.datetime(2025, 2, 11, 10, 42, 20, tzinfo=UTC)  # 13:42:20 Nairobi (UTC+3)
    assert (first["creator_id"], first["product_id"]) == ("KE-C0001", "KE-P00001")

    pending, completed = row(frame, 2), row(frame, 3)
    assert (pending["status"], completed["status"]) == ("pending", "success")
    assert pending["transaction_id"] == completed["transaction_id"] == "SBA1000002"
    assert pending["amount_minor"] == completed["amount_minor"] == 125_050
    assert completed["occurred_at"] == dt.datetime(2025, 2, 11, 23, 10, tzinfo=UTC)  # the local day before
    assert row(frame, 5)["status"] == "failed"

    reversal, refund = row(frame, 8), row(frame, 9)
    relisted_sale, relisted = frame.filter(pl.col("source_row") == 10).iter_rows(named=True)
    assert (relisted_sale["event_type"], relisted_sale["status"], relisted_sale["amount_minor"]) == (
        "sale",
        "success",
        300_000,
    )
    assert (reversal["transaction_id"], reversal["event_type"], reversal["amount_minor"]) == (
        "SBA1000001",
        "reversal",
        -1_000_000,
    )
    assert (refund["transaction_id"], refund["event_type"], refund["amount_minor"]) == ("SBA1000003", "refund", -50_000)
    assert (relisted["transaction_id"], relisted["event_type"], relisted["status"]) == (
        "SBA1000005",
        "reversal",
        "success",
    )
    assert relisted["amount_minor"] == -300_000 and reversal["creator_id"] == "KE-C0001"

    assert row(frame, 11)["amount_minor"] is None  # "12,3O0.00"
    assert row(frame, 12)["occurred_at"] is None  # "N/A"
    assert row(frame, 13)["creator_id"] is None  # "Acc. " with no reference
    duplicate = row(frame, 14)
    assert_same_but_source_row(duplicate, first)


def test_negative_paid_in_is_quarantined_not_booked_as_a_sale() -> None:
    frame, _ = read_all(ADAPTER, SAMPLES / "statement.csv", REGION)
    negative = row(frame, 17)  # Paid In "-700.00"
    assert (negative["event_type"], negative["amount_minor"]) == ("sale", -70_000)
    split = through_contract(frame, REGION)
    assert 17 not in split.valid["source_row"].to_list()
    assert quarantine_rules(split, 17) == {("amount_sign_matches_event_type", "amount_minor")}
    # withdrawals printed negative still map to their size, taken back
    assert row(frame, 9)["amount_minor"] == -50_000


def test_buyer_ref_masked_phones_and_no_leaks() -> None:
    frame, _ = read_all(ADAPTER, SAMPLES / "statement.csv", REGION)
    assert row(frame, 4)["buyer_ref"] is None  # "0****393"
    assert row(frame, 1)["buyer_ref"] is not None and len(row(frame, 1)["buyer_ref"]) == 64
    assert frame["buyer_ref"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
    assert_no_contact_leaks(frame, ("0712345678", "712345678", "254722000111", "WANJIKU"))


def test_header_variant_latin1_and_dd_mm_dates() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLES / "statement_variant.csv", REGION)
    assert ignored == 1  # the charge row
    assert frame["transaction_id"].to_list() == ["SCA2000001", "SCA2000002", "SCA2000002"]
    assert frame["event_type"].to_list() == ["sale", "sale", "reversal"]
    assert frame["amount_minor"].to_list() == [150_000, 25_000, -25_000]
    assert frame["occurred_at"].to_list() == [
        dt.datetime(2025, 2, 11, 10, 42, tzinfo=UTC),  # 11/02/2025 13:42, no seconds
        dt.datetime(2025, 2, 28, 21, 30, 15, tzinfo=UTC),  # 01/03/2025 00:30:15 local is still February in UTC
        dt.datetime(2025, 3, 2, 6, 5, tzinfo=UTC),
    ]
    statement, _ = read_all(ADAPTER, SAMPLES / "statement.csv", REGION)
    # "0712 345 678" here and "0712345678" there are one buyer.
    assert frame["buyer_ref"][0] == row(statement, 1)["buyer_ref"]
    assert "JOSÉ" in str(frame["raw_record"][0])


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "empty.csv", "empty", content=b"")


def test_other_format_is_rejected(tmp_path: Path) -> None:
    assert_rejected(
        ADAPTER,
        REGION,
        tmp_path / "gumroad.csv",
        r"^none of the required columns is there \(found: Purchase ID, Item Name, Purchase Date, Sale Price \(\$\)\)",
        content="Purchase ID,Item Name,Purchase Date,Sale Price ($)\nabc,Beat pack,2025-01-01,10\n",
    )
    assert_rejected(
        ADAPTER,
        REGION,
        tmp_path / "partial.csv",
        "missing: Transaction Status, Paid In, Withdrawn",
        content="Receipt No,Completion Time,Details\nSBA1,2025-01-01 10:00:00,x\n",
    )


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = (SAMPLES / "statement.csv").read_bytes()
    cut = data.index(b"SBA1000006") + 40
    assert_rejected(ADAPTER, REGION, tmp_path / "truncated.csv", "truncated", content=data[:cut])


def test_round_trip(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=13)
    for seed in (1, 2):  # the writer picks one of the two header variants per file
        path = tmp_path / f"mpesa-{seed}.csv"
        writer.write(path, iter([truth]), REGION, np.random.default_rng(seed))
        _check_round_trip(path, truth)


def _check_round_trip(path: Path, truth: pl.DataFrame) -> None:
    frame, ignored = read_all(ADAPTER, path, REGION, batch_rows=500)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Every line but the header is a row or an ignored line: title and page lines count as ignored here. A payment
    # listed again as Reversed also yields its sale again (a duplicate of its Completed line's), left out here.
    relisted_sale = (pl.col("event_type") == "sale") & pl.col("source_row").is_duplicated()
    assert_lines_accounted(frame.filter(~relisted_sale), ignored, lines=len(lines) - 1, truth=truth)
    both = match_events(truth, frame, writer.receipt(pl.col("txn_no")))
    # Statements carry whole seconds, so the time read must itself be whole seconds.
    assert_round_trip(both, whole_seconds=True)


# ------------------------------------------------------------------ a record with a stray or missing separator
HEADER = "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance"
DETAILS = "Pay Bill Online from 0712345678 - JANE WANJIKU Acc. KE-C0001.KE-P00001"


def record(receipt: str, *, time: str = "2025-06-05 10:00:00", details: str = DETAILS, paid_in: str = '"1,000.00"'):
    return f'{receipt},{time},{details},Completed,{paid_in},,"5,000.00"'


def statement(*lines: str) -> str:
    """A title line, the header, a good record, `lines` (from line 4 on), another good record."""
    body = [record("SBA1000001"), *lines, record("SBA1000009")]
    return "\n".join(["MPESA BUSINESS STATEMENT", HEADER, *body]) + "\n"


RAGGED_RECORDS = {
    "paid-in-unquoted": (record("SBA1000002", paid_in="4,300.00"), 8, "a value holds an unquoted separator"),
    "comma-in-details": (
        record("SBA1000002", details="Pay Bill Online from 0712345678 - WANJIKU, JANE Acc. KE-C0001.KE-P00001"),
        8,
        "a value holds an unquoted separator",
    ),
    "last-field-missing": (record("SBA1000002").removesuffix(',"5,000.00"'), 6, "a record is broken or shortened"),
    "quoted-receipt": ('"SBA1000002"' + record("", paid_in="4,300.00"), 8, "a value holds an unquoted separator"),
    "unclosed-quote": (record("SBA1000002").removesuffix('"'), 10, "a quote is misplaced"),  # runs into line 6
    # a receipt of letters only is told from an all-caps disclaimer word by the date after it
    "letters-only-receipt": (record("QGHABCDEFG", paid_in="4,300.00"), 8, "a value holds an unquoted separator"),
}


@pytest.mark.parametrize("case", list(RAGGED_RECORDS))
def test_a_record_with_another_field_count_rejects_the_file(tmp_path: Path, case: str) -> None:
    """A sale whose line has a field too many or too few was skipped as if it were a disclaimer, so the money
    vanished while every count balanced; now the file is rejected, naming the line and its field count."""
    line, fields, cause = RAGGED_RECORDS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(statement(record("SBA1000003"), line))
    with pytest.raises(FileRejected) as raised:
        read_all(ADAPTER, path, REGION)
    assert raised.value.kind == "malformed"
    reason = raised.value.reason
    assert reason.startswith(f"the CSV is malformed or truncated: line 5 has {fields} fields where the header has 7")
    assert cause in reason and "KE (Kenya) expects an M-Pesa statement CSV" in reason
    assert "SBA1000002" not in reason and "WANJIKU" not in reason  # a reason never quotes the file


def test_structure_lines_with_another_field_count_are_still_ignored(tmp_path: Path) -> None:
    path = tmp_path / "structure.csv"
    structure = [
        "Disclaimer: This statement is issued for information only",
        "",
        "Page 2 of 3",
        'TOTAL PAID IN,"2,000.00"',  # a totals line: words, not a receipt number
        "DISCLAIMER: figures in KES",
        "DISCLAIMER, figures in KES, subject to the terms",  # all caps before a comma: a word, not a receipt
        "STATEMENT,PERIOD,2025",
        "   ",
        HEADER + ",Balance Confirmed",  # a page header of another width
    ]
    path.write_text(statement(*structure))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert frame["transaction_id"].to_list() == ["SBA1000001", "SBA1000009"]
    assert frame["amount_minor"].to_list() == [100_000, 100_000]
    assert ignored == 1 + 8  # the title line and the structure lines but the empty one, which the reader drops


def test_a_record_far_into_a_long_statement_rejects_it_through_the_ingest(settings, tmp_path: Path) -> None:
    """Past the reader's first 8 MiB block, so chunks were already read (and staged) when the line is met: the
    ingest keeps nothing of the file and records the reason beside the kept copy."""
    make_files(settings, regions=["KE"], rows=20)  # the registry
    good = [record(f"SBB{i:07d}") for i in range(70_000)]
    path = tmp_path / "long.csv"
    path.write_text(statement(*good, record("SBA1000002", paid_in="4,300.00")))
    assert path.stat().st_size > 9 << 20
    (result,) = ingest_files(settings, "KE", [path]).files
    assert (result.status, result.kind) == ("rejected", "malformed")
    assert "line 70004 has 8 fields where the header has 7" in result.reason
    with open_store(settings, "KE", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sale_events").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
        (kept,) = con.execute("SELECT kept_at FROM rejected_files").fetchall()[0]
    reason_file = Path(f"{kept}.reason.txt")
    assert reason_file.read_text() == f"{result.reason}\nkind: malformed\n"


def test_a_second_of_60_is_quarantined_as_unreadable_not_booked_on_the_next_day(tmp_path: Path) -> None:
    """23:59:60 local was read as 00:00:00 the next day (and 12:32:60 as 12:33); now it is an unreadable time."""
    path = tmp_path / "leap.csv"
    lines = [record("SBA1000002", time="2026-12-04 23:59:60"), record("SBA1000003", time="04/12/2026 12:32:60")]
    path.write_text(statement(*lines, record("SBA1000004", time="2026-12-04 23:59:59")))
    frame, _ = read_all(ADAPTER, path, REGION)
    assert [row(frame, n)["occurred_at"] for n in (2, 3)] == [None, None]
    assert row(frame, 4)["occurred_at"] == dt.datetime(2026, 12, 4, 20, 59, 59, tzinfo=UTC)
    split = through_contract(frame, REGION)
    for n in (2, 3):
        assert quarantine_rules(split, n) == {("missing_or_unreadable", "occurred_at")}
    assert 4 in split.valid["source_row"].to_list()


def test_a_payment_without_its_receipt_number_is_quarantined_not_ignored(tmp_path: Path) -> None:
    """A row with a completion time and money paid in is a payment even when its Receipt No cell is empty: ignoring
    it would lose the money while every count balanced."""
    path = tmp_path / "statement.csv"
    path.write_text(
        "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n"
        'SKA1000001,2026-12-03 10:15:00,Pay Bill from 0712345678 Acc. KE-C0001.KE-P00001,Completed,"1,000.00",,0\n'
        ',2026-12-03 11:20:00,Pay Bill from 0712345679 Acc. KE-C0001.KE-P00001,Completed,"6,000.00",,0\n'
        ',,Total,,"7,000.00",,\n'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1  # the totals line, which has no completion time
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1]
    assert quarantine_rules(split, 2) == {("missing_or_unreadable", "transaction_id")}


def test_a_reversal_worded_of_transaction_is_linked_to_its_own_receipt(tmp_path: Path) -> None:
    """ "Reversal of transaction TK1AAAAA01" (M-Pesa's own wording in its messages) was read as a reversal of
    receipt TRANSACTION: every reversal so worded shared one id, the second vanished as a duplicate of the first,
    and both sales stayed counted. The receipt is the first word after "of" that holds a digit; a reversal naming
    none is quarantined for its missing id, never ignored like a charge."""
    path, back = tmp_path / "statement.csv", 'Completed,,"-1,000.00",0\n'
    path.write_text(
        "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n"
        'TK1AAAAA01,2026-12-01 09:00:00,Pay Bill from 0712345678 Acc. KE-C0001.KE-P00001,Completed,"1,000.00",,0\n'
        'TK1AAAAA02,2026-12-01 10:00:00,Pay Bill from 0712345679 Acc. KE-C0002.KE-P00005,Completed,"1,000.00",,0\n'
        f"TK1RRRRR01,2026-12-02 10:00:00,Reversal of transaction TK1AAAAA01 Acc. KE-C0001.KE-P00001,{back}"
        f"TK1RRRRR02,2026-12-02 11:00:00,Reversal of transaction TK1AAAAA02 Acc. KE-C0002.KE-P00005,{back}"
        f"TK1RRRRR03,2026-12-02 12:00:00,Reversal of transaction Acc. KE-C0001.KE-P00001,{back}"
        # money written before the receipt: KES10000 and KSh100000 are not receipts, so these name none
        f"TK1RRRRR04,2026-12-02 13:00:00,Reversal of KES10000.00 for TK1AAAAA01 Acc. KE-C0001.KE-P00001,{back}"
        f"TK1RRRRR05,2026-12-02 14:00:00,Refund of KSh100000 to 0712345678 Acc. KE-C0001.KE-P00001,{back}"
        f'TK1RRRRR06,2026-12-02 15:00:00,"Reversal of Ksh10,000.00 for TK1AAAAA02 Acc. KE-C0002.KE-P00005",{back}'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 0
    split = through_contract(frame, REGION)
    reversals = split.valid.filter(pl.col("event_type") == "reversal")
    assert sorted(zip(reversals["transaction_id"], reversals["amount_minor"], strict=True)) == [
        ("TK1AAAAA01", -100_000),
        ("TK1AAAAA02", -100_000),
    ]
    for line in (5, 6, 7, 8):
        assert quarantine_rules(split, line) == {("missing_or_unreadable", "transaction_id")}


def test_a_line_too_long_for_csv_before_the_header_rejects_that_file_and_the_next_one_loads(settings) -> None:
    """A 30 MB first line made the header search raise the csv module's field-limit error: a traceback that
    stopped the region's whole landing folder, on every rerun. It is a malformed file like any other now."""
    from kanda.regional.ingest import ingest_landing

    make_files(settings, regions=["KE"], rows=20)
    landing = settings.landing("KE")
    (landing / "a_long_line.csv").write_text("x" * 300_000 + "\n")
    (landing / "b_statement.csv").write_text(statement(record("SBB0000001")))
    results = {Path(r.file).name: r for r in ingest_landing(settings, "KE").files}
    assert (results["a_long_line.csv"].status, results["a_long_line.csv"].kind) == ("rejected", "malformed")
    assert "cannot be read as CSV" in results["a_long_line.csv"].reason
    assert results["b_statement.csv"].status == "loaded"


def test_a_statement_with_month_first_dates_is_rejected_not_loaded_on_the_wrong_days(tmp_path: Path) -> None:
    """Re-saved by a spreadsheet in a US locale: 12/5/2026 would load as the 12th of May, and 11/3/2026 as the 11th
    of March, beside rows that cannot be read at all (12/13/2026). One impossible day-first date gives it away."""
    path = tmp_path / "us.csv"
    lines = [
        record("SKC1000001", time="12/5/2026 8:56"),
        record("SKC1000002", time="12/13/2026 9:10"),
        record("SKC1000003", time="11/3/2026 23:10"),
    ]
    path.write_text(statement(*lines))
    with pytest.raises(FileRejected) as raised:
        read_all(ADAPTER, path, REGION)
    assert raised.value.kind == "wrong_date_order"
    assert "record 3" in raised.value.reason and "12/13" not in raised.value.reason  # reasons never quote content
    # the same with dashes, a form the statement reader also takes: 11-04-2026 would load as the 11th of April
    path.write_text(
        statement(record("SKC1000006", time="11-13-2026 10:00:00"), record("SKC1000007", time="11-04-2026 10:00:00"))
    )
    with pytest.raises(FileRejected) as raised:
        read_all(ADAPTER, path, REGION)
    assert raised.value.kind == "wrong_date_order" and "record 2" in raised.value.reason
    # day-first dates past the 12th are what Safaricom writes: read as they are
    path.write_text(statement(record("SKC1000004", time="13/12/2026 09:10"), record("SKC1000005", time="05/12/2026")))
    frame, _ = read_all(ADAPTER, path, REGION)
    assert row(frame, 2)["occurred_at"].date() == dt.date(2026, 12, 13)  # 09:10 Nairobi is 06:10 UTC


# ------------------------------------------------------------------ the org portal's exports and what is not a sale
def test_a_pay_utility_reversal_takes_the_sale_back_instead_of_being_ignored(tmp_path: Path) -> None:
    """A reversed paybill payment reads "Pay Utility Reversal ..." and names no receipt in Details. Read as any
    other withdrawal (a payout), it was ignored: the ledger balanced and the sale stayed counted although its money
    had gone back. It is a reversal now: quarantined for its receipt where the file does not name it."""
    path = tmp_path / "statement.csv"
    path.write_text(
        statement(
            "SBR1000001,2025-06-06 09:00:00,Pay Utility Reversal by 2547****678 - JANE WANJIKU Acc. KE-C0001.KE-P00001,"
            'Completed,,"-1,000.00",0.00',
            'SBR1000002,2025-06-06 09:05:00,Pay Utility Reversal,Completed,,"-1,000.00",0.00',
        )
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1  # the title line only
    assert [row(frame, n)["event_type"] for n in (2, 3)] == ["reversal", "reversal"]
    assert [row(frame, n)["amount_minor"] for n in (2, 3)] == [-100_000, -100_000]
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1, 4]  # the two sales around them
    assert quarantine_rules(split, 2) == {("missing_or_unreadable", "transaction_id")}
    assert ("missing_or_unreadable", "transaction_id") in quarantine_rules(split, 3)


def test_money_paid_in_by_a_reversal_is_not_loaded_as_a_sale(tmp_path: Path) -> None:
    """A reversal paying money back in (one of our own payouts or refunds undone) was loaded as a sale of whatever
    account its Details named: KES 500 of sales for KE-C0001 that nobody bought. It is quarantined now."""
    path = tmp_path / "statement.csv"
    path.write_text(
        statement(
            "SBR1000003,2025-06-06 10:00:00,Pay Utility Reversal by 2547****678 - JANE WANJIKU Acc. KE-C0001.KE-P00001,"
            "Completed,500.00,,500.00",
            "SBR1000004,2025-06-06 10:05:00,Reversal of SRF0000001 Acc. KE-C0003.KE-P00009,Completed,500.00,,"
            '"1,000.00"',
        )
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1, 4]
    assert split.valid.filter(pl.col("creator_id") == "KE-C0001")["amount_minor"].sum() == 200_000  # the 2 sales
    for line in (2, 3):
        assert quarantine_rules(split, line) == {("missing_or_unreadable", "event_type")}


def test_the_org_portal_export_links_a_reversal_by_its_linked_transaction_id_and_reads_its_currency() -> None:
    """The org portal's export: 14 columns, a "Pay Bill Charge" twin under each payment's receipt, a sweep to the
    settlement account, a USD row, and reversals worded "Pay Utility Reversal" whose undone receipt is only in
    Linked Transaction ID. Before, both reversals were ignored (both sales stayed counted) and the USD 700.00 row
    loaded as KES 700.00."""
    frame, ignored = read_all(ADAPTER, SAMPLES / "statement_org_portal.csv", REGION)
    assert ignored == 3 + 2 + 1  # the label lines, the two charges, the sweep
    assert frame["source_row"].to_list() == [2, 4, 5, 7, 8]
    first = row(frame, 2)
    assert (first["transaction_id"], first["event_type"], first["amount_minor"]) == ("TBA1AAAA01", "sale", 500_000)
    assert first["occurred_at"] == dt.datetime(2025, 2, 1, 7, 15, tzinfo=UTC)  # DD-MM-YYYY, 10:15 Nairobi
    assert first["buyer_ref"] is None  # "25471****678" is masked
    assert (row(frame, 4)["amount_minor"], row(frame, 4)["creator_id"]) == (120_000, "KE-C0002")  # paid with Fuliza
    reversal = row(frame, 7)
    assert (reversal["transaction_id"], reversal["event_type"], reversal["amount_minor"]) == (
        "TBA1AAAA01",
        "reversal",
        -500_000,
    )
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [2, 4]
    assert quarantine_rules(split, 5) == {("currency_is_region_currency", "currency")}
    # the reversal names its sale but not the account: read alone it has no creator (the ingest gives it the sale's)
    assert quarantine_rules(split, 7) == {
        ("missing_or_unreadable", "creator_id"),
        ("missing_or_unreadable", "product_id"),
    }
    assert ("missing_or_unreadable", "transaction_id") in quarantine_rules(split, 8)  # no Linked Transaction ID


def test_a_linked_transaction_id_that_disagrees_with_details_is_not_guessed(tmp_path: Path) -> None:
    header = "Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance,Linked Transaction ID"
    path = tmp_path / "statement.csv"
    path.write_text(
        f"{header}\n"
        'SBR1000005,2025-06-06 11:00:00,Reversal of SBA1000001 Acc. KE-C0001.KE-P00001,Completed,,"-1,000.00",0,'
        "SBA1000009\n"
        'SBR1000006,2025-06-06 11:05:00,Reversal of SBA1000001 Acc. KE-C0001.KE-P00001,Completed,,"-1,000.00",0,'
        "SBA1000001\n"
        'SBR1000007,2025-06-06 11:10:00,Reversal Acc. KE-C0001.KE-P00001,Completed,,"-1,000.00",0,not a receipt\n'
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    assert frame["transaction_id"].to_list() == [None, "SBA1000001", None]


def test_the_newer_org_export_with_shilling_units_loads_and_its_sweeps_are_ignored(tmp_path: Path) -> None:
    """The portal's newer template heads its money columns "Paid In (KSHs)": the file was refused as lacking Paid
    In and Withdrawn. Its sweeps between the org's own accounts come as a Paid In / Withdrawn pair under one
    receipt; the Paid In half was read as a sale (and quarantined, a row nobody could fix)."""
    path = tmp_path / "Statements for 123456 from 2025-02-04 to 2025-02-04.csv"
    sweep = "TBN1SWEEP1,04/02/2025 23:09:07,Utility Account to Organization Settlement Account,Completed"
    path.write_text(
        "Receipt No,Completion Time,Details,Transaction Status,Paid In (KSHs),Withdrawn (KSHs),Balance (KSHs)\r\n"
        'TBN1BANK01,04/02/2025 23:09:30,Agency Withdrawal of funds to Bank,Completed,0.00,"-1,100.00",0.00\r\n'
        f'{sweep},"1,100.00",0.00,"1,100.00"\r\n'
        f'{sweep},0.00,"-1,100.00",0.00\r\n'
        "TBN1AAAA01,04/02/2025 16:15:18,Pay Bill from 2547****111 - ALICE WANJIRU Acc. KE-C0001.KE-P00001,"
        'Completed,"1,100.00",0.00,"1,100.00"\r\n'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 3
    assert frame["transaction_id"].to_list() == ["TBN1AAAA01"]
    assert frame["amount_minor"].to_list() == [110_000]
    assert frame["occurred_at"].to_list() == [dt.datetime(2025, 2, 4, 13, 15, 18, tzinfo=UTC)]
    assert through_contract(frame, REGION).valid.height == 1


def test_a_header_in_another_currency_is_still_refused(tmp_path: Path) -> None:
    assert_rejected(
        ADAPTER,
        REGION,
        tmp_path / "usd.csv",
        "missing: Paid In, Withdrawn",
        content="Receipt No,Completion Time,Details,Transaction Status,Paid In (USD),Withdrawn (USD),Balance (USD)\n"
        "TBN1AAAA01,04/02/2025 16:15:18,Pay Bill from 2547****111 Acc. KE-C0001.KE-P00001,Completed,10.00,,10.00\n",
    )


def test_charges_loans_and_transfers_on_a_personal_statement_are_ignored_not_quarantined(tmp_path: Path) -> None:
    """A personal statement (PDF converted) holds money in that no buyer paid for a product: a Fuliza draw under
    the receipt of the payment it funded, M-Shwari, a friend's transfer, a business paying its holder, a charge
    refunded. Each was read as a sale without an account and quarantined: rows a steward could only reject."""
    lines = [
        "SBP1000001,2025-06-06 12:00:00,OverDraft of Credit Party,Completed,200.00,,200.00",
        "SBP1000001,2025-06-06 12:00:00,Pay Bill Online Fuliza M-Pesa to 888880 - KPLC PREPAID Acc. 1234,Completed,"
        ",-200.00,0.00",
        "SBP1000002,2025-06-06 12:10:00,M-Shwari Withdraw,Completed,500.00,,500.00",
        "SBP1000003,2025-06-06 12:20:00,Funds received from - 2547******584 VALLERY ODHIAMBO,Completed,"
        '"1,000.00",,"1,500.00"',
        "SBP1000004,2025-06-06 12:30:00,Business Payment from 303030 - ACME LTD via API. Original conversation ID"
        ' is AG_20250606_1,Completed,"2,000.00",,"3,500.00"',
        'SBP1000005,2025-06-06 12:40:00,Customer Transfer of Funds Charge,Completed,,-7.00,"3,493.00"',
        'SBP1000006,2025-06-06 12:50:00,Pay Bill Charge,Completed,15.00,,"3,508.00"',
    ]
    path = tmp_path / "personal.csv"
    path.write_text(statement(*lines))
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1 + len(lines)
    assert frame["transaction_id"].to_list() == ["SBA1000001", "SBA1000009"]


def test_a_payment_listed_as_reversed_takes_back_only_what_it_brought_in(settings) -> None:
    """A line with status Reversed repeats a payment that was undone. Whether the statement also lists it as
    Completed cannot be told from the file: read as a reversal alone, a statement listing it once took from the
    creator money never counted in (net -3,000). It yields the sale and the reversal: net 0 either way, and where
    the Completed line is there too, its sale is a duplicate."""
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    reversed_only = f'SBA2000001,2025-06-05 10:00:00,{DETAILS},Reversed,"3,000.00",,0\n'
    both = f'SBA2000002,2025-06-05 11:00:00,{DETAILS},Completed,"3,000.00",,0\n'
    both += f'SBA2000002,2025-06-05 11:05:00,{DETAILS},Reversed,"3,000.00",,0\n'
    report = ingest_written(settings, "KE", Path(settings.home) / "s.csv", f"{HEADER}\n{reversed_only}{both}")
    assert (report.loaded, report.quarantined, report.duplicates) == (4, 0, 1), report
    with open_store(settings, "KE", read_only=True) as con:
        nets = con.execute(
            "SELECT transaction_id, sum(net_minor) FROM sale_events WHERE transaction_id LIKE 'SBA2%' GROUP BY 1"
        ).fetchall()
    assert sorted(nets) == [("SBA2000001", 0), ("SBA2000002", 0)]


# ------------------------------------------------------------------ the account reference
def test_an_account_reference_longer_than_a_product_id_is_not_cut_down_to_one(settings) -> None:
    """The pattern was not anchored at the end, so a buyer's "Acc. KE-C0001.KE-P000012" (a digit too many) loaded
    as a sale of KE-P00001: KES 3,000 counted for a product the buyer may never have meant, nothing flagged. The
    account ends where Details ends (or at a line break a PDF conversion leaves); a longer one is quarantined."""
    from tests.support.files import ingest_written

    lines = [
        f'SBA3000001,2025-06-05 10:00:00,{DETAILS.replace("P00001", "P000012")},Completed,"3,000.00",,0',
        f'SBA3000002,2025-06-05 10:05:00,{DETAILS.replace("P00001", "P00001X")},Completed,"3,000.00",,0',
        f'SBA3000003,2025-06-05 10:10:00,"{DETAILS}\nCustomer Pay Bill Online",Completed,"1,000.00",,0',
        f'SBA3000004,2025-06-05 10:15:00,{DETAILS},Completed,"1,000.00",,0',
    ]
    report = ingest_written(settings, "KE", Path(settings.home) / "s.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    assert (report.loaded, report.quarantined) == (2, 2), report
    with open_store(settings, "KE", read_only=True) as con:
        loaded = con.execute("SELECT transaction_id, product_id FROM sale_events ORDER BY 1").fetchall()
        held = con.execute("SELECT source_row FROM quarantine ORDER BY 1").fetchall()
    assert loaded == [("SBA3000003", "KE-P00001"), ("SBA3000004", "KE-P00001")]
    assert held == [(1,), (2,)]


def test_an_account_reference_typed_in_lower_case_names_its_creator_and_product(tmp_path: Path) -> None:
    """M-Pesa keeps the account as the buyer typed it: "ke-c0001.ke-p00001" is the same account as
    "KE-C0001.KE-P00001", and was quarantined as naming no creator, a row a steward had to retype."""
    path = tmp_path / "statement.csv"
    typed = DETAILS.replace("KE-C0001.KE-P00001", "ke-c0001.Ke-p00001")
    path.write_text(statement(record("SBA3000005", details=typed)))
    frame, _ = read_all(ADAPTER, path, REGION)
    assert (row(frame, 2)["creator_id"], row(frame, 2)["product_id"]) == ("KE-C0001", "KE-P00001")
    assert through_contract(frame, REGION).valid["source_row"].to_list() == [1, 2, 3]


def test_an_expired_or_cancelled_attempt_is_a_failed_payment_not_a_quarantined_row(tmp_path: Path) -> None:
    """An STK prompt the buyer let run out is listed Expired: it moved no money, as a Failed one, and was
    quarantined as an unknown status, a row a steward could only reject (and that counted towards the region's
    quarantine rate)."""
    path = tmp_path / "statement.csv"
    statuses = {"SBA3000006": "Expired", "SBA3000007": "Cancelled", "SBA3000008": "EXPIRED"}
    lines = [record(receipt).replace("Completed", status) for receipt, status in statuses.items()]
    path.write_text(statement(*lines))
    frame, _ = read_all(ADAPTER, path, REGION)
    assert [row(frame, n)["status"] for n in (2, 3, 4)] == ["failed", "failed", "failed"]
    split = through_contract(frame, REGION)
    assert split.valid["source_row"].to_list() == [1, 2, 3, 4, 5]


def test_month_names_and_a_12_hour_clock_are_read_but_a_numeric_date_with_am_pm_is_not(tmp_path: Path) -> None:
    """A PDF statement converted by mpesa2csv may carry `11-Feb-2025 01:42 PM`: every row was quarantined for its
    time. A numeric date with AM/PM stays unread: it is a US-locale spreadsheet's writing, month first."""
    path = tmp_path / "statement.csv"
    times = {
        "SBA3000010": "11-Feb-2025 01:42 PM",
        "SBA3000011": "11/Feb/2025 12:05 AM",
        "SBA3000012": "2/11/2025 1:42 PM",
    }
    path.write_text(statement(*(record(receipt, time=time) for receipt, time in times.items())))
    frame, _ = read_all(ADAPTER, path, REGION)
    assert [row(frame, n)["occurred_at"] for n in (2, 3, 4)] == [
        dt.datetime(2025, 2, 11, 10, 42, tzinfo=UTC),  # 13:42 Nairobi
        dt.datetime(2025, 2, 10, 21, 5, tzinfo=UTC),  # 00:05 Nairobi, the 11th
        None,
    ]


def test_money_going_out_under_a_creators_account_is_quarantined_not_ignored(settings) -> None:
    """A withdrawal whose Details name a creator's account but none of the words for money going back (a reversal
    worded "reversed", or a payment whose amount a PDF conversion put under Withdrawn) was ignored like a payout:
    the ledger balanced and the sale stayed counted. A payout names no account of ours, so such a row is held for a
    steward instead; payouts and other paybills' accounts are still ignored."""
    from tests.support.files import ingest_written

    lines = [
        f'SBA3000020,2025-06-05 10:00:00,{DETAILS},Completed,"3,000.00",,0',
        "SBA3000021,2025-06-06 10:00:00,Transaction SBA3000020 reversed from 0712345678 - JANE WANJIKU Acc. "
        'KE-C0001.KE-P00001,Completed,,"-3,000.00",0',
        f'SBA3000022,2025-06-06 11:00:00,{DETAILS},Completed,,"2,000.00",0',
        'SBA3000023,2025-06-06 12:00:00,Business Payment to 254722000111 - JOHN OTIENO,Completed,,"-500.00",0',
        'SBA3000024,2025-06-06 13:00:00,Pay Bill to 888880 - KPLC PREPAID Acc. 1234,Completed,,"-100.00",0',
    ]
    report = ingest_written(settings, "KE", Path(settings.home) / "s.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    assert (report.loaded, report.quarantined, report.ignored) == (1, 2, 2), report
    with open_store(settings, "KE", read_only=True) as con:
        held = con.execute("SELECT source_row FROM quarantine ORDER BY 1").fetchall()
    assert held == [(2,), (3,)]
