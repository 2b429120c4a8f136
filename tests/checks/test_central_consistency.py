"""On a host without a region's store, `kanda verify` can only hold the region's published rollups against one
another: it does so day by day, so money published on the wrong day of one rollup is named with the day and figure.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from typer.testing import CliRunner

from kanda.central.catalog import NAMESPACE, PUBLICATIONS, PUBLICATIONS_SCHEMA, open_catalog, publication_rows
from kanda.central.publish import publish_region
from kanda.checks.verify import verify
from kanda.cli import app
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files


def publish_rows(settings: Settings, table_name: str, region: str, rows: pa.Table) -> None:
    """What a faulty publish leaves: the region's rows of one rollup replaced, and a publication naming them."""
    catalog = open_catalog(settings)
    table = catalog.load_table(f"{NAMESPACE}.{table_name}")
    table.overwrite(rows, overwrite_filter=EqualTo("region", region))
    newest = dict(publication_rows(catalog)[-1])
    newest |= {
        "publish_id": f"{newest['publish_id']}-faulty",
        "published_at": dt.datetime.now(dt.UTC),
        f"{table_name}_snapshot": table.refresh().current_snapshot().snapshot_id,
    }
    publications = catalog.load_table(f"{NAMESPACE}.{PUBLICATIONS}")
    publications.append(pa.Table.from_pylist([newest], schema=PUBLICATIONS_SCHEMA))


def test_money_published_on_the_wrong_day_of_one_rollup_is_named_on_a_host_without_the_store(settings: Settings):
    make_files(settings, regions=["KE"], rows=300, days=2)
    ingest_landing(settings, "KE")
    publish_region(settings, "KE")
    catalog = open_catalog(settings)
    rows = catalog.load_table(f"{NAMESPACE}.creator_daily").scan(row_filter=EqualTo("region", "KE")).to_arrow()
    days = rows["local_date"].to_pylist()
    first, other = 0, next(i for i, day in enumerate(days) if day != days[0])
    moved = {}
    for column in ("gross_minor", "net_minor"):  # a sale's money on the next day: every total stays as it was
        values = rows[column].to_pylist()
        values[first] -= 10_000
        values[other] += 10_000
        moved[column] = pa.array(values, rows.schema.field(column).type)
    edited = rows
    for column, values in moved.items():
        edited = edited.set_column(rows.schema.get_field_index(column), column, values)
    publish_rows(settings, "creator_daily", "KE", edited.cast(rows.schema))
    settings.store_path("KE").rename(settings.store_path("KE").with_suffix(".elsewhere"))  # the central host's view

    (check,) = [r for r in verify(settings) if r.name == "rollups_consistent"]
    assert not check.passed and check.severity == "error"
    assert check.message.startswith("KE: the published rollups disagree on 2 day(s): ")
    assert f"{days[0]}: gross_minor creator_daily " in check.message and f"{days[other]}: " in check.message
    assert "net_minor creator_daily" in check.message and "region_daily" in check.message
    assert CliRunner().invoke(app, ["verify"]).exit_code == 1
