"""Stripe payments export (EG, `stripe_payments`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from regions import get_region
from regions.rails import get_adapter
from regions.rails.stripe.writer import exported_truth, write
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_rejected,
    assert_round_trip,
    quarantine_rules,
    read_all,
    row,
    side_by_side,
    through_contract,
    truth_frame,
    utc,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "stripe" / "samples" / "payments_eg.csv"
REGION = get_region("EG")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/<rail>/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 0  # the blank line is skipped by the CSV reader, not a record
    # A refunded or disputed charge is one row and two events: the sale, then the money going back.
    assert frame["source_row"].to_list() == [1, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 13, 14]
    assert frame["event_type"].to_list() == [
        *("sale", "refund", "sale", "sale", "sale", "sale", "refund", "sale", "reversal", "sale", "refund"),
        *("sale",) * 6,
        *("refund", "sale"),
    ]
    # Comma decimals, "." thousands; "100,001" has more decimals than EGP allows and is null.
    assert frame["amount_minor"].to_list() == [
        *(123450, -123450),  # Refunded: positive Amount, Amount Refunded in full
        *(25000, 25000, 300000),
        *(200000, -50000),  # Paid with a partial Amount Refunded
        *(9999, -9999),  # Disputed and lost
        *(100000, -25000),  # Partially Refunded
        *(None, 10000, 10000, 10000, None),
        *(10000, None),  # Amount Refunded "N/A": the refund is unreadable, the sale is not
        None,  # "184.467.440.737.098.017,00" overflows int64: null, never a wrapped small number
    ]
    # Stripe's fee belongs to the charge: once, on the sale; money going back carries none.
    assert frame["fee_minor"].to_list() == [
        *(1852, 0, 375, 375, 0, 3000, 0, 150, 0, 1500, 0, 150, 150, 150, 150, 150, 150, 0, 150)
    ]
    assert frame["status"].to_list() == [
        *("success", "success", "pending", "success", "failed"),
        *("success",) * 9,
        None,  # "Archived"
        *("success",) * 4,
    ]
    # UTC stays UTC: no Africa/Cairo shift, in winter (+2) or summer (+3); a refund is at its charge's time.
    assert frame["occurred_at"].to_list()[:7] == [
        *(utc(2024, 3, 30, 22, 30),) * 2,
        utc(2024, 7, 15, 23, 45, 10),
        utc(2024, 7, 15, 23, 46, 10),
        utc(2024, 10, 31, 21, 59, 59),
        *(utc(2024, 4, 1, 8),) * 2,
    ]
    assert row(frame, 9)["occurred_at"] is None
    assert row(frame, 10)["creator_id"] is None
    assert frame["creator_id"].to_list()[:11] == [
        *("EG-C0001",) * 2,
        *("EG-C0002",) * 2,
        "EG-C0003",
        *("EG-C0001",) * 2,
        *("EG-C0004",) * 4,
    ]
    assert frame["product_id"][0] == "EG-P00001"
    ids = frame["transaction_id"].to_list()
    assert ids[0] == ids[1] == "ch_3OaA1" and ids[7] == ids[8] == "ch_3OaA4"
    assert set(frame["currency"]) == {"EGP"}
    refs = frame["buyer_ref"]
    assert refs[4] is None and refs[7] is None  # empty and masked emails
    assert refs[0] == refs[1] == refs[5]
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv().lower()
    assert "example.com" not in plain and "mail.example" not in plain
    assert frame["raw_record"].struct.field("Amount")[0] == "1.234,50"


def test_sample_through_the_contract() -> None:
    """A refunded charge nets to what the seller kept, its fee counted once; only unreadable values quarantine."""
    frame, _ = read_all(ADAPTER, SAMPLE, REGION)
    split = through_contract(frame, REGION)
    kept = split.valid.group_by("transaction_id").agg(pl.col("amount_minor").sum(), pl.col("net_minor").sum())
    by_charge = {r["transaction_id"]: (r["amount_minor"], r["net_minor"]) for r in kept.to_dicts()}
    assert by_charge["ch_3OaA1"] == (0, -1852)  # fully refunded: no revenue, Stripe kept its fee
    assert by_charge["ch_3OaB1"] == (150000, 147000)
    assert by_charge["ch_3OaA4"] == (0, -150)
    assert by_charge["ch_3OaB2"] == (75000, 73500)
    assert by_charge["ch_3OaC1"] == (10000, 9850)  # the sale loads; its unreadable refund waits for a steward
    assert split.quarantine["source_row"].sort().to_list() == [8, 9, 10, 11, 12, 13, 14]
    assert quarantine_rules(split, 13) == {("missing_or_unreadable", "amount_minor")}
    assert quarantine_rules(split, 14) == {("missing_or_unreadable", "amount_minor")}


def test_money_back_on_a_charge_that_never_succeeded_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(
        "id,Created (UTC),Amount,Amount Refunded,Currency,Fee,Status,kanda_ref (metadata)\n"
        "ch_1,2023-01-02 03:04:05,100.00,100.00,egp,0.00,Failed,EG-C0001.EG-P00002\n"
        "ch_2,2023-01-02 03:04:05,100.00,0.00,egp,1.50,Refunded,EG-C0001.EG-P00002\n"
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    assert frame.select("event_type", "status", "amount_minor").rows() == [
        ("sale", "failed", 10000),
        ("refund", None, -10000),  # money back on a charge that failed contradicts itself
        ("sale", "success", 10000),
        ("refund", "success", 0),  # "Refunded" with nothing refunded: a zero refund, quarantined
    ]
    split = through_contract(frame, REGION)
    assert split.valid.select("event_type", "status").rows() == [("sale", "failed"), ("sale", "success")]


def test_what_the_default_columns_say_captured_refund_date_and_the_fees_currency(tmp_path: Path) -> None:
    """Three of Stripe's default export columns that a plausible wrong figure hid behind, each unread before:
    - `Captured` false is a hold on the buyer's card, not money: it loaded as a successful sale. Paid is pending;
      Refunded (the hold released or expired) is a failed sale with no refund, since nothing came in, also when a
      spreadsheet re-saved it as FALSE;
    - `Refunded date (UTC)`: a refund weeks after its charge was booked on the charge's day, long published;
      an unreadable date is quarantined, never moved to the charge's day;
    - `Fee` is in the settlement currency (`Converted Currency`): 0,88 USD was booked as 0,88 EGP."""
    path = tmp_path / "payments.csv"
    head = "id;Created date (UTC);Amount;Amount Refunded;Currency;Captured;Converted Currency;Fee;Refunded date (UTC)"
    ref = "EG-C0001.EG-P00001"
    path.write_text(
        f"{head};Status;kanda_ref (metadata)\n"
        f"ch_hold;2026-10-01 10:00:00;2.000,00;0,00;egp;false;egp;0,00;;Paid;{ref}\n"
        f"ch_released;2026-10-01 11:00:00;500,00;500,00;egp;FALSE;egp;0,00;2026-10-08 11:00:00;Refunded;{ref}\n"
        f"ch_late;2026-10-01 12:00:00;500,00;500,00;egp;true;egp;7,50;2026-10-20 20:30:00;Refunded;{ref}\n"
        f"ch_unread;2026-10-01 13:00:00;500,00;500,00;egp;true;egp;7,50;N/A;Refunded;{ref}\n"
        f"ch_usd_fee;2026-10-01 14:00:00;1.000,00;0,00;egp;true;usd;0,88;;Paid;{ref}\n"
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    events = {(r["transaction_id"], r["event_type"]): r for r in frame.iter_rows(named=True)}
    assert set(events) == {
        ("ch_hold", "sale"),
        ("ch_released", "sale"),
        ("ch_late", "sale"),
        ("ch_late", "refund"),
        ("ch_unread", "sale"),
        ("ch_unread", "refund"),
        ("ch_usd_fee", "sale"),
    }
    assert (events["ch_hold", "sale"]["status"], events["ch_released", "sale"]["status"]) == ("pending", "failed")
    assert events["ch_late", "refund"]["occurred_at"] == utc(2026, 10, 20, 20, 30)
    split = through_contract(frame, REGION)
    late = split.valid.filter(pl.col("transaction_id") == "ch_late").sort("event_type")
    assert late.select("event_type", "local_date", "amount_minor").rows() == [
        ("refund", dt.date(2026, 10, 20), -50000),  # 23:30 in Cairo
        ("sale", dt.date(2026, 10, 1), 50000),
    ]
    assert quarantine_rules(split, 4) == {("missing_or_unreadable", "occurred_at")}
    assert events["ch_usd_fee", "sale"]["fee_minor"] is None
    assert ("missing_or_unreadable", "fee_minor") in quarantine_rules(split, 5)


def test_dispute_status_says_whether_a_dispute_took_the_money_and_test_mode_is_ignored(tmp_path: Path) -> None:
    """Stripe's full column set says what became of a dispute (`Dispute Status`, `Disputed Amount`) and whether the
    charge was real (`Mode`). Before, every Disputed row took the whole charge back: a dispute the seller won, or an
    inquiry that never took money, cut the creator's net all the same, and a test-mode export loaded as sales."""
    path = tmp_path / "payments.csv"
    ref = "EG-C0001.EG-P00001"
    head = "id,Created date (UTC),Amount,Amount Refunded,Currency,Fee,Mode,Status,Disputed Amount,Dispute Status"
    rows = [
        ("ch_open", "100.00", "0.00", "Live", "Disputed", "100.00", "needs_response"),
        ("ch_part", "100.00", "0.00", "Live", "Disputed", "40.00", "lost"),
        ("ch_won", "100.00", "0.00", "Live", "Disputed", "100.00", "won"),
        ("ch_won_refunded", "100.00", "100.00", "Live", "Refunded", "100.00", "Won"),
        ("ch_inquiry", "100.00", "0.00", "Live", "Disputed", "100.00", "warning_closed"),
        ("ch_unknown", "100.00", "0.00", "Live", "Disputed", "100.00", "escalated"),
        ("ch_no_status", "100.00", "0.00", "Live", "Disputed", "", ""),
        ("ch_test", "100.00", "0.00", "Test", "Paid", "", ""),
    ]
    body = [f"{i},2026-10-01 10:00:00,{a},{r},egp,1.00,{m},{st},{d},{ds},{ref}" for i, a, r, m, st, d, ds in rows]
    path.write_text("\n".join([f"{head},kanda_ref (metadata)", *body]) + "\n")
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 1  # the test-mode charge: counted, never a sale
    money_back = frame.filter(pl.col("event_type") != "sale").select("transaction_id", "event_type", "status")
    assert frame.filter(pl.col("event_type") != "sale").select(
        "transaction_id", "event_type", "status", "amount_minor"
    ).rows() == [
        ("ch_open", "reversal", "success", -10000),  # Stripe withdraws the money when a dispute opens
        ("ch_part", "reversal", "success", -4000),  # the disputed part, not the whole charge
        ("ch_won", "reversal", "failed", -10000),  # the money came back: voids a reversal an earlier export loaded
        ("ch_won_refunded", "refund", "success", -10000),
        ("ch_won_refunded", "reversal", "failed", -10000),  # moves nothing; states the disputed amount, never 0
        ("ch_unknown", "reversal", None, -10000),  # a status kanda does not know: quarantined, not guessed
        ("ch_no_status", "reversal", "success", -10000),  # Disputed, the dispute's state not exported: as before
    ]
    assert "ch_inquiry" not in money_back["transaction_id"].to_list()  # an inquiry never took the money
    assert "ch_test" not in frame["transaction_id"].to_list()
    split = through_contract(frame, REGION)
    assert quarantine_rules(split, 6) == {("missing_or_unreadable", "status")}


def test_comma_delimited_older_export(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "id,Created (UTC),Amount,Amount Refunded,Currency,Fee,Status,kanda_ref (metadata)\n"
        'ch_1,2023-01-02 03:04:05,"1,234.50",0.00,egp,18.52,Paid,EG-C0001.EG-P00002\n'
    )
    frame, ignored = read_all(ADAPTER, path, REGION)
    assert ignored == 0
    assert frame.select("amount_minor", "fee_minor", "occurred_at").row(0) == (123450, 1852, utc(2023, 1, 2, 3, 4, 5))
    assert frame["buyer_ref"][0] is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ("id;Amount;Status\nch_1;1,00;Paid\n", "Created"),
        ("id;Created date (UTC);Amount;Status\nch_1;2024-01-01 00:00:00;1,00;Paid\n", "required column"),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.csv", reason, content=content)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    assert_rejected(ADAPTER, REGION, tmp_path / "cut.csv", "CSV", content=data[: data.index(b"ch_3OaA4") + 30])


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "export.csv"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    lines = len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert_lines_accounted(frame, ignored, lines=lines, truth=truth, folded=True)
    assert ignored == 0
    # Refunds and lost disputes sit on their charge's row: fewer lines than truth events, none lost.
    money_back = truth.filter(pl.col("event_type").is_in(["refund", "reversal"]))
    assert money_back.height > 0 and lines == truth.height - money_back.height
    both = side_by_side(exported_truth(truth), frame)
    assert_round_trip(both)
    assert both["got_fee_minor"].eq_missing(both["fee_minor"]).all()  # the charge's fee once, none on refunds
    back = both.filter(pl.col("event_type").is_in(["refund", "reversal"]) & pl.col("corruption").is_null())
    assert back.height > 0 and (back["got_amount_minor"] == back["amount_minor"]).all()


#: A Stripe export with the settled figures of a charge presented in another currency (semicolon, comma decimals).
SETTLED_HEAD = (
    "id;Created date (UTC);Amount;Amount Refunded;Currency;Converted Amount;Converted Amount Refunded;"
    "Converted Currency;Fee;Status;Disputed Amount;Dispute Status;kanda_ref (metadata)"
)


def settled_export(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([SETTLED_HEAD, *rows]) + "\n")
    return path


def test_a_charge_in_another_currency_loads_what_it_settled_for(tmp_path: Path) -> None:
    """A buyer charged USD 12,50 on an account that settles in EGP: the export states the EGP that reached the
    account (`Converted Amount` in `Converted Currency`) and `Fee` in EGP already. It was quarantined for its
    currency, for a steward to retype what the export already said; it loads in EGP with those figures, exactly.
    Its refund is the export's own settled figure (`Converted Amount Refunded`, converted at the refund's rate),
    never the charge's share of `Converted Amount` (5/12,5 of 612,50 would be 245,00). A charge in EGP reads
    `Amount` as before, whatever the converted columns say."""
    ref = "EG-C0001.EG-P00001"
    path = settled_export(
        tmp_path / "payments.csv",
        [
            f"ch_usd;2026-10-01 10:00:00;12,50;0,00;usd;612,50;0,00;egp;30,00;Paid;;;{ref}",
            f"ch_usd_ref;2026-10-01 11:00:00;12,50;5,00;usd;612,50;251,00;egp;30,00;Partially Refunded;;;{ref}",
            f"ch_egp;2026-10-01 12:00:00;1.000,00;250,00;egp;;;egp;15,00;Partially Refunded;;;{ref}",
        ],
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    assert frame.select("transaction_id", "event_type", "amount_minor", "fee_minor", "currency").rows() == [
        ("ch_usd", "sale", 61_250, 3_000, "EGP"),
        ("ch_usd_ref", "sale", 61_250, 3_000, "EGP"),
        ("ch_usd_ref", "refund", -25_100, 0, "EGP"),
        ("ch_egp", "sale", 100_000, 1_500, "EGP"),
        ("ch_egp", "refund", -25_000, 0, "EGP"),
    ]
    split = through_contract(frame, REGION)
    assert split.quarantine.is_empty()
    assert split.valid.filter(pl.col("transaction_id") == "ch_usd")["net_minor"].to_list() == [58_250]


def test_a_converted_charge_without_its_settled_figure_waits_for_a_steward(tmp_path: Path) -> None:
    """Only a figure the export states is read, never a rate: an event of a charge in USD whose EGP figure the row
    does not give keeps its dollars and is quarantined for its currency, beside the events of the row that do
    load. A dispute's amount is the dispute's, in the charge's currency, and what it withdrew in EGP is on its own
    balance transactions, which the export has no column for: its reversal waits too. A garbled currency code, or
    figures settled in another currency than the region's, are quarantined as before."""
    ref = "EG-C0001.EG-P00001"
    path = settled_export(
        tmp_path / "payments.csv",
        [
            f"ch_missing;2026-10-01 10:00:00;12,50;0,00;usd;;;egp;30,00;Paid;;;{ref}",
            f"ch_zero;2026-10-01 10:00:00;12,50;0,00;usd;0,00;0,00;egp;30,00;Paid;;;{ref}",
            f"ch_refund_unstated;2026-10-01 11:00:00;12,50;5,00;usd;612,50;;egp;30,00;Partially Refunded;;;{ref}",
            f"ch_disputed;2026-10-01 12:00:00;12,50;0,00;usd;612,50;0,00;egp;30,00;Disputed;12,50;lost;{ref}",
            f"ch_garbled;2026-10-01 13:00:00;12,50;0,00;xyz;612,50;0,00;egp;30,00;Paid;;;{ref}",
            f"ch_usd_account;2026-10-01 14:00:00;12,50;0,00;eur;11,40;0,00;usd;0,70;Paid;;;{ref}",
            f"ch_unreadable;2026-10-01 15:00:00;12,50;0,00;usd;N/A;0,00;egp;30,00;Paid;;;{ref}",
        ],
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    assert frame.select("transaction_id", "event_type", "amount_minor", "currency").rows() == [
        ("ch_missing", "sale", 1_250, "USD"),
        ("ch_zero", "sale", 1_250, "USD"),
        ("ch_refund_unstated", "sale", 61_250, "EGP"),
        ("ch_refund_unstated", "refund", -500, "USD"),
        ("ch_disputed", "sale", 61_250, "EGP"),
        ("ch_disputed", "reversal", -1_250, "USD"),
        ("ch_garbled", "sale", 1_250, "XYZ"),
        ("ch_usd_account", "sale", 1_250, "EUR"),
        ("ch_unreadable", "sale", None, "EGP"),  # a settled figure that does not parse: unreadable, not dollars
    ]
    split = through_contract(frame, REGION)
    assert split.valid.select("transaction_id", "event_type").rows() == [
        ("ch_refund_unstated", "sale"),
        ("ch_disputed", "sale"),
    ]
    for row_number in (1, 2, 3, 4):
        assert ("currency_is_region_currency", "currency") in quarantine_rules(split, row_number)
    assert quarantine_rules(split, 7) == {("missing_or_unreadable", "amount_minor")}
