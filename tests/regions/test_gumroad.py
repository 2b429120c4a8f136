"""Gumroad-style purchase export (TZ, `platform_csv`): hand-written sample, file rejects, writer round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from regions import get_region
from regions.rails import get_adapter
from regions.rails.gumroad.writer import exported_truth, write
from tests.support.roundtrip import (
    assert_lines_accounted,
    assert_rejected,
    assert_round_trip,
    quarantine_rules,
    read_all,
    read_written,
    row,
    side_by_side,
    through_contract,
    truth_frame,
    utc,
)

RAILS = Path(__file__).parents[2] / "regions" / "rails"
SAMPLE = RAILS / "gumroad" / "samples" / "purchases_tz.csv"
REGION = get_region("TZ")
#: The rail as the region reads it (since issue 13 a spec, `regions/rails/<rail>/spec.yaml`).
ADAPTER = get_adapter(REGION.source_format)


def test_sample_parses_to_exact_values() -> None:
    frame, ignored = read_all(ADAPTER, SAMPLE, REGION)
    assert ignored == 1  # the closing Totals line (no date)
    # A refunded or disputed purchase is one line and two events: the sale, then the money going back (or, for a
    # dispute the seller won, the failed reversal that says it came back).
    assert frame["source_row"].to_list() == [1, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 10, 11, 11, 12, 12, 13, 13, 14]
    assert frame["event_type"].to_list() == [
        *("sale", "refund", "sale", "sale", "sale", "sale", "refund", "sale", "reversal"),
        *("sale",) * 5,
        *("refund", "sale", "reversal", "sale", "refund", "sale"),
    ]
    assert frame["amount_minor"].to_list() == [
        *(2500000, -2500000),  # fully refunded: the sale keeps its positive Sale Price
        *(1200000, 1200000, 500000),
        *(4000000, -1000000),  # partially refunded: minus Partial Refund
        *(15000000, -15000000),  # lost dispute
        900000,  # purchase id "Totals", with a date: a real sale
        None,  # "12,3O0"
        *(1200000, 800000),
        *(2500000, -2500000),  # the same line delivered twice
        *(750050, -750050),  # dispute won: a failed reversal, which gives back any reversal loaded before
        *(600000, None),  # Partial Refund "1O,000.00": the refund is unreadable, the sale is not
        None,  # "184467440737098017.00" overflows int64: null, never a wrapped small number
    ]
    assert frame["fee_minor"].to_list() == [
        *(37500, 0, 18000, 18000, 0, 60000, 0, 225000, 0, 13500, 18000, 18000, 12000, 37500, 0, 11250, 0, 9000, 0),
        9000,
    ]
    assert frame["net_minor"].to_list()[:9] == [
        *(2462500, -2500000, 1182000, 1182000, 500000, 3940000, -1000000, 14775000, -15000000)
    ]
    statuses = ["success", "success", "pending", "success", "failed"] + ["success"] * 11 + ["failed"] + ["success"] * 3
    assert frame["status"].to_list() == statuses
    # Money going back is booked at the purchase's own time: the export states no other date.
    assert frame["occurred_at"].to_list()[:11] == [
        *(utc(2024, 3, 1, 9, 15, 30),) * 2,
        utc(2024, 3, 1, 21, 59, 59),
        utc(2024, 3, 1, 22, 0, 59),
        utc(2024, 3, 2, 0, 30),
        *(utc(2024, 3, 2, 10),) * 2,
        *(utc(2024, 3, 2, 13, 45, 10),) * 2,
        utc(2024, 3, 3, 8),
        utc(2024, 3, 3, 11, 11, 11),
    ]
    assert row(frame, 9)["occurred_at"] is None
    assert frame["creator_id"].to_list()[:9] == [
        *("TZ-C0001", "TZ-C0001", "TZ-C0002", "TZ-C0002", "TZ-C0003", "TZ-C0001", "TZ-C0001", "TZ-C0004", "TZ-C0004")
    ]
    assert row(frame, 10)["creator_id"] is None and row(frame, 10)["product_id"] is None
    assert frame["product_id"][0] == "TZ-P00001"
    ids = frame["transaction_id"].to_list()
    assert ids[0] == ids[1] == ids[13] == "Kj3aB9x0Qw" and ids[9] == "Totals"
    assert set(frame["currency"]) == {"TZS"}
    assert frame["channel"].to_list()[7:10] == ["paypal", "paypal", "paypal"]
    refs = frame["buyer_ref"]
    assert refs[7] is None and refs[8] is None  # masked "****" email: no buyer reference
    assert refs[0] == refs[1] == refs[5] == refs[13]  # case and spaces do not split a buyer
    assert all(len(r) == 64 and int(r, 16) >= 0 for r in refs.drop_nulls())
    plain = frame.drop("raw_record").write_csv().lower()
    assert "@example.com" not in plain and "mail.example" not in plain
    assert frame["raw_record"].struct.field("Your city")[0] == "Dar es Salaam, Kinondoni"


def test_sample_through_the_contract() -> None:
    """What a steward and an analyst see: refunds and disputes loaded, only the unreadable money quarantined."""
    frame, _ = read_all(ADAPTER, SAMPLE, REGION)
    split = through_contract(frame, REGION)
    # money is what succeeded: the failed reversal of a dispute the seller won moves none
    moved = split.valid.filter(pl.col("status") == "success")
    loaded = moved.group_by("transaction_id").agg(pl.col("amount_minor").sum(), pl.len()).sort("transaction_id")
    net_of_money_back = dict(zip(loaded["transaction_id"], loaded["amount_minor"], strict=True))
    assert net_of_money_back["Kj3aB9x0Qw"] == 0  # both deliveries count once downstream; here each nets to zero
    assert net_of_money_back["Pr7Partial"] == 3_000_000
    assert net_of_money_back["Pp44Disp0t"] == 0
    assert net_of_money_back["Won0000001"] == 750_050
    assert net_of_money_back["Totals"] == 900_000
    assert quarantine_rules(split, 8) == {("missing_or_unreadable", "amount_minor")}
    assert quarantine_rules(split, 13) == {("missing_or_unreadable", "amount_minor")}  # the refund only
    assert split.valid.filter(pl.col("source_row") == 13)["event_type"].to_list() == ["sale"]
    assert quarantine_rules(split, 14) == {("missing_or_unreadable", "amount_minor")}
    assert split.quarantine["source_row"].sort().to_list() == [8, 9, 10, 13, 14]


def test_flags_on_a_purchase_that_never_succeeded_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(
        "Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (TZS),Fees (TZS),Net Total (TZS),Refunded?,"
        "Fully Refunded?,Disputed?,Dispute Won?,Purchase State\n"
        "F1,[TZ-C0001.TZ-P00002] x,2024-01-05,10:00:00,1000.00,0.00,1000.00,1,1,0,0,failed\n"
        "F2,[TZ-C0001.TZ-P00002] x,2024-01-05,11:00:00,1000.00,15.00,985.00,1,1,1,0,successful\n"
    )
    frame, _ = read_all(ADAPTER, path, REGION)
    assert frame.select("event_type", "status", "amount_minor").rows() == [
        ("sale", "failed", 100000),
        ("refund", None, -100000),  # a refund of money never received contradicts itself: quarantined
        ("sale", "success", 100000),
        ("refund", "success", -100000),
        ("reversal", "success", 0),  # disputed after a full refund: nothing left to take, quarantined
    ]
    split = through_contract(frame, REGION)
    assert split.valid.select("event_type", "status").rows() == [
        ("sale", "failed"),
        ("sale", "success"),
        ("refund", "success"),
    ]


def test_a_dispute_won_after_a_full_refund_is_a_failed_reversal_of_the_sale_price_not_a_quarantined_zero(
    tmp_path: Path,
) -> None:
    frame, _ = read_written(
        ADAPTER,
        REGION,
        tmp_path / "won.csv",
        "Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (TZS),Fees (TZS),Net Total (TZS),Refunded?,"
        "Fully Refunded?,Disputed?,Dispute Won?\n"
        "W1,[TZ-C0001.TZ-P00002] x,2024-01-05,10:00:00,1000.00,15.00,985.00,1,1,1,1\n",
    )
    split = through_contract(frame, REGION)
    assert split.quarantine.is_empty()
    assert split.valid.select("event_type", "status", "amount_minor").rows() == [
        ("sale", "success", 100000),
        ("refund", "success", -100000),
        ("reversal", "failed", -100000),
    ]


def test_the_purchase_time_as_gumroads_export_writes_it(tmp_path: Path) -> None:
    """Gumroad's export writes the purchase's whole UTC time in `Purchase Time (UTC timezone)`
    (`created_at.to_time.to_s`, "2024-01-05 21:30:00 UTC"): joined to the date, every real row was an unreadable
    time, quarantined. It is read as it is; a time of day beside the date still is; another offset is unreadable."""
    frame, _ = read_written(
        ADAPTER,
        REGION,
        tmp_path / "export.csv",
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),Net Total (TZS)\n"
        "T1,[TZ-C0001.TZ-P00002] x,2024-01-05,2024-01-05 21:30:00 UTC,1000.00,15.00,985.00\n"
        "T2,[TZ-C0001.TZ-P00002] x,2024-01-05,2024-01-05 21:30:00 +0000,1000.00,15.00,985.00\n"
        "T3,[TZ-C0001.TZ-P00002] x,2024-01-05,21:30:00,1000.00,15.00,985.00\n"
        "T4,[TZ-C0001.TZ-P00002] x,2024-01-05,2024-01-05 21:30:00 +0300,1000.00,15.00,985.00\n",
    )
    split = through_contract(frame, REGION)
    assert split.valid.select("transaction_id", "occurred_at", "local_date").rows() == [
        (txn, utc(2024, 1, 5, 21, 30), dt.date(2024, 1, 6))
        for txn in ("T1", "T2", "T3")  # 00:30 in Dar es Salaam
    ]
    assert quarantine_rules(split, 4) == {("missing_or_unreadable", "occurred_at")}


def test_missing_optional_columns(tmp_path: Path) -> None:
    frame, ignored = read_written(
        ADAPTER,
        REGION,
        tmp_path / "old.csv",
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (tzs),Fees (TZS),Net Total (TZS)\n"
        "A1,[TZ-C0001.TZ-P00002] x,2024-01-05,10:00:00,1000.00,15.00,985.00\n"
        "Totals,,,,1000.00,15.00,985.00\n",
    )
    assert ignored == 1
    assert frame.select("amount_minor", "fee_minor", "status", "event_type").row(0) == (100000, 1500, "success", "sale")
    assert frame["buyer_ref"][0] is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ("Receipt No,Completion Time,Paid In\nX,2024-01-01 10:00:00,100\n", "required column"),
        ("Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price (USD),Fees (USD),Net Total (USD)\n", "USD"),
        # Gumroad's own label: every amount in US dollars, never to be read as shillings
        (
            "Purchase ID,Item Name,Purchase Date,Purchase Time,Sale Price ($),Fees ($),Net Total ($)\n"
            "A1,[TZ-C0001.TZ-P00002] x,2024-01-05,10:00:00,10.00,0.80,9.20\n",
            r"^the money columns say \(\$\), a platform's label for US dollars, but this region's money is TZS",
        ),
    ],
)
def test_file_level_rejects(tmp_path: Path, content: str, reason: str) -> None:
    assert_rejected(ADAPTER, REGION, tmp_path / "bad.csv", reason, content=content)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    assert_rejected(ADAPTER, REGION, tmp_path / "cut.csv", "CSV", content=data[: data.index(b"Pp44Disp0t") + 40])


def test_round_trip_from_truth(tmp_path: Path) -> None:
    truth = truth_frame(REGION, seed=11, registry_seed=7, start=dt.date(2024, 3, 1), chunk_rows=1200)
    path = tmp_path / "export.csv"
    write(path, iter(truth.iter_slices(1200)), REGION, np.random.default_rng(3))
    frame, ignored = read_all(ADAPTER, path, REGION)
    lines = len(path.read_text(encoding="utf-8").splitlines()) - 1
    stated = exported_truth(truth)
    assert_lines_accounted(frame, ignored, lines=lines, truth=stated, folded=True)
    assert ignored == 1
    # disputes the seller won are flags on their purchase's line, read as failed reversals
    assert stated.filter((pl.col("event_type") == "reversal") & (pl.col("status") == "failed")).height > 0
    # Refunds and lost disputes are flags on the purchase's line: fewer lines than truth events, none lost.
    money_back = truth.filter(pl.col("event_type").is_in(["refund", "reversal"])).height
    assert money_back > 0 and lines == truth.height - money_back + 1
    both = side_by_side(stated, frame)
    assert_round_trip(both)
    assert both["got_fee_minor"].eq_missing(both["fee_minor"]).all()
    assert (both["got_net_minor"] == both["amount_minor"] - both["fee_minor"]).fill_null(True).all()
    # a refund or reversal keeps its truth amount and is read at its purchase's time, hours before its own
    back = both.filter(pl.col("event_type").is_in(["refund", "reversal"]) & pl.col("corruption").is_null())
    assert back.height > 0 and (back["got_amount_minor"] == back["amount_minor"]).all()
    went_back = pl.col("event_type").is_in(["refund", "reversal"]) & (pl.col("status") == "success")
    exported = stated.filter(went_back)
    own_time = truth.filter(pl.col("event_type").is_in(["refund", "reversal"]))["occurred_at"]
    assert (exported["occurred_at"] < own_time).all()


def test_the_generic_spec_writer_renders_this_spec_in_a_file_its_reader_reads(tmp_path: Path) -> None:
    """docs/adding-a-region.md says the generic writer renders Gumroad (without its refund flags): it refused the
    spec once the time became a `coalesce` of a regex and a concatenation, and it could pick the `($)` spelling,
    which the reader refuses as US dollars. It writes the date and time of day, in the region's currency."""
    from regions.spec.model import load_spec
    from regions.spec.writer import write_spec

    spec = load_spec(RAILS / "gumroad" / "spec.yaml")
    at = dt.datetime(2026, 10, 5, 21, 30, tzinfo=dt.UTC)
    truth = pl.DataFrame(
        {
            "txn_no": [1, 2],
            "event_type": ["sale", "sale"],
            "status": ["success", "success"],
            "amount_minor": [100_000, 250_050],
            "fee_minor": [1_500, 0],
            "occurred_at": [at, at],
            "corruption": [None, None],
            "creator_id": ["TZ-C0001", "TZ-C0002"],
            "product_id": ["TZ-P00001", "TZ-P00005"],
            "buyer_email": ["a@mail.example", "b@mail.example"],
            "buyer_phone": ["+255700000001", "+255700000002"],
        },
        schema_overrides={"corruption": pl.String},
    )
    for seed in range(4):  # the header spelling is drawn per file
        path = tmp_path / f"generic-{seed}.csv"
        write_spec(spec, path, iter([truth]), REGION, np.random.default_rng(seed))
        frame, _ = read_all(ADAPTER, path, REGION)
        assert frame.select("amount_minor", "fee_minor", "occurred_at").rows() == [
            (100_000, 1_500, at),
            (250_050, 0, at),
        ]


def test_what_moved_no_money_is_ignored_and_an_affiliates_commission_is_the_creators_cost(settings) -> None:
    """Gumroad's export (antiwork/gumroad `purchase_export_service`) lists, beside the sales, purchases that charged
    nothing: a pre-order's card authorisation and a subscription's free trial, each with the product's price (the
    charge that follows is a purchase of its own), and free products at 0. They loaded as sales of money never taken
    (or were quarantined as sales of 0, one per free download). And its `Net Total` is Sale Price less Fees, while
    the seller is credited that less the affiliate's commission: the creator's net was the commission too high."""
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    head = (
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),"
        "Net Total (TZS),Affiliate commission (TZS),Pre-order authorization?,Free trial purchase?"
    )
    item, when = "[TZ-C0001.TZ-P00001] Course", "2026-10-05,2026-10-05 09:00:00 UTC"
    lines = [
        f'AFF0000001,{item},{when},"20,000.00",300.00,"19,700.00","2,000.00",0,0',
        f'NOAFF00001,{item},{when},"20,000.00",300.00,"19,700.00",,0,0',
        f'PREORDER01,{item},{when},"20,000.00",300.00,"19,700.00",,1,0',
        f'FREETRIAL1,{item},{when},"20,000.00",300.00,"19,700.00",,0,1',
        f"FREEPROD01,{item},{when},0.0,0.0,0.0,,0,0",
        f'BADAFF0001,{item},{when},"20,000.00",300.00,"19,700.00",2.OOO,0,0',
    ]
    content = "\n".join([head, *lines, "Totals,,,,80000.0,1200.0,78800.0,2000.0,,"]) + "\n"
    report = ingest_written(settings, "TZ", settings.home / "sales.csv", content)
    assert (report.loaded, report.quarantined, report.ignored) == (2, 1, 4), report
    with open_store(settings, "TZ", read_only=True) as con:
        loaded = con.execute(
            "SELECT transaction_id, amount_minor, fee_minor, net_minor FROM sale_events ORDER BY 1"
        ).fetchall()
        held = con.execute("SELECT transaction_id, reasons->>'$[0].rule', reasons->>'$[0].column' FROM quarantine")
        held = held.fetchall()
    assert loaded == [("AFF0000001", 2_000_000, 230_000, 1_770_000), ("NOAFF00001", 2_000_000, 30_000, 1_970_000)]
    assert held == [("BADAFF0001", "missing_or_unreadable", "fee_minor")]


def test_the_processors_fee_on_a_sale_paid_into_the_sellers_own_paypal_or_stripe_is_the_creators_cost(settings) -> None:
    """A sale paid into the seller's own PayPal or Stripe account (PayPal / Stripe Connect) cost them the processor's
    fee too, which Gumroad's `Fees` leaves out and its export states apart (`PayPal Fee Amount`, `Stripe Fee Amount`,
    each with its currency; antiwork/gumroad `purchase_export_service`, help article 330-stripe-connect): read as
    Net Total, the creator's net was that fee too high. A fee in another currency, or without one, is unreadable."""
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    head = (
        "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),"
        "Net Total (TZS),Affiliate commission (TZS),PayPal Fee Amount,PayPal Fee Currency,Stripe Fee Amount,"
        "Stripe Fee Currency"
    )
    item, when = "[TZ-C0001.TZ-P00001] Course", "2026-10-05,2026-10-05 09:00:00 UTC"
    lines = [
        f'PAYPAL0001,{item},{when},"20,000.00","2,000.00","18,000.00",,880.00,TZS,,',
        f'STRIPE0001,{item},{when},"20,000.00","2,000.00","18,000.00",500.00,,,610.00,tzs',
        f'GUMROAD001,{item},{when},"20,000.00","2,000.00","18,000.00",,,,,',
        f'USDFEE0001,{item},{when},"20,000.00","2,000.00","18,000.00",,,,0.88,usd',
        f'NOCURR0001,{item},{when},"20,000.00","2,000.00","18,000.00",,,,610.00,',
    ]
    content = "\n".join([head, *lines]) + "\n"
    report = ingest_written(settings, "TZ", settings.home / "sales.csv", content)
    assert (report.loaded, report.quarantined) == (3, 2), report
    with open_store(settings, "TZ", read_only=True) as con:
        loaded = con.execute("SELECT transaction_id, fee_minor, net_minor FROM sale_events ORDER BY 1").fetchall()
        held = con.execute("SELECT transaction_id, reasons->>'$[0].column' FROM quarantine ORDER BY 1").fetchall()
    assert loaded == [
        ("GUMROAD001", 200_000, 1_800_000),  # Gumroad's merchant account charged: its Fees hold the processor's
        ("PAYPAL0001", 288_000, 1_712_000),
        ("STRIPE0001", 311_000, 1_689_000),  # with the affiliate's commission
    ]
    assert held == [("NOCURR0001", "fee_minor"), ("USDFEE0001", "fee_minor")]
