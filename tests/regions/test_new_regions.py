"""The thirteen regions added on spec rails (issue 13, part 2b): each reads its generated files back as the truth,
zero-decimal money stays whole units, VNPAY's x100 amounts are the spec's declaration, the rails' hand-written
samples read as their comments say, `kanda regions check` changes nothing on disk, and the whole demo publishes
every region with `kanda verify` passing.

No Python was added for these regions: each is a region YAML naming a shipped `regions/rails/<rail>/spec.yaml`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from kanda.cli import app
from kanda.flow import run_region
from kanda.settings import Settings
from regions import all_regions, get_region
from regions.rails import get_adapter, spec_rail_path
from regions.spec.engine import SpecAdapter
from regions.spec.model import load_spec
from regions.synthetic.core import DirtMix, make_registry, truth_chunks
from regions.synthetic.generate import write_region_file
from regions.synthetic.writers import get_writer
from tests.support.files import make_files
from tests.support.roundtrip import assert_round_trip, quarantine_rules, read_all, side_by_side, through_contract
from tests.test_regions_cli import tree_digest

runner = CliRunner()
RAILS = Path(__file__).parents[2] / "regions" / "rails"

#: The regions this issue adds, and the shipped spec rail each names.
NEW_REGIONS = {
    "SN": "wave_checkout",
    "CI": "wave_checkout",
    "BF": "wave_checkout",
    "ML": "wave_checkout",
    "GM": "wave_checkout",
    "BJ": "mtn_momo_collection",
    "ZM": "mtn_momo_collection",
    "CM": "flutterwave",
    "MW": "flutterwave",
    "ET": "chapa",
    "IN": "razorpay_webhook",
    "VN": "vnpay_ipn",
    "ZA": "yoco",
}
ZERO_DECIMAL = [code for code in NEW_REGIONS if get_region(code).exponent == 0]
#: Rails that state a fee per event (the others send none, so kanda books 0).
WITH_FEE = {"flutterwave", "chapa", "razorpay_webhook"}
#: Rails with no form for a reversal (VNPAY sends no chargeback notice): their round trip has none.
NO_REVERSALS = {"vnpay_ipn"}


def test_twenty_regions_or_more_each_new_one_on_a_shipped_spec_rail() -> None:
    regions = all_regions()
    assert len(regions) >= 20
    for code, rail in NEW_REGIONS.items():
        region = regions[code]
        assert region.source_format == rail and region.rail_spec is None
        assert spec_rail_path(rail) is not None and not (RAILS / rail / "reader.py").exists()
        assert isinstance(get_adapter(rail), SpecAdapter)
    assert {"XOF", "XAF", "VND"} <= {regions[c].currency for c in ZERO_DECIMAL}


def test_every_spec_cites_its_sources_and_marks_what_is_verified() -> None:
    for rail in set(NEW_REGIONS.values()):
        text = (RAILS / rail / "spec.yaml").read_text()
        assert "[V]" in text and re.search(r"https://|[\w-]+/[\w.-]+ ", text), rail
        assert list((RAILS / rail / "samples").iterdir()), rail


# ------------------------------------------------------------------------------------------------- round trips
def _generated(code: str, tmp_path: Path, rows: int = 1200) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(truth, rows read back) for a generated file of `code` with three times the usual dirt."""
    region = get_region(code)
    dirt = DirtMix().scaled(3)
    if region.source_format in NO_REVERSALS:
        dirt = dataclasses.replace(dirt, reversal=0)
    truth = pl.concat(
        truth_chunks(region, make_registry(16), start=dt.date(2026, 3, 1), days=3, rows=rows, seed=16, dirt=dirt)
    )
    writer, extension = get_writer(region.source_format)
    path = tmp_path / f"{code.lower()}.{extension}"
    writer(path, iter([truth]), region, np.random.default_rng(7))
    frame, _ignored = read_all(get_adapter(region.source_format), path, region)
    return truth, frame


@pytest.mark.parametrize("code", list(NEW_REGIONS))
def test_generated_files_read_back_as_the_truth_to_the_minor_unit_and_local_day(code: str, tmp_path: Path) -> None:
    region = get_region(code)
    truth, frame = _generated(code, tmp_path)
    assert frame.height == truth.height and frame["source_row"].is_unique().all()
    both = side_by_side(truth, frame)
    compare = ["amount_minor", "event_type", "status", "creator_id", "product_id"]
    if region.source_format in WITH_FEE:
        compare.append("fee_minor")
    assert_round_trip(both, compare=compare)
    clean = both.filter(pl.col("corruption").is_null())
    local = pl.col("occurred_at").dt.convert_time_zone(region.zone).dt.date()
    got_local = pl.col("got_occurred_at").dt.convert_time_zone(region.zone).dt.date()
    assert clean.select((local == got_local).all()).item()
    # the file holds money going back and failed attempts, not only clean sales
    assert {"refund", "sale"} <= set(clean["got_event_type"]) and "failed" in set(clean["got_status"])


@pytest.mark.parametrize("code", ZERO_DECIMAL)
def test_zero_decimal_amounts_are_whole_units_never_x100_nor_hundredths(code: str, tmp_path: Path) -> None:
    region = get_region(code)
    truth, frame = _generated(code, tmp_path, rows=600)
    prices = set(make_registry(16).for_region(code).products["price_minor"].to_list())
    sales = side_by_side(truth, frame).filter(pl.col("corruption").is_null() & (pl.col("event_type") == "sale"))
    assert sales["got_amount_minor"].to_list() == sales["amount_minor"].to_list()
    assert set(sales["got_amount_minor"]) <= prices and min(prices) >= 1_000  # e.g. 5,000 francs is 5000, not 50
    # and the file says so in the rail's own unit: whole francs, or x100 where the spec declares it (VNPAY)
    text = next(tmp_path.glob(f"{code.lower()}.*")).read_text()
    price = sales["amount_minor"][0]
    scale = 100 if region.source_format == "vnpay_ipn" else 1
    assert f'"{price * scale}"' in text


def test_vnpay_x100_is_declared_by_the_spec_and_never_guessed(tmp_path: Path) -> None:
    region = get_region("VN")
    sample = RAILS / "vnpay_ipn" / "samples" / "ipn_vn.ndjson"
    spec = load_spec(RAILS / "vnpay_ipn" / "spec.yaml")
    assert spec.amount.unit == "minor_x100" and region.exponent == 0
    frame, _ = read_all(SpecAdapter(spec), sample, region)
    assert frame["amount_minor"].to_list() == [100_000, 100_000, None, 1_500_000, -100_000, -40_000, 100_000]
    # The same file under a spec that does not declare x100 reads the numbers as they stand: the data alone
    # never changes the unit, so a wrong declaration shows as 100x amounts, never as a silent guess.
    plain = spec.model_copy(update={"amount": spec.amount.model_copy(update={"unit": "minor"})})
    frame_plain, _ = read_all(SpecAdapter(plain), sample, region)
    assert frame_plain["amount_minor"].to_list() == [
        10_000_000,
        10_000_000,
        10_000_050,
        150_000_000,
        -10_000_000,
        -4_000_000,
        10_000_000,
    ]
    split = through_contract(frame, region)
    (reasons,) = split.quarantine.filter(pl.col("source_row") == 3)["reasons"].to_list()
    assert {r["column"] for r in json.loads(reasons)} == {"amount_minor"}  # 10000050 is not a multiple of 100
    # vnp_PayDate is Vietnam time: 2026-10-06 06:59:59 local is the 6th, although it is the 5th in UTC
    row = split.valid.filter(pl.col("source_row") == 4).row(0, named=True)
    assert row["occurred_at"] == dt.datetime(2026, 10, 5, 23, 59, 59, tzinfo=dt.UTC)
    assert row["occurred_at"].astimezone(region.tz).date() == dt.date(2026, 10, 6)


# ------------------------------------------------------------------------------------------------------ samples
#: rail sample -> (region, {line: (event_type, status, amount_minor, fee_minor)} loaded, {line: columns} quarantined,
#: ignored lines)
SAMPLES = {
    "wave_checkout/samples/webhooks_sn.ndjson": (
        "SN",
        {
            1: ("sale", "success", 1000, 0),
            2: ("sale", "success", 1000, 0),
            3: ("sale", "failed", 25000, 0),
            6: ("refund", "success", -1000, 0),
        },
        {5: {"amount_minor"}},  # "1000.50" XOF: a fraction of a franc is not money
        1,  # merchant.payment_received
    ),
    "mtn_momo_collection/samples/requesttopay_bj.ndjson": (
        "BJ",
        {
            1: ("sale", "success", 5000, 0),
            2: ("sale", "failed", 12000, 0),
            3: ("sale", "pending", 5000, 0),
            4: ("sale", "success", 5000, 0),
            6: ("refund", "success", -5000, 0),
        },
        {5: {"currency"}},  # a GHS result in Benin's feed
        0,
    ),
    "flutterwave/samples/webhooks_cm.ndjson": (
        "CM",
        {
            1: ("sale", "success", 5000, 175),
            3: ("sale", "failed", 3000, 0),
            5: ("sale", "success", 5000, 175),  # an older delivery: the reference under `meta`, not `meta_data`
            6: ("refund", "success", -5000, 0),  # repeats the charge's fee (175): booked on the sale only
        },
        {2: {"fee_minor"}},  # app_fee 437.5 XAF: a fraction of a franc is not money
        1,  # transfer.completed
    ),
    "chapa/samples/webhooks_et.ndjson": (
        "ET",
        {
            1: ("sale", "success", 125000, 4375),
            2: ("sale", "failed", 60000, 0),
            4: ("sale", "success", 125000, 4375),
            5: ("refund", "success", -125000, 0),  # repeats the charge's fee (43.75): booked on the sale only
        },
        {},
        2,  # transfer.success; a test-mode charge (`mode` test) moved no money
    ),
    "razorpay_webhook/samples/webhooks_in.ndjson": (
        "IN",
        {
            1: ("sale", "success", 49900, 1178),  # the payment entity's fee, GST included
            3: ("sale", "success", 10_000_000, 236000),
            4: ("sale", "failed", 49900, 0),  # "fee": null
            5: ("refund", "success", -49900, 0),  # repeats the payment entity's fee: not booked twice
            6: ("sale", "pending", 29900, 0),  # authorized, never captured
        },
        {},
        2,  # order.paid repeats payment.captured; the auto-refund of line 6 (`captured` false) moved no money
    ),
    "vnpay_ipn/samples/ipn_vn.ndjson": (
        "VN",
        {
            1: ("sale", "success", 100_000, 0),
            2: ("sale", "failed", 100_000, 0),
            4: ("sale", "success", 1_500_000, 0),
            5: ("refund", "success", -100_000, 0),
            6: ("refund", "pending", -40_000, 0),  # the refund API's answer: "05", VNPAY is processing it
        },
        {3: {"amount_minor"}, 7: {"status"}},  # 7: response code "07" (suspected fraud) beside status "00"
        0,
    ),
    "yoco/samples/webhooks_za.ndjson": (
        "ZA",
        {
            1: ("sale", "success", 15000, 0),
            2: ("sale", "success", 15000, 0),
            5: ("refund", "success", -15000, 0),
            6: ("sale", "success", 900, 0),  # Yoco's documented sample, moved to a late evening
        },
        {3: {"amount_minor"}},  # "150.00" where Yoco sends integer cents
        2,  # refund.failed; a test-mode payment (`payload.mode` test)
    ),
}


@pytest.mark.parametrize("sample", list(SAMPLES), ids=lambda s: s.split("/")[0])
def test_each_rails_sample_reads_as_its_spec_says(sample: str) -> None:
    code, loaded, quarantined, ignored_lines = SAMPLES[sample]
    region = get_region(code)
    frame, ignored = read_all(get_adapter(region.source_format), RAILS / sample, region)
    assert ignored == ignored_lines
    split = through_contract(frame, region)
    got = {
        r["source_row"]: (r["event_type"], r["status"], r["amount_minor"], r["fee_minor"])
        for r in split.valid.iter_rows(named=True)
    }
    assert got == loaded
    reasons = {
        r["source_row"]: {x["column"] for x in json.loads(r["reasons"])} for r in split.quarantine.iter_rows(named=True)
    }
    assert reasons == quarantined
    assert split.valid.filter(pl.col("event_type") == "sale")["transaction_id"].null_count() == 0


def test_a_yoco_sale_is_timed_by_its_event_and_lands_on_its_own_local_day() -> None:
    """Yoco's documented sample event is created two hours before the payment it reports: the payload's time is
    South African wall time marked `Z`. Read as UTC, a sale made at 22:30 in Johannesburg landed on the next day."""
    region = get_region("ZA")
    frame, _ = read_all(get_adapter(region.source_format), RAILS / "yoco/samples/webhooks_za.ndjson", region)
    late = through_contract(frame, region).valid.filter(pl.col("source_row") == 6).row(0, named=True)
    assert late["occurred_at"] == dt.datetime(2026, 10, 5, 20, 30, 1, 260284, tzinfo=dt.UTC)
    assert late["local_date"] == dt.date(2026, 10, 5)


@pytest.mark.parametrize(
    ("sample", "line"),
    [
        pytest.param("yoco/samples/webhooks_za.ndjson", 7, id="yoco"),
        pytest.param("chapa/samples/webhooks_et.ndjson", 6, id="chapa"),
        pytest.param("razorpay_webhook/samples/webhooks_in.ndjson", 7, id="razorpay-auto-refund"),
    ],
)
def test_a_document_that_moved_no_money_is_ignored_not_loaded(sample: str, line: int, tmp_path: Path) -> None:
    """A test-mode payment, or Razorpay's refund of a payment it never captured, reaches the receiver like any
    other document: loaded, the first was a sale and the second took the sale's amount off the creator's net. Each
    is counted as ignored; the same document marked live (or captured) is read as money."""
    code = SAMPLES[sample][0]
    region = get_region(code)
    adapter = get_adapter(region.source_format)
    document = (RAILS / sample).read_text().splitlines()[line - 1]
    path = tmp_path / Path(sample).name
    path.write_text(document + "\n")
    frame, ignored = read_all(adapter, path, region)
    assert (frame.height, ignored) == (0, 1)
    as_money = document.replace('"mode": "test"', '"mode": "live"').replace('"captured": false', '"captured": true')
    assert as_money != document
    path.write_text(as_money + "\n")
    frame, ignored = read_all(adapter, path, region)
    assert (frame.height, ignored) == (1, 0)


@pytest.mark.parametrize(
    ("sample", "negative"),
    [
        pytest.param("flutterwave/samples/webhooks_cm.ndjson", ('"amount": 5000', '"amount": -5000'), id="flutterwave"),
        pytest.param(
            "mtn_momo_collection/samples/requesttopay_bj.ndjson",
            ('"amount": "5000"', '"amount": "-5000"'),
            id="mtn_momo_collection",
        ),
    ],
)
def test_a_negative_sale_is_quarantined_never_loaded_as_positive(
    sample: str, negative: tuple[str, str], tmp_path: Path
) -> None:
    """A rail spec with the default sign rule: a sale written negative is the contract's to judge; taking its
    absolute value would load money that the file did not say was received."""
    code = SAMPLES[sample][0]
    region = get_region(code)
    first = (RAILS / sample).read_text().splitlines()[0]
    assert negative[0] in first
    path = tmp_path / Path(sample).name
    path.write_text(first.replace(negative[0], negative[1], 1) + "\n")
    split = through_contract(read_all(get_adapter(region.source_format), path, region)[0], region)
    assert split.valid.is_empty()
    assert ("amount_sign_matches_event_type", "amount_minor") in quarantine_rules(split, 1)


def _mtn_result(reference: str, status: str, polled_at: str, **extra: str) -> str:
    """One request-to-pay of order BJ-ORD-0009 (XOF 5,000) as our poller records MTN's status."""
    record = {
        "referenceId": reference,
        "kind": "requesttopay",
        "externalId": "BJ-ORD-0009",
        "amount": "5000",
        "currency": "XOF",
        "payer": {"partyIdType": "MSISDN", "partyId": "22997000009"},
        "payeeNote": "kanda BJ-C0001/BJ-P00001",
        "status": status,
        "polled_at": polled_at,
    }
    return json.dumps(record | extra)


@pytest.mark.parametrize(
    ("first_attempt_ends", "first_payment"),
    [
        pytest.param("FAILED", ("failed", None), id="expired-then-paid"),
        pytest.param("SUCCESSFUL", ("success", 5000), id="both-paid"),
    ],
)
def test_two_mtn_attempts_of_one_order_are_two_payments_and_a_refund_names_its_own(
    first_attempt_ends: str, first_payment: tuple[str, int | None], settings: Settings
) -> None:
    """MTN's externalId is not unique: our checkout reuses the order id when a customer retries a push. Keyed by it,
    the first attempt's late FAILED (its prompt expired after the retry was paid) became the order's latest status,
    so the paid sale showed as failed; and a second paid attempt was dropped as a duplicate of the first. Each
    request is a payment of its own (its referenceId), and the refund of the retry names that request."""
    from kanda.flow import build
    from kanda.regional.ingest import ingest_files
    from kanda.regional.store import open_store

    make_files(settings, regions=["BJ"], rows=50)
    lines = [
        _mtn_result("attempt-1", "PENDING", "2026-10-05T09:00:00Z"),
        _mtn_result("attempt-2", "SUCCESSFUL", "2026-10-05T09:02:00Z"),
        _mtn_result("attempt-1", first_attempt_ends, "2026-10-05T09:06:00Z"),
        _mtn_result(
            "refund-1", "SUCCESSFUL", "2026-10-05T11:00:00Z", kind="refund", referenceIdToRefund="attempt-2"
        ).replace('"5000"', '"2000"'),
        _mtn_result("refund-2", "SUCCESSFUL", "2026-10-05T12:00:00Z", kind="refund"),  # names no request
    ]
    path = settings.home / "results.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    (report,) = ingest_files(settings, "BJ", [path]).files
    assert (report.loaded, report.quarantined, report.duplicates) == (4, 1, 0), report
    build(settings, "BJ")
    with open_store(settings, "BJ", read_only=True) as con:
        payments = con.execute(
            "SELECT transaction_id, current_state, gross_minor, refunded_minor FROM fct_sales ORDER BY transaction_id"
        ).fetchall()
        (orphan,) = con.execute("SELECT source_row, reasons FROM quarantine").fetchall()
    assert payments == [("attempt-1", *first_payment, 0), ("attempt-2", "partially_refunded", 5000, 2000)]
    assert orphan[0] == 5 and {r["column"] for r in json.loads(orphan[1])} == {"transaction_id"}


def test_a_time_far_out_of_range_is_quarantined_and_the_rest_of_the_file_loads(settings: Settings) -> None:
    """Milliseconds sent as seconds reach year 58,900, and 2^58 + an epoch second wrapped to that very day when
    scaled to microseconds: the first used to fail the whole file with an OverflowError, the second loaded as a
    plausible sale. Each is one quarantined row now, beside the webhooks that load."""
    from kanda.regional.ingest import ingest_files
    from kanda.regional.store import open_store

    lines = (RAILS / "razorpay_webhook/samples/webhooks_in.ndjson").read_text().splitlines()
    captured = next(line for line in lines if '"payment.captured"' in line)
    first, second, third = (json.loads(captured) for _ in range(3))
    good = first["created_at"]  # the envelope's: when Razorpay sent it
    for event, number, created_at in ((second, 2, good * 1000), (third, 3, 2**58 + good)):
        event["payload"]["payment"]["entity"]["id"] += f"x{number}"
        event["created_at"] = created_at
    make_files(settings, regions=["IN"], rows=50)  # the creator registry: the sample's creator is known
    path = settings.home / "webhooks.ndjson"
    path.write_text("".join(json.dumps(event) + "\n" for event in (first, second, third)))
    (report,) = ingest_files(settings, "IN", [path]).files
    assert report.status == "loaded", report
    assert (report.loaded, report.quarantined) == (1, 2), report
    with open_store(settings, "IN", read_only=True) as con:
        rules = con.execute("SELECT source_row, reasons FROM quarantine ORDER BY source_row").fetchall()
    assert [(row, json.loads(reasons)[0]["rule"]) for row, reasons in rules] == [
        (2, "missing_or_unreadable"),
        (3, "missing_or_unreadable"),
    ]


def _razorpay(line: int, **envelope: object) -> dict:
    """A document of the Razorpay sample (1-based line), its envelope's keys replaced by `envelope`."""
    text = (RAILS / "razorpay_webhook/samples/webhooks_in.ndjson").read_text().splitlines()[line - 1]
    return json.loads(text) | envelope


def _razorpay_refund(refund_id: str, amount: int, created_at: int, event: str = "refund.processed") -> dict:
    """A refund of the sample's netbanking payment (line 3, INR 100,000.00) in the shape of Razorpay's refunds."""
    payment = _razorpay(3)["payload"]["payment"]["entity"]
    document = _razorpay(5, event=event, created_at=created_at)
    document["payload"]["payment"]["entity"] = payment | {"status": "captured", "refund_status": "partial"}
    refund = document["payload"]["refund"]["entity"]
    refund.update(id=refund_id, amount=amount, payment_id=payment["id"], created_at=created_at)
    return document


def test_two_razorpay_refunds_of_one_amount_within_a_minute_are_two_refunds(settings: Settings) -> None:
    """Razorpay refunds a payment in parts, each refund an entity with its own id. Told apart by their minute, two
    refunds of INR 25,000 sent within one minute were one refund and a duplicate: the second refund's money never
    left the creator's net. Each id is a refund of its own now, and a refund delivered again is still a duplicate."""
    from kanda.flow import build
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    sale = _razorpay(3)
    at = sale["created_at"] + 86_400
    first, second = (
        _razorpay_refund("rfnd_PART00000001", 2_500_000, at),
        _razorpay_refund("rfnd_PART00000002", 2_500_000, at + 20),
    )
    documents = [sale, first, second, first]  # the first refund delivered again
    content = "".join(json.dumps(d) + "\n" for d in documents)
    report = ingest_written(settings, "IN", settings.home / "webhooks.ndjson", content)
    assert (report.loaded, report.duplicates, report.quarantined) == (3, 1, 0), report
    build(settings, "IN")
    with open_store(settings, "IN", read_only=True) as con:
        payment = con.execute(
            "SELECT gross_minor, refunded_minor, current_state FROM fct_sales WHERE transaction_id = ?",
            [sale["payload"]["payment"]["entity"]["id"]],
        ).fetchall()
        refunds = con.execute("SELECT sum(refunds_minor) FROM region_daily").fetchall()
    assert payment == [(10_000_000, 5_000_000, "partially_refunded")]
    assert refunds == [(5_000_000,)]


def test_razorpay_events_that_move_no_money_are_ignored_not_quarantined(settings: Settings) -> None:
    """A failed refund, a refund's changed speed and a dispute still open, won or closed move no money. Unknown
    words to the spec, each was quarantined for its event: noise a steward had to clear, and a failed refund
    approved there would have taken money the creator still has. They are counted as ignored; the sale stands."""
    from tests.support.files import ingest_written

    sale = _razorpay(3)
    at = sale["created_at"] + 3_600
    refunds = [
        _razorpay_refund("rfnd_FAIL00000001", 2_500_000, at, event)
        for event in ("refund.failed", "refund.speed_changed")
    ]
    payment, disputes = sale["payload"]["payment"]["entity"]["id"], []
    for number, state in enumerate(("created", "under_review", "action_required", "won", "closed"), start=1):
        dispute = {"id": f"disp_OPEN0000000{number}", "entity": "dispute", "payment_id": payment, "amount": 10_000_000,
                   "currency": "INR", "amount_deducted": 0, "status": state, "phase": "chargeback"}  # fmt: skip
        document = _razorpay(
            3, event=f"payment.dispute.{state}", contains=["payment", "dispute"], created_at=at + number
        )
        document["payload"]["dispute"] = {"entity": dispute}
        disputes.append(document)
    content = "".join(json.dumps(d) + "\n" for d in [sale, *refunds, *disputes])
    report = ingest_written(settings, "IN", settings.home / "webhooks.ndjson", content)
    assert (report.loaded, report.quarantined, report.ignored) == (1, 0, 7), report


def test_a_razorpay_payment_without_notes_is_quarantined_and_the_log_loads(settings: Settings) -> None:
    """Razorpay writes a payment without notes as `"notes": []` (an empty array, not an object): a payment link or
    another integration on the same account. Read as an object, that one line made the whole log unreadable and
    every sale in it was refused; the payment is now quarantined for its missing creator and product."""
    from kanda.regional.store import open_store
    from tests.support.files import ingest_written

    sale, foreign = _razorpay(3), _razorpay(3, created_at=_razorpay(3)["created_at"] + 60)
    entity = foreign["payload"]["payment"]["entity"]
    entity.update(id="pay_FOREIGN0000001", notes=[])
    content = "".join(json.dumps(d) + "\n" for d in [sale, foreign])
    report = ingest_written(settings, "IN", settings.home / "webhooks.ndjson", content)
    assert (report.status, report.loaded, report.quarantined) == ("loaded", 1, 1), report
    with open_store(settings, "IN", read_only=True) as con:
        (reasons,) = con.execute("SELECT reasons FROM quarantine").fetchall()[0]
    assert {r["column"] for r in json.loads(reasons)} >= {"creator_id", "product_id"}


# ------------------------------------------------------------------------------------------------------ dry run
@pytest.mark.parametrize("code", list(NEW_REGIONS))
def test_regions_check_is_a_dry_run_that_changes_nothing(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh"
    monkeypatch.setenv("KANDA_HOME", str(home))
    monkeypatch.delenv("KANDA_BUYER_SALT", raising=False)
    incoming = tmp_path / "incoming"
    generated = write_region_file(
        get_region(code),
        make_registry(3),
        incoming,
        start=dt.date(2026, 10, 1),
        days=2,
        rows=300,
        seed=3,
        dirt=DirtMix(),
    )
    before = tree_digest(incoming)
    result = runner.invoke(app, ["regions", "check", code, str(generated.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["load"] > 250  # most rows would load; the dirt is quarantined, held or duplicate
    assert tree_digest(incoming) == before
    assert not home.exists()  # not even the buyer salt of a fresh installation


def test_regions_check_beside_a_published_region_touches_neither_store_nor_catalog(
    settings: Settings, tmp_path: Path
) -> None:
    make_files(settings, regions=["VN"], rows=300)
    run = run_region(settings, "VN")
    assert run.publish is not None and run.publish.published
    sample = tmp_path / "incoming" / "ipn_vn.ndjson"
    sample.parent.mkdir()
    sample.write_bytes((RAILS / "vnpay_ipn" / "samples" / "ipn_vn.ndjson").read_bytes())
    before = tree_digest(settings.home, sample.parent)
    result = runner.invoke(app, ["regions", "check", "VN", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["quarantine"] == 2 and report["counts"]["load"] + report["counts"]["hold"] == 5
    assert tree_digest(settings.home, sample.parent) == before


# ------------------------------------------------------------------------------------------------------ reports
#: region -> (the report's region, currency, exponent, locale, language, zone), its subject's start, its greeting and
#: top-products heading, and how 12,500 of its currency reads (CLDR versions differ in the spaces they use).
REPORTS = {
    "SN": (
        ("SN", "XOF", 0, "fr_SN", "fr", "Africa/Dakar"),
        "Vos ventes du 12 oct. 2026",
        ("Bonjour Amani Mushi", "Meilleurs produits"),
        ("12\u202f500\xa0F\u202fCFA", "12\u202f500 F CFA", "12 500 F CFA"),  # francs CFA have no minor unit
    ),
    "VN": (
        ("VN", "VND", 0, "vi_VN", "vi", "Asia/Ho_Chi_Minh"),
        "Doanh số của bạn ngày 12 thg 10, 2026",
        ("Xin chào Amani Mushi", "Sản phẩm bán chạy nhất"),
        ("12.500\xa0₫", "12.500 ₫"),  # dong have no minor unit: 12,500 dong, not 125.00
    ),
    "ET": (
        ("ET", "ETB", 2, "am_ET", "am", "Africa/Addis_Ababa"),
        "የ12 ኦክቶ 2026 ሽያጭዎ",
        ("ሰላም Amani Mushi", "በብዛት የተሸጡ ምርቶች"),
        ("ብር12,500.00",),  # birr and santim: two decimals
    ),
}


@pytest.mark.parametrize("code", list(REPORTS))
def test_a_creator_gets_the_report_in_the_regions_language_and_money(code: str) -> None:
    from tests.reports.test_render_message import bodies, make_report, received

    region, subject, words, money = REPORTS[code]
    language = region[4]
    assert get_region(code).language == language  # the region's default, used when the registry names none
    message = received(make_report(region))
    text, html = bodies(message)
    assert message["Content-Language"] == language
    assert message["Subject"].startswith(subject)
    for body in (text, html):
        assert all(word in body for word in words)
        assert any(amount in body for amount in money)
        assert "Hello" not in body


# The demo over every region (20+), published and verified, is tests/test_cli.py's end-to-end demo test.
