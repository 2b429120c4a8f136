"""Incremental builds give exactly what a full rebuild gives, whatever arrives in whatever order.

Random sequences of batches go through the real writers into a real KE store: new sales (some held for an unknown
creator, some quarantined), redeliveries, late refunds, reversals and status changes on earlier days, onboarding a
held creator (release), a steward's fix that moves a row to another day, and publishes (which clear the dirty days
the build relies on). After every step the store is built incrementally, and every model table must equal, as a
sorted frame, what a full rebuild of the same store makes. At the end the central tables must hold exactly the
store's rollups: publishing from incremental builds sent every day a change touched (a build finds the days a late
event restates through int_payment_days, and marks them for the publish).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import warehouse_models
from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.regional.batch import StagedBatch
from kanda.regional.ingest import release_held
from kanda.regional.models import ensure_built, run_models
from kanda.regional.store import open_store
from kanda.review.reprocess import _load_fixes
from kanda.settings import Settings, load_settings
from quality.boundary import canonicalise
from tests.support.builders import KE, adapter_rows

START = dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.UTC)  # 09:00 in Nairobi
KNOWN = ("KE-C0001", "KE-C0002")
LATE_CREATOR = "KE-C0009"  # held until onboarded
TABLES = [m.name for m in warehouse_models.models() if m.materialized != "view"]

sale = st.fixed_dictionaries(
    {
        "day": st.integers(0, 6),
        "hour": st.integers(0, 23),  # late hours cross into the next local day
        "status": st.sampled_from(["success", "success", "failed", "pending"]),
        "creator": st.sampled_from([*KNOWN, LATE_CREATOR]),
        "product": st.integers(1, 2),
        "channel": st.sampled_from(["mpesa", "card", None]),
        "amount": st.integers(1, 50).map(lambda x: x * 1_000),
        "bad": st.sampled_from([None, None, "negative", "no_time"]),
    }
)
late = st.fixed_dictionaries(
    {
        "payment": st.integers(0, 1_000),  # index into the payments so far
        "kind": st.sampled_from(["refund", "partial_refund", "reversal", "chargeback", "succeeded", "failed"]),
        "days_later": st.integers(-2, 5),  # a status change can be dated before the sale it changes
    }
)
step = st.fixed_dictionaries(
    {
        "sales": st.lists(sale, max_size=3),
        "late": st.lists(late, max_size=2),
        "redeliver": st.booleans(),
        # then: a steward's fix, onboarding the held creator, or a publish, each followed by its own build; or the
        # batch is built by a full rebuild, which must mark the days a late event restated as an incremental one does
        "then": st.sampled_from([None, "fix", "onboard", "publish", "full_refresh"]),
        "fix_day": st.integers(0, 6),
    }
)


class Story:
    """The payments sent so far, so that later steps can refund, reverse or redeliver them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.payments: list[dict] = []  # the first event sent of each payment
        self.sent: list[dict] = []  # every event sent
        self.batches = 0

    def send(self, con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
        """One batch through the ingestion writer: contract, holds, quarantine, duplicates, dirty days, ledger."""
        self.batches += 1
        batch_id = f"KE-test-{self.batches:04d}"
        frame = canonicalise(adapter_rows(rows), KE, source="mpesa", source_file=f"{batch_id}.csv", batch_id=batch_id)
        known = con.sql("SELECT creator_id FROM creators WHERE region = 'KE'").pl()["creator_id"]
        batch = StagedBatch(self.settings.home, KE, batch_id, known)
        batch.add(frame)
        batch.commit(con, kind="file", file_name=f"{batch_id}.csv", content_hash=uuid.uuid4().hex)
        self.sent.extend(rows)

    def batch(self, con: duckdb.DuckDBPyConnection, sales: list[dict], late: list[dict], redeliver: bool) -> None:
        """One file's worth: new sales, late events of earlier payments, and maybe an event sent before."""
        rows = self.late_rows(late) + self.sale_rows(sales)
        if redeliver and self.sent:
            rows.append(dict(self.sent[len(self.sent) // 2]))  # an event the store has (or quarantined) again
        if rows:
            self.send(con, rows)

    def sales(self, con: duckdb.DuckDBPyConnection, sales: list[dict]) -> None:
        self.send(con, self.sale_rows(sales))

    def sale_rows(self, sales: list[dict]) -> list[dict]:
        rows = []
        for s in sales:
            tid = f"QK{len(self.payments):04d}"
            when = START + dt.timedelta(days=s["day"], hours=s["hour"])
            row = {
                "transaction_id": tid,
                "status": s["status"],
                "creator_id": s["creator"],
                "product_id": f"KE-P{int(s['creator'][-4:]):03d}{s['product']:02d}",
                "channel": s["channel"],
                "amount_minor": -s["amount"] if s["bad"] == "negative" else s["amount"],
                "fee_minor": 0 if s["status"] != "success" else s["amount"] // 50,
                "occurred_at": None if s["bad"] == "no_time" else when,
            }
            rows.append(row)
            self.payments.append({**row, "amount_minor": s["amount"], "occurred_at": when})
        return rows

    def late_rows(self, events: list[dict]) -> list[dict]:
        if not self.payments:
            return []
        rows = []
        for e in events:
            paid = self.payments[e["payment"] % len(self.payments)]
            when = paid["occurred_at"] + dt.timedelta(days=e["days_later"], minutes=7)
            base = {k: paid[k] for k in ("transaction_id", "creator_id", "product_id", "channel")}
            amount = paid["amount_minor"]
            if e["kind"] in ("succeeded", "failed"):
                status = "success" if e["kind"] == "succeeded" else "failed"
                fee = amount // 50 if status == "success" else 0
                rows.append({**base, "status": status, "amount_minor": amount, "fee_minor": fee, "occurred_at": when})
            else:
                kind = "refund" if e["kind"] == "partial_refund" else e["kind"]
                back = amount // 2 if e["kind"] == "partial_refund" else amount
                rows.append({**base, "event_type": kind, "amount_minor": -back, "fee_minor": 0, "occurred_at": when})
        return rows

    def onboard(self, con: duckdb.DuckDBPyConnection) -> None:
        """The held creator arrives in the registry; their held rows are released as a batch."""
        con.execute(
            "INSERT INTO creators (creator_id, region) SELECT ?, 'KE'"
            " WHERE NOT EXISTS (SELECT 1 FROM creators WHERE creator_id = ?)",
            [LATE_CREATOR, LATE_CREATOR],
        )
        release_held(con, self.settings, KE)

    def fix(self, con: duckdb.DuckDBPyConnection, day: int) -> None:
        """A steward fixes the oldest open or held quarantine row: a known creator, a positive amount, and a time on
        `day` (moving the row to another day)."""
        found = con.execute(
            "SELECT quarantine_id, parsed, status, source_file, source_row FROM quarantine"
            " WHERE status IN ('open', 'held') ORDER BY quarantine_id LIMIT 1"
        ).fetchall()
        if not found:
            return
        qid, parsed, status, source_file, source_row = found[0]
        parsed = json.loads(parsed)
        edits = {
            "creator_id": KNOWN[1],
            "product_id": "KE-P00201",
            "amount_minor": str(abs(parsed.get("amount_minor") or 1_000)),
            "occurred_at": (START + dt.timedelta(days=day, hours=3)).isoformat(),
        }
        row = {
            "quarantine_id": qid,
            "parsed": parsed,
            "edits": edits,
            "status": status,
            "source_file": source_file,
            "source_row": source_row,
        }
        _load_fixes(con, self.settings, "KE", [row])


def model_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    return {name: con.sql(f"SELECT * FROM {name}").pl() for name in TABLES}


def full_rebuild(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """What a full build makes of the store as it is, without keeping it (rolled back)."""
    con.execute("BEGIN TRANSACTION")
    try:
        run_models(con)
        return model_tables(con)
    finally:
        con.execute("ROLLBACK")


def assert_same_rows(got: pl.DataFrame, expected: pl.DataFrame, context: str) -> None:
    try:
        assert_frame_equal(got.sort(got.columns), expected.sort(expected.columns), check_exact=True)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}") from None


def assert_same_tables(got: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame], context: str) -> None:
    for name in TABLES:
        assert_same_rows(got[name], expected[name], f"{name} {context}")


def fresh_settings(root: Path) -> Settings:
    settings = load_settings(root / "home")
    settings.ensure_dirs()
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
    return settings


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANDA_BUYER_SALT", "test-salt")
    monkeypatch.delenv("KANDA_CATALOG_URL", raising=False)
    monkeypatch.delenv("KANDA_WAREHOUSE", raising=False)


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=5))
def test_incremental_builds_equal_a_full_rebuild_after_every_batch(steps: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as root:
        settings = fresh_settings(Path(root))
        story = Story(settings)
        with open_store(settings, "KE") as con:  # some published history, so that most builds are incremental
            story.sales(con, [{**base_sale(), "day": d, "hour": 3 * d} for d in range(7)])
        publish_region(settings, "KE")

        def build_and_compare(context: str, *, full_refresh: bool = False) -> None:
            with open_store(settings, "KE") as con:
                result = ensure_built(con, full_refresh=full_refresh)
                event("full build" if result.full else "incremental build")
                assert_same_tables(model_tables(con), full_rebuild(con), context)

        for i, s in enumerate(steps):
            with open_store(settings, "KE") as con:
                story.batch(con, s["sales"], s["late"], s["redeliver"])
            build_and_compare(f"after batch {i}", full_refresh=s["then"] == "full_refresh")
            if s["then"] == "publish":
                publish_region(settings, "KE")
            elif s["then"] in ("fix", "onboard"):
                with open_store(settings, "KE") as con:
                    story.fix(con, s["fix_day"]) if s["then"] == "fix" else story.onboard(con)
                build_and_compare(f"after {s['then']} {i}")
        publish_region(settings, "KE")
        with open_store(settings, "KE", read_only=True) as con:
            for kind, count in con.execute("SELECT kind, count(*) FROM ledger GROUP BY ALL").fetchall():
                event(f"{kind} batches: {min(count, 3)}{'+' if count >= 3 else ''}")
            late_events = con.execute("SELECT count(*) FROM sale_events WHERE event_type <> 'sale'").fetchall()[0][0]
            event(f"late money back loaded: {bool(late_events)}")
            local = {name: con.sql(f"SELECT * FROM {name}").pl() for name in warehouse_models.published()}
        for name, frame in local.items():
            central = pl.from_arrow(run_query(settings, f"SELECT * FROM rollups.{name} WHERE region = 'KE'"))
            assert_same_rows(central.select(frame.columns).cast(frame.schema), frame, f"central {name}")


def test_an_incremental_build_rebuilds_only_the_days_a_late_refund_restates(settings: Settings) -> None:
    """A refund today for a sale a week ago rebuilds today and that sale's day, not the days in between."""
    story = Story(settings)
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(
            con,
            [{**base_sale(), "day": d} for d in range(7)],
        )
        first = ensure_built(con)
    publish_region(settings, "KE")  # clears the dirty days
    with open_store(settings, "KE") as con:
        story.send(con, story.late_rows([{"payment": 0, "kind": "refund", "days_later": 6}]))
        second = ensure_built(con)
        state = con.execute("SELECT current_state FROM fct_sales WHERE transaction_id = 'QK0000'").fetchall()
        refunds = con.execute("SELECT refunds_minor FROM region_daily WHERE local_date = '2026-10-07'").fetchall()
    assert first.full and not second.full
    assert second.days == 2  # the refund's day and the sale's day
    assert state == [("refunded",)]
    assert refunds == [(10_000,)]


def test_a_full_refresh_that_first_sees_a_late_refund_still_publishes_the_sale_day(settings: Settings) -> None:
    story = Story(settings)
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(con, [{**base_sale(), "day": d} for d in range(7)])
    publish_region(settings, "KE")
    with open_store(settings, "KE") as con:
        story.send(con, story.late_rows([{"payment": 0, "kind": "refund", "days_later": 6}]))
        assert ensure_built(con, full_refresh=True).full
    assert published_days(settings) == [day(0), day(6)]
    assert_central_equals_store(settings)


def published_days(settings: Settings) -> list[dt.date]:
    """Publish KE; the local days the publish sent."""
    return sorted(publish_region(settings, "KE").days)


def assert_central_equals_store(settings: Settings) -> None:
    with open_store(settings, "KE", read_only=True) as con:
        local = {name: con.sql(f"SELECT * FROM {name}").pl() for name in warehouse_models.published()}
    for name, frame in local.items():
        central = pl.from_arrow(run_query(settings, f"SELECT * FROM rollups.{name} WHERE region = 'KE'"))
        assert_same_rows(central.select(frame.columns).cast(frame.schema), frame, f"central {name}")


def day(n: int) -> dt.date:
    """The local day (Nairobi) of a story's day n at its usual hours."""
    return (START + dt.timedelta(days=n, hours=3)).date()


def test_a_late_event_on_a_payment_of_many_days_restates_every_day_of_it_and_no_other(settings: Settings) -> None:
    """A payment pending on day 0, succeeded on day 2 and partly refunded on day 5, charged back six weeks later:
    the build rebuilds the chargeback's day and the payment's three earlier days, among 45 days of published
    history, and the publish sends those four days; the tables equal a full rebuild, the central ones the store's,
    and the views read every day again."""
    story = Story(settings)
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(con, [{**base_sale(), "day": d} for d in range(45)])
        story.sales(con, [{**base_sale(), "status": "pending"}])  # QK0045, day 0
        story.send(con, story.late_rows([{"payment": 45, "kind": "succeeded", "days_later": 2}]))
        story.send(con, story.late_rows([{"payment": 45, "kind": "partial_refund", "days_later": 5}]))
    publish_region(settings, "KE")
    with open_store(settings, "KE") as con:
        story.send(con, story.late_rows([{"payment": 45, "kind": "chargeback", "days_later": 44}]))
        result = ensure_built(con)
        state = con.execute("SELECT current_state FROM fct_sales WHERE transaction_id = 'QK0045'").fetchall()
        assert_same_tables(model_tables(con), full_rebuild(con), "after the chargeback")
        # a view restricted to the build's days while it ran is whole again afterwards
        converted = con.execute("SELECT count(*) FROM int_usd_amounts").fetchall()[0][0]
    assert converted == 49  # every event: 46 sales, the success, the partial refund and the chargeback
    assert not result.full and result.days == 4
    assert state == [("reversed",)]
    assert published_days(settings) == [day(0), day(2), day(5), day(44)]
    assert_central_equals_store(settings)


def test_late_events_on_many_scattered_days_and_a_write_outside_the_ledger_are_restated(settings: Settings) -> None:
    """Refunds, in one batch, of sales on eleven days two days apart (more runs of days than a day filter has
    ranges), and a refund of a sale of that day written straight into the store without a ledger row (as a repair
    script might): each refunded sale's day is rebuilt and published, the days between are not, and the tables
    equal a full rebuild."""
    story = Story(settings)
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(con, [{**base_sale(), "day": d} for d in range(24)])  # QK00dd on day dd
    publish_region(settings, "KE")
    with open_store(settings, "KE") as con:
        refunds = [{"payment": d, "kind": "refund", "days_later": 22 - d} for d in range(0, 22, 2)]
        story.send(con, story.late_rows(refunds))
        con.execute(  # QK0022's refund, on its own day 22, by no batch of the ledger
            "INSERT INTO sale_events BY NAME SELECT * EXCLUDE (event_id) REPLACE ("
            " 'refund' AS event_type, 'KE-repair' AS batch_id, -amount_minor AS amount_minor, 0 AS fee_minor,"
            " -amount_minor AS net_minor, occurred_at + INTERVAL 2 HOUR AS occurred_at)"
            " FROM sale_events WHERE transaction_id = 'QK0022'"
        )
        result = ensure_built(con)
        assert_same_tables(model_tables(con), full_rebuild(con), "after the refunds")
        refunded = con.execute("SELECT count(*) FROM fct_sales WHERE current_state = 'refunded'").fetchall()[0][0]
    assert not result.full and result.days == 12  # the refunds' day 22 and the eleven refunded sales' days
    assert refunded == 12
    assert published_days(settings) == [day(d) for d in range(0, 24, 2)]
    assert_central_equals_store(settings)


def test_an_event_deleted_by_hand_from_a_changed_day_makes_the_next_build_a_full_one(settings: Settings) -> None:
    """No writer deletes an event, but a repair by hand may: the restatement by new batches cannot see what it
    changed, so the build is a full one and every table equals a full rebuild again."""
    story = Story(settings)
    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(con, [{**base_sale(), "day": d} for d in range(4)])
        story.send(con, story.late_rows([{"payment": 0, "kind": "refund", "days_later": 2}]))  # on day 2
    publish_region(settings, "KE")
    with open_store(settings, "KE") as con:
        story.sales(con, [{**base_sale(), "day": 2}])  # a batch on day 2 (the day is changed)
        con.execute("DELETE FROM sale_events WHERE transaction_id = 'QK0000' AND event_type = 'refund'")
        result = ensure_built(con)
        assert_same_tables(model_tables(con), full_rebuild(con), "after the deletion")
        state = con.execute("SELECT current_state FROM fct_sales WHERE transaction_id = 'QK0000'").fetchall()
    assert result.full
    assert state == [("success",)]


def test_full_refresh_and_a_changed_model_rebuild_everything(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    story = Story(settings)

    def one_more_sale_then_build(**kwargs: bool) -> bool:
        with open_store(settings, "KE") as con:
            story.sales(con, [base_sale()])
            full = ensure_built(con, **kwargs).full
        publish_region(settings, "KE")
        return full

    with open_store(settings, "KE") as con:
        con.executemany("INSERT INTO creators (creator_id, region) VALUES (?, 'KE')", [[c] for c in KNOWN])
        story.sales(con, [{**base_sale(), "day": d} for d in range(3)])
        assert ensure_built(con).full  # the first build
    publish_region(settings, "KE")
    assert not one_more_sale_then_build()
    assert one_more_sale_then_build(full_refresh=True)
    monkeypatch.setattr(warehouse_models, "fingerprint", lambda: "another-model")
    assert one_more_sale_then_build()
    assert not one_more_sale_then_build()


def base_sale() -> dict:
    return {
        "day": 0,
        "hour": 2,
        "status": "success",
        "creator": KNOWN[0],
        "product": 1,
        "channel": "mpesa",
        "amount": 10_000,
        "bad": None,
    }
