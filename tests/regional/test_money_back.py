"""Money going back more than once on one payment is counted once per time it went back, never dropped as a
"duplicate" of the first, and never counted twice when a file is delivered again.

Two shapes of rail: most send one record per refund (a webhook, a log line), so a payment refunded in two parts is
two events, told apart by the minute each happened (`event_ref`), or by the refund's own id where the rail gives
one; Stripe- and Gumroad-style exports restate a running total (`Amount Refunded` grows from 40,00 to 100,00), so
each export adds only what its total adds to the store.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl

from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.checks.verify import verify
from kanda.flow import reprocess_region
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.reports.data import region_reports
from kanda.review.actor import Actor
from kanda.review.service import ReviewFilter, approve, enqueue_region, list_items
from kanda.settings import Settings
from tests.support.files import make_files

CHARGE = 7001


def flutterwave(event: str, amount: int, created_at: str, fee: int = 0) -> str:
    """One Cameroon (XAF, no minor unit) Flutterwave document of payment 7001."""
    data = {
        "id": CHARGE,
        "amount": amount,
        "currency": "XAF",
        "app_fee": fee,
        "status": "successful",
        "payment_type": "card",
        "created_at": created_at,
        "customer": {"email": "b7001@mail.example"},
    }
    return json.dumps({"event": event, "data": data, "meta_data": {"kanda_ref": "CM-C0001.CM-P00001"}})


def write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def money_back(con: duckdb.DuckDBPyConnection, charge: str) -> list[tuple]:
    return con.execute(
        "SELECT event_type, amount_minor, net_minor, event_ref FROM sale_events"
        " WHERE transaction_id = ? AND event_type <> 'sale' ORDER BY event_ref",
        [charge],
    ).fetchall()


def test_a_payment_refunded_in_two_parts_keeps_both_and_a_redelivery_neither_twice(settings: Settings, tmp_path):
    make_files(settings, regions=["CM"], rows=50)
    first, second = "2026-11-21T10:00:00.000Z", "2026-11-22T10:00:00.000Z"
    sale = flutterwave("charge.completed", 10_000, "2026-11-20T10:00:00.000Z", fee=150)
    refund_1, refund_2 = flutterwave("refund.completed", 3_000, first), flutterwave("refund.completed", 2_000, second)
    path = write(tmp_path, "webhooks-1.ndjson", [sale, refund_1, refund_1, refund_2])  # the first refund twice
    (result,) = ingest_files(settings, "CM", [path]).files
    assert (result.loaded, result.duplicates, result.quarantined) == (3, 1, 0), result
    # the second refund delivered again in a later file, beside the sale delivered again
    (again,) = ingest_files(settings, "CM", [write(tmp_path, "webhooks-2.ndjson", [refund_2, sale])]).files
    assert (again.loaded, again.duplicates) == (0, 2), again

    with open_store(settings, "CM", read_only=True) as con:
        refs = [29_920_920, 29_922_360]  # the two refunds' minutes since 1970
        assert money_back(con, str(CHARGE)) == [
            ("refund", -3_000, -3_000, refs[0]),
            ("refund", -2_000, -2_000, refs[1]),
        ]
        ids = [r[0] for r in con.execute("SELECT event_id FROM sale_events ORDER BY event_ref").fetchall()]
        assert ids[-2:] == [f"{CHARGE}:refund:success:{refs[0]}", f"{CHARGE}:refund:success:{refs[1]}"]
        net = con.execute("SELECT sum(net_minor) FROM sale_events WHERE transaction_id = ?", [str(CHARGE)])
        assert net.fetchall() == [(10_000 - 150 - 3_000 - 2_000,)]


STRIPE_HEADER = (
    "id;Description;Created (UTC);Amount;Amount Refunded;Currency;Converted Amount;Converted Currency;Fee;Status;"
    "Customer Email;Payment Method Type;kanda_ref (metadata)"
)


def stripe(refunded: str, status: str, charge: str = "ch_pr1", note: str = "x") -> str:
    """Charge `charge` (100,00 EGP, fee 1,50) as an export shows it, with `refunded` gone back so far."""
    return (
        f"{charge};{note};2026-11-20 10:00:00;100,00;{refunded};egp;100,00;egp;1,50;{status};b1@mail.example;card;"
        "EG-C0001.EG-P00001"
    )


def export(settings: Settings, folder: Path, name: str, lines: list[str]):
    (result,) = ingest_files(settings, "EG", [write(folder, name, [STRIPE_HEADER, *lines])]).files
    assert result.status == "loaded", result
    return result


def test_an_export_that_restates_a_running_total_adds_only_what_the_total_grew(settings: Settings, tmp_path):
    make_files(settings, regions=["EG"], rows=50)
    paid = export(settings, tmp_path, "1.csv", [stripe("0,00", "Paid")])
    assert (paid.loaded, paid.duplicates) == (1, 0)
    part = export(settings, tmp_path, "2.csv", [stripe("40,00", "Partially Refunded")])
    assert (part.loaded, part.duplicates) == (1, 1)  # the refund so far; the sale again
    whole = export(settings, tmp_path, "3.csv", [stripe("100,00", "Refunded")])
    assert (whole.loaded, whole.duplicates) == (1, 1)  # the 60,00 the total grew by
    # an older export read late (its total is smaller), and the same total in another file: nothing to add
    stale = export(settings, tmp_path, "4.csv", [stripe("40,00", "Partially Refunded", note="older")])
    same = export(settings, tmp_path, "5.csv", [stripe("100,00", "Refunded", note="again")])
    assert (stale.loaded, stale.duplicates, same.loaded, same.duplicates) == (0, 2, 0, 2)

    with open_store(settings, "EG", read_only=True) as con:
        assert money_back(con, "ch_pr1") == [("refund", -4_000, -4_000, 4_000), ("refund", -6_000, -6_000, 10_000)]
        net = con.execute("SELECT sum(net_minor) FROM sale_events WHERE transaction_id = 'ch_pr1'").fetchall()
        assert net == [(10_000 - 150 - 10_000,)]


def test_one_export_holding_a_charge_twice_loads_its_largest_total_once(settings: Settings, tmp_path):
    """Two exports concatenated: the charge at 40,00 and at 100,00 gone back. The larger total is what went back;
    the other line is a duplicate, whichever comes first."""
    make_files(settings, regions=["EG"], rows=50)
    both = export(settings, tmp_path, "1.csv", [stripe("100,00", "Refunded"), stripe("40,00", "Partially Refunded")])
    assert (both.loaded, both.duplicates, both.rows_in) == (2, 2, 4)  # a sale and a refund of 100,00
    with open_store(settings, "EG", read_only=True) as con:
        assert money_back(con, "ch_pr1") == [("refund", -10_000, -10_000, 10_000)]


SETTLED_HEADER = (
    "id;Description;Created (UTC);Amount;Amount Refunded;Currency;Converted Amount;Converted Amount Refunded;"
    "Converted Currency;Fee;Status;Customer Email;Payment Method Type;kanda_ref (metadata)"
)


def test_a_dollar_charges_settled_refunds_add_only_what_their_settled_total_grew(settings: Settings, tmp_path):
    """A USD 12,50 charge on an account that settles in EGP, refunded in two parts, each converted back at its own
    day's rate: the exports restate `Converted Amount Refunded` (100,00 EGP, then 251,00 EGP for USD 5,00 in all),
    and the store holds the EGP that went back, as it holds the sale's 612,50 EGP, never the dollars."""
    make_files(settings, regions=["EG"], rows=50)

    def charge(refunded: str, settled_back: str, status: str) -> str:
        return (
            f"ch_fx1;x;2026-11-20 10:00:00;12,50;{refunded};usd;612,50;{settled_back};egp;30,00;{status};"
            "b1@mail.example;card;EG-C0001.EG-P00001"
        )

    for name, line in (
        ("1.csv", charge("2,00", "100,00", "Partially Refunded")),
        ("2.csv", charge("5,00", "251,00", "Partially Refunded")),
    ):
        (result,) = ingest_files(settings, "EG", [write(tmp_path, name, [SETTLED_HEADER, line])]).files
        assert (result.status, result.quarantined) == ("loaded", 0), result
    with open_store(settings, "EG", read_only=True) as con:
        assert money_back(con, "ch_fx1") == [("refund", -10_000, -10_000, 10_000), ("refund", -15_100, -15_100, 25_100)]
        rows = con.execute("SELECT DISTINCT currency FROM sale_events WHERE transaction_id = 'ch_fx1'").fetchall()
        net = con.execute("SELECT sum(net_minor) FROM sale_events WHERE transaction_id = 'ch_fx1'").fetchall()
    assert rows == [("EGP",)] and net == [(61_250 - 3_000 - 25_100,)]


def test_a_stewards_fix_of_a_running_total_adds_only_what_the_store_lacks(settings: Settings, tmp_path):
    """A refund whose total could not be read is quarantined beside its loaded sale; the steward types the total
    the export meant, and the fix goes through the same settling as a file: a later export's larger total then
    adds only the rest."""
    make_files(settings, regions=["EG"], rows=50)
    export(settings, tmp_path, "1.csv", [stripe("4O,00", "Partially Refunded")])  # a letter O in the total
    enqueue_region(settings, "EG")
    steward = Actor("amina", "steward", frozenset({"EG"}))
    (item,) = [i for i in list_items(settings, steward, ReviewFilter(), limit=10) if i.transaction_id == "ch_pr1"]
    approve(settings, steward, item.id, "the export's 40,00", edits={"amount_minor": "-4000", "net_minor": "-4000"})
    fixed = reprocess_region(settings, "EG")
    assert fixed.loaded == [item.id], fixed
    whole = export(settings, tmp_path, "2.csv", [stripe("100,00", "Refunded")])
    assert (whole.loaded, whole.duplicates) == (1, 1)
    with open_store(settings, "EG", read_only=True) as con:
        assert money_back(con, "ch_pr1") == [("refund", -4_000, -4_000, 4_000), ("refund", -6_000, -6_000, 10_000)]


def test_a_stewards_fixed_refund_time_is_the_refund_delivered_at_that_time(settings: Settings, tmp_path):
    """A refund delivered once at its time and once with a year's typo (quarantined as in the future): the steward
    types the right time. The fix kept the typo's minute as its reference, so it loaded as a second refund."""
    make_files(settings, regions=["CM"], rows=50)
    sale = flutterwave("charge.completed", 10_000, "2026-11-20T10:00:00.000Z")
    refund = flutterwave("refund.completed", 3_000, "2026-11-21T10:00:00.000Z")
    typo = refund.replace("2026-11-21", "2027-11-21")
    (first,) = ingest_files(settings, "CM", [write(tmp_path, "a.ndjson", [sale, refund, typo])]).files
    assert (first.loaded, first.quarantined) == (2, 1), first
    enqueue_region(settings, "CM")
    steward = Actor("awa", "steward", frozenset({"CM"}))
    (item,) = list_items(settings, steward, ReviewFilter(), limit=10)
    approve(settings, steward, item.id, "year typo", edits={"occurred_at": "2026-11-21T10:00:00+00:00"})
    assert reprocess_region(settings, "CM").duplicates == [item.id]
    (again,) = ingest_files(settings, "CM", [write(tmp_path, "b.ndjson", [refund])]).files
    assert (again.loaded, again.duplicates) == (0, 1), again
    with open_store(settings, "CM", read_only=True) as con:
        assert [row[1] for row in money_back(con, str(CHARGE))] == [-3_000]


MPESA = "MPESA BUSINESS STATEMENT\nReceipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance"


def mpesa(receipt: str, when: str, details: str, paid_in: str = "", withdrawn: str = "") -> str:
    return f'{receipt},{when},{details} Acc. KE-C0003.KE-P00009,Completed,"{paid_in}","{withdrawn}",""'


def test_overlapping_statements_that_print_times_without_seconds_repeat_refunds_not_add_them(settings, tmp_path):
    """The same refunds in an overlapping statement whose times drop the seconds: the minute is the same."""
    make_files(settings, regions=["KE"], rows=50)
    sale = ("SKA0000001", "Pay Bill Online from 0703212279 - MERCY ACHIENG", "10,000.00")
    first = [
        mpesa(sale[0], "2026-12-04 09:00:10", sale[1], paid_in=sale[2]),
        mpesa("SRA0000001", "2026-12-04 10:00:30", "Refund of SKA0000001", withdrawn="-3,000.00"),
        mpesa("SRA0000002", "2026-12-04 11:00:45", "Refund of SKA0000001", withdrawn="-2,000.00"),
    ]
    second = [
        mpesa(sale[0], "04/12/2026 09:00", sale[1], paid_in=sale[2]),
        mpesa("SRA0000001", "04/12/2026 10:00", "Refund of SKA0000001", withdrawn="-3,000.00"),
        mpesa("SRA0000002", "04/12/2026 11:00", "Refund of SKA0000001", withdrawn="-2,000.00"),
    ]
    (loaded,) = ingest_files(settings, "KE", [write(tmp_path, "s1.csv", [MPESA, *first])]).files
    (again,) = ingest_files(settings, "KE", [write(tmp_path, "s2.csv", [MPESA, *second])]).files
    assert (loaded.loaded, again.loaded, again.duplicates) == (3, 0, 3), (loaded, again)
    with open_store(settings, "KE", read_only=True) as con:
        refunds = [row[1] for row in money_back(con, "SKA0000001")]
        assert refunds == [-300_000, -200_000]


def mtn(reference: str, kind: str, amount: str, polled_at: str) -> str:
    """One Benin (XOF) MTN MoMo result of order M1, as our poller records it: a refund names the request-to-pay it
    refunds, `sale-1`."""
    record = {
        "referenceId": reference,
        **({"referenceIdToRefund": "sale-1"} if kind == "refund" else {}),
        "externalId": "M1",
        "kind": kind,
        "status": "SUCCESSFUL",
        "amount": amount,
        "currency": "XOF",
        "polled_at": polled_at,
        "payeeNote": "kanda BJ-C0001/BJ-P00001",
        "payer": {"partyId": "22997000001"},
    }
    return json.dumps(record)


def test_a_refund_recorded_twice_by_the_poller_is_one_refund_by_its_own_id(settings, tmp_path):
    """MTN's status carries no time: `polled_at` is when our poller saw it, which a second recording changes. The
    refund's own reference id (the rail's `event_ref`) tells a second recording from a second refund."""
    make_files(settings, regions=["BJ"], rows=50)
    lines = [
        mtn("sale-1", "requesttopay", "10000", "2026-12-04T09:00:00Z"),
        mtn("rf-1", "refund", "3000", "2026-12-04T10:00:00Z"),
        mtn("rf-2", "refund", "2000", "2026-12-04T10:00:30Z"),  # a second refund within the same minute
    ]
    (first,) = ingest_files(settings, "BJ", [write(tmp_path, "a.ndjson", lines)]).files
    assert (first.loaded, first.duplicates) == (3, 0), first
    repolled = [mtn("rf-1", "refund", "3000", "2026-12-04T10:05:00Z")]  # after a restart, five minutes on
    (again,) = ingest_files(settings, "BJ", [write(tmp_path, "b.ndjson", repolled)]).files
    assert (again.loaded, again.duplicates) == (0, 1), again
    with open_store(settings, "BJ", read_only=True) as con:
        assert sorted(row[1] for row in money_back(con, "sale-1")) == [-3_000, -2_000]


def test_a_refund_held_by_an_older_kanda_is_released_with_the_reference_its_reader_gives_now(settings, tmp_path):
    """A held row's parsed fields from before `event_ref` have none: its release derives it, as the store upgrade
    does, instead of quarantining a contract-valid sale and refund for a missing derived field."""
    make_files(settings, regions=["CM"], rows=50)
    newcomer = "CM-C0999"  # not onboarded yet: held
    lines = [
        flutterwave("charge.completed", 4_000, "2026-11-20T10:00:00.000Z").replace("CM-C0001", newcomer),
        flutterwave("refund.completed", 500, "2026-11-21T10:00:00.000Z").replace("CM-C0001", newcomer),
    ]
    (held,) = ingest_files(settings, "CM", [write(tmp_path, "held.ndjson", lines)]).files
    assert (held.loaded, held.quarantined) == (0, 2), held
    with open_store(settings, "CM") as con:  # as an older kanda left them
        for qid, parsed in con.execute("SELECT quarantine_id, parsed FROM quarantine").fetchall():
            fields = json.loads(parsed)
            del fields["event_ref"]
            con.execute("UPDATE quarantine SET parsed = ? WHERE quarantine_id = ?", [json.dumps(fields), qid])

    creators = settings.registry_dir / "creators.csv"
    extra = pl.read_csv(creators).filter(pl.col("region") == "CM").head(1).with_columns(creator_id=pl.lit(newcomer))
    pl.concat([pl.read_csv(creators), extra]).write_csv(creators)
    released = ingest_files(settings, "CM", []).released
    assert (released.loaded, released.quarantined) == (2, 0), released
    with open_store(settings, "CM", read_only=True) as con:
        assert money_back(con, str(CHARGE)) == [("refund", -500, -500, 29_920_920)]


def test_refunds_that_add_up_to_more_than_the_sale_are_flagged_by_verify(settings: Settings, tmp_path):
    """Each refund is valid on its own; together they exceed the payment. `kanda verify` warns and names it."""
    make_files(settings, regions=["CM"], rows=50)
    lines = [
        flutterwave("charge.completed", 10_000, "2026-11-20T10:00:00.000Z", fee=150),
        flutterwave("refund.completed", 6_000, "2026-11-21T10:00:00.000Z"),
        flutterwave("refund.completed", 6_000, "2026-11-22T10:00:00.000Z"),
    ]
    ingest_files(settings, "CM", [write(tmp_path, "webhooks.ndjson", lines)])
    publish_region(settings, "CM")
    (check,) = [r for r in verify(settings, ["CM"]) if r.name == "money_back_within_sale"]
    assert (check.passed, check.severity) == (False, "warn")
    assert check.metadata == {"payments": 1, "examples": [str(CHARGE)]}


GUMROAD_HEADER = (
    "Purchase ID,Item Name,Purchase Date,Purchase Time (UTC timezone),Sale Price (TZS),Fees (TZS),Net Total (TZS),"
    "Refunded?,Partial Refund (TZS),Fully Refunded?,Disputed?,Dispute Won?"
)


def gumroad_export(
    settings: Settings, folder: Path, name: str, *, disputed: str, won: str, totals: bool = False
) -> None:
    """A purchase of TZS 50,000.00 (fee 750.00) on 5 October 2026, as one export states it (with its Totals line:
    the same export saved otherwise)."""
    line = f"Dw1,[TZ-C0001.TZ-P00001] x,2026-10-05,10:00:00,50000.00,750.00,49250.00,0,0.00,0,{disputed},{won}"
    lines = [GUMROAD_HEADER, line, *(["Totals,,,,50000.00,750.00,49250.00,,,,,"] if totals else [])]
    (result,) = ingest_files(settings, "TZ", [write(folder, name, lines)]).files
    assert (result.status, result.quarantined) == ("loaded", 0), result


def tz_day(settings: Settings) -> dict:
    """What the central rollups and the payment's fact say of the purchase's day, after a publish."""
    publish_region(settings, "TZ")
    (day,) = run_query(
        settings,
        "SELECT reversals_minor, net_minor, reversal_rate FROM rollups.region_daily"
        " WHERE region = 'TZ' AND local_date = DATE '2026-10-05'",
    ).to_pylist()
    with open_store(settings, "TZ", read_only=True) as con:
        (state,) = con.execute("SELECT current_state FROM fct_sales WHERE transaction_id = 'Dw1'").fetchall()[0]
    return {**day, "state": state}


def test_a_dispute_the_seller_won_gives_back_the_reversal_an_earlier_export_took(settings: Settings, tmp_path):
    """An export shows the purchase disputed (the platform took the money), a later one shows the dispute won: the
    money came back, so the day's net is the sale's again, in every rollup, and stays so when the older export is
    read again late."""
    make_files(settings, regions=["TZ"], rows=20)
    gumroad_export(settings, tmp_path, "1.csv", disputed="1", won="0")
    lost = {"reversals_minor": 5_000_000, "net_minor": 4_925_000 - 5_000_000, "reversal_rate": 1.0}
    assert tz_day(settings) == {**lost, "state": "reversed"}

    gumroad_export(settings, tmp_path, "2.csv", disputed="1", won="1")
    won = {"reversals_minor": 0, "net_minor": 4_925_000, "reversal_rate": 0.0, "state": "success"}
    assert tz_day(settings) == won
    gumroad_export(settings, tmp_path, "3.csv", disputed="1", won="0", totals=True)  # the first export, read late
    assert tz_day(settings) == won
    with open_store(settings, "TZ", read_only=True) as con:
        kept = con.execute("SELECT event_type, status, amount_minor FROM sale_events ORDER BY event_type, status")
        assert kept.fetchall() == [("reversal", "failed", -5_000_000), ("reversal", "success", -5_000_000),
                                   ("sale", "success", 5_000_000)]  # fmt: skip
    assert not [r for r in verify(settings, ["TZ"]) if not r.passed and r.severity == "error"]
    # the creator's report of the day: the sale alone, the same net, and no "attempt" made of the dispute
    (report,) = region_reports(settings, "TZ", dt.date(2026, 10, 5), now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)).reports
    assert [(s.event_type, s.amount_minor) for s in report.sales] == [("sale", 5_000_000)]
    assert (report.day.net_minor, report.other_attempts) == (4_925_000, 0)


def test_a_dispute_won_before_any_export_showed_it_open_moves_no_money(settings: Settings, tmp_path):
    make_files(settings, regions=["TZ"], rows=20)
    gumroad_export(settings, tmp_path, "1.csv", disputed="1", won="1")
    assert tz_day(settings) == {"reversals_minor": 0, "net_minor": 4_925_000, "reversal_rate": 0.0, "state": "success"}


def test_a_reversal_attempt_that_failed_before_its_retry_leaves_the_retry_standing(settings: Settings, tmp_path):
    """JazzCash reports a REVERSAL that failed (response 199) and the retry that succeeded: the payment is reversed.
    Only a failed reversal at the reversal's own instant (a won dispute restating it) gives the money back."""
    make_files(settings, regions=["PK"], rows=20)
    sale = {
        "pp_Version": "1.1",
        "pp_TxnType": "MWALLET",
        "pp_TxnRefNo": "T00000001",
        "pp_Amount": "10000",
        "pp_TxnCurrency": "PKR",
        "pp_TxnDateTime": "20250605103000",
        "pp_BillReference": "PK-C0001.PK-P00001",
        "pp_ResponseCode": "000",
        "pp_ResponseMessage": "ok",
    }
    failed = sale | {"pp_TxnType": "REVERSAL", "pp_TxnDateTime": "20250605120000", "pp_ResponseCode": "199"}
    retried = sale | {"pp_TxnType": "REVERSAL", "pp_TxnDateTime": "20250605121000"}
    path = write(tmp_path, "ipn.jsonl", [json.dumps(d) for d in (sale, failed, retried)])
    (result,) = ingest_files(settings, "PK", [path]).files
    assert (result.loaded, result.quarantined) == (3, 0), result
    publish_region(settings, "PK")
    with open_store(settings, "PK", read_only=True) as con:
        state = con.execute("SELECT current_state, reversed_minor FROM fct_sales").fetchall()
        day = con.execute("SELECT gross_minor, reversals_minor, net_minor FROM creator_daily").fetchall()
    assert state == [("reversed", 10_000)] and day == [(10_000, 10_000, 0)]


STRIPE_DISPUTE_HEADER = (
    "id,Created date (UTC),Amount,Amount Refunded,Currency,Fee,Mode,Status,Disputed Amount,Dispute Status,"
    "kanda_ref (metadata)"
)


def stripe_dispute(settings: Settings, folder: Path, name: str, dispute_status: str) -> None:
    """Charge ch_d1 (EGP 500,00, fee 7,50, 5 October 2026) as Stripe's full export states it while disputed."""
    line = f"ch_d1,2026-10-05 10:00:00,500.00,0.00,egp,7.50,Live,Disputed,500.00,{dispute_status},EG-C0001.EG-P00001"
    (result,) = ingest_files(settings, "EG", [write(folder, name, [STRIPE_DISPUTE_HEADER, line])]).files
    assert (result.status, result.quarantined) == ("loaded", 0), result


def test_a_stripe_dispute_the_seller_won_gives_back_what_the_open_dispute_took(settings: Settings, tmp_path):
    """An export made while the dispute was open shows the money taken; a later one says the seller won: the day's
    net is the sale's again, as Stripe's balance is."""
    make_files(settings, regions=["EG"], rows=20)

    def eg_day() -> dict:
        publish_region(settings, "EG")
        (day,) = run_query(
            settings,
            "SELECT reversals_minor, net_minor FROM rollups.region_daily"
            " WHERE region = 'EG' AND local_date = DATE '2026-10-05'",
        ).to_pylist()
        return day

    stripe_dispute(settings, tmp_path, "1.csv", "under_review")
    assert eg_day() == {"reversals_minor": 50_000, "net_minor": 50_000 - 750 - 50_000}
    stripe_dispute(settings, tmp_path, "2.csv", "won")
    won = {"reversals_minor": 0, "net_minor": 50_000 - 750}
    assert eg_day() == won
    stripe_dispute(settings, tmp_path, "3.csv", "needs_response")  # an export from while it was open, read late
    assert eg_day() == won
    assert not [r for r in verify(settings, ["EG"]) if not r.passed and r.severity == "error"]
