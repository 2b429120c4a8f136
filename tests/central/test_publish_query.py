"""The central layer: atomic per-region publishes of changed days, no PII, read-only queries, reconciliation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pytest

import kanda.central.publish
from kanda.central.catalog import PUBLICATIONS_SCHEMA, latest_publication, open_catalog, read_published
from kanda.central.publish import publish_region
from kanda.central.query import QueryRefused, run_query
from kanda.checks import store_checks as checks
from kanda.checks.verify import verify
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.regional.store import open_store
from kanda.settings import Settings, load_settings
from regions import get_region
from tests.support.files import START, make_files
from warehouse_models import PUBLISHED

REGIONS = ["EG", "KE", "NG"]


def publish_all(settings: Settings) -> Settings:
    make_files(settings, regions=REGIONS, rows=600, days=3)
    for code in REGIONS:
        ingest_landing(settings, code)
        publish_region(settings, code)
    return settings


@pytest.fixture
def published(settings: Settings) -> Settings:
    """A fresh installation with three regions published (tests that change it get their own)."""
    return publish_all(settings)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One published installation shared by the read-only tests of this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANDA_HOME", str(tmp_path_factory.mktemp("shared") / "home"))
        mp.setenv("KANDA_BUYER_SALT", "test-salt")
        mp.setenv("KANDA_BATCH_ROWS", "400")
        mp.delenv("KANDA_CATALOG_URL", raising=False)
        mp.delenv("KANDA_WAREHOUSE", raising=False)
        yield publish_all(load_settings())


def test_central_totals_equal_regional_totals_to_the_minor_unit(shared: Settings):
    published = shared
    central = {
        r["region"]: (r["net"], r["usd"])
        for r in run_query(
            published,
            "select region, sum(net_minor) as net, sum(net_usd_minor) as usd from rollups.creator_daily group by 1",
        ).to_pylist()
    }
    assert set(central) == set(REGIONS)
    for code in REGIONS:
        with open_store(published, code, read_only=True) as con:
            regional = con.execute("SELECT sum(net_minor), sum(net_usd_minor) FROM creator_daily").fetchall()[0]
            events = con.execute("SELECT sum(net_minor) FROM sale_events WHERE status = 'success'").fetchall()[0][0]
        assert central[code] == tuple(regional)
        assert central[code][0] == events
    results = verify(published)
    assert results and all(r.passed or r.severity == "warn" for r in results), [r.message for r in results]


def test_channel_daily_is_published_and_adds_up_to_region_daily(shared: Settings):
    by_channel = run_query(
        shared,
        "select region, local_date, channel, payments, failed_payments, successful_payments, reversed_payments,"
        " payment_failure_rate from rollups.channel_daily order by all",
    ).to_pylist()
    assert {r["region"] for r in by_channel} == set(REGIONS)
    assert {r["channel"] for r in by_channel if r["region"] == "NG"} >= {"card", "bank_transfer", "ussd"}
    central = run_query(
        shared,
        "select c.region, c.local_date, sum(c.payments) as payments, sum(c.failed_payments) as failed,"
        " any_value(r.payments) as region_payments, any_value(r.failed_payments) as region_failed"
        " from rollups.channel_daily as c join rollups.region_daily as r using (region, local_date) group by all",
    ).to_pylist()
    assert central and all((r["payments"], r["failed"]) == (r["region_payments"], r["region_failed"]) for r in central)
    for code in REGIONS:
        with open_store(shared, code, read_only=True) as con:
            regional = con.execute(
                "SELECT region, local_date, channel, payments, failed_payments, successful_payments,"
                " reversed_payments, payment_failure_rate FROM channel_daily ORDER BY ALL"
            ).fetchall()
        assert [tuple(r.values()) for r in by_channel if r["region"] == code] == regional
    reconciled = [r for r in verify(shared) if r.name == "reconciliation"]
    assert len(reconciled) == len(REGIONS) and all(r.passed for r in reconciled), [r.message for r in reconciled]
    assert all("channel_daily" in r.metadata["central"] for r in reconciled)


def test_reconciliation_names_a_channel_daily_that_differs(shared: Settings):
    with open_store(shared, "KE", read_only=True) as con:
        regional = checks.regional_totals(con)
    rows, payments, failed = regional["channel_daily"]
    central = {**regional, "channel_daily": (rows, payments - 1, failed)}  # one payment missing centrally
    result = checks.reconciliation(get_region("KE"), regional, central, unpublished_days=0)
    assert not result.passed
    assert "channel_daily" in result.message and "payments" in result.message


def test_no_pii_reaches_the_central_layer(shared: Settings):
    catalog = open_catalog(shared)
    publication = latest_publication(catalog)
    for name in PUBLISHED:
        columns = set(read_published(catalog, publication, name).schema.names)
        assert not columns & {"buyer_ref", "buyer_email", "email", "phone", "raw_record", "transaction_id"}, name


def test_republish_replaces_only_changed_days_of_one_region(published: Settings):
    catalog = open_catalog(published)
    before = read_published(catalog, latest_publication(catalog), "creator_daily").to_pylist()
    assert publish_region(published, "EG").published is False  # nothing changed: nothing to do
    # a late file for one day in Egypt
    (late,) = make_files(published, regions=["EG"], rows=40, days=1, seed=99, start=START + dt.timedelta(days=1))
    ingest_files(published, "EG", [late.path])
    result = publish_region(published, "EG")
    late_day = START + dt.timedelta(days=1)
    # the late file's sales fall on its own day; a pending status a minute before midnight may touch the day before,
    # a late event of a payment already counted on a neighbouring day republishes that day too (it may move the
    # payment's first-seen day), and quarantined rows too broken to have a date count on the day they arrived
    arrival = dt.datetime.now(dt.UTC).date()
    neighbours = {START, late_day + dt.timedelta(days=1)}
    assert result.published and late_day in result.days and set(result.days) <= {late_day, *neighbours, arrival}
    after = read_published(catalog, latest_publication(catalog), "creator_daily").to_pylist()
    changed_days = set(result.days)
    untouched = lambda rows: sorted(  # noqa: E731
        (r["region"], r["local_date"], r["creator_id"], r["net_minor"])
        for r in rows
        if r["region"] != "EG" or r["local_date"] not in changed_days
    )
    assert untouched(before) == untouched(after)
    assert verify(published, ["EG"])[-1].passed


def test_readers_see_the_publication_not_the_tables_in_between(published: Settings):
    """A rollup committed without its publication row is invisible to readers."""
    catalog = open_catalog(published)
    publication = latest_publication(catalog)
    table = catalog.load_table("rollups.creator_daily")
    table.append(read_published(catalog, publication, "creator_daily"))  # a half-done publish: data, no record
    total = run_query(published, "select count(*) as n from rollups.creator_daily").to_pylist()[0]["n"]
    assert total == read_published(catalog, publication, "creator_daily").num_rows


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("create table rollups.x as select 1", "only read-only"),
        ("insert into rollups.creator_daily select * from rollups.creator_daily", "only read-only"),
        ("copy (select 1) to '/tmp/kanda-leak.csv'", "only read-only"),
        ("select * from read_csv('/etc/passwd')", "refused"),
        ("attach '/tmp/other.duckdb'", "only read-only"),
        ("set threads = 1", "only read-only"),
        ("select 1; select 2", "exactly one statement"),
    ],
)
def test_analyst_sql_cannot_write_or_escape(shared: Settings, sql: str, message: str):
    with pytest.raises(QueryRefused, match=message):
        run_query(shared, sql)


def test_a_catalog_from_before_channel_daily_is_completed_by_the_next_publish(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """An installation published before channel_daily existed keeps working, and one publish per region fills it."""
    make_files(settings, regions=["KE", "NG"], rows=300, days=2)
    older = pa.schema([f for f in PUBLICATIONS_SCHEMA if f.name != "channel_daily_snapshot"])
    with monkeypatch.context() as before:  # the previous release: three rollups, three snapshot columns
        before.delitem(PUBLISHED, "channel_daily")
        before.setattr(kanda.central.publish, "PUBLICATIONS_SCHEMA", older)
        for code in ("KE", "NG"):
            ingest_landing(settings, code)
            publish_region(settings, code)
    assert "channel_daily" in PUBLISHED
    orders = "select sum(orders) as n from rollups.creator_daily"
    total = run_query(settings, orders).to_pylist()
    assert total[0]["n"] > 0  # readers work before any new publish

    upgraded = publish_region(settings, "KE")  # nothing changed in Kenya, but its channel_daily was never published
    assert upgraded.published and upgraded.rows["channel_daily"] > 0
    assert run_query(settings, orders).to_pylist() == total
    by_region = run_query(settings, "select distinct region from rollups.channel_daily").to_pylist()
    assert by_region == [{"region": "KE"}]
    kenya, nigeria = (next(r for r in verify(settings, [c]) if r.name == "reconciliation") for c in ("KE", "NG"))
    assert kenya.passed and not nigeria.passed and "channel_daily" in nigeria.message

    publish_region(settings, "NG")
    assert all(r.passed or r.severity == "warn" for r in verify(settings))
    assert publish_region(settings, "NG").published is False  # once complete, nothing more to do


def test_a_host_whose_clock_runs_behind_still_publishes_the_newest(settings: Settings, monkeypatch, caplog):
    """Publications are ordered by `published_at`: one stamped by a host an hour behind was not the newest, so
    readers never saw it, and the next publish rolled its tables back as a dead publish's. It is stamped just after
    the newest instead, under the publish lock, so publications are ordered as they commit."""
    import types

    make_files(settings, regions=["KE", "NG"], rows=200, days=2)
    for code in ("KE", "NG"):
        ingest_landing(settings, code)
    publish_region(settings, "KE")

    class BehindByAnHour(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) - dt.timedelta(hours=1)

    clock = types.SimpleNamespace(datetime=BehindByAnHour, date=dt.date, timedelta=dt.timedelta, UTC=dt.UTC)
    monkeypatch.setattr(kanda.central.publish, "dt", clock)
    behind = publish_region(settings, "NG")
    monkeypatch.setattr(kanda.central.publish, "dt", dt)
    assert latest_publication(open_catalog(settings)).publish_id == behind.publish_id

    (late,) = make_files(settings, regions=["KE"], rows=40, days=1, seed=99, start=START + dt.timedelta(days=1))
    ingest_files(settings, "KE", [late.path])
    with caplog.at_level("WARNING"):
        publish_region(settings, "KE")
    assert "rolled back" not in caplog.text  # NG's publication is no dead publish's
    regions = run_query(settings, "select distinct region from rollups.region_daily order by 1").to_pylist()
    assert [r["region"] for r in regions] == ["KE", "NG"]
    assert next(r for r in verify(settings, ["NG"]) if r.name == "central_rows").passed
