"""The central Iceberg tables document themselves: each field's `doc` and required flag as the models declare them,
for new tables and (as far as Iceberg allows) for tables made by an older kanda."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import EqualTo

from kanda.central.catalog import (
    NAMESPACE,
    PUBLICATION_DOCS,
    PUBLICATIONS,
    PUBLICATIONS_SCHEMA,
    documented_schema,
    ensure_table,
    open_catalog,
)
from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files
from warehouse_models import column_docs, published


def publish(settings: Settings, region: str = "KE") -> None:
    make_files(settings, regions=[region], rows=200, days=2)
    ingest_landing(settings, region)
    publish_region(settings, region)


def fields(settings: Settings, table: str) -> dict[str, tuple[str | None, bool]]:
    schema = open_catalog(settings).load_table(f"{NAMESPACE}.{table}").schema()
    return {field.name: (field.doc, field.required) for field in schema.fields}


def test_published_tables_carry_each_columns_doc_and_required_flag(settings: Settings):
    publish(settings)
    for table in published():
        declared = {c.name: (c.doc, c.required) for c in column_docs(table).values()}
        assert fields(settings, table) == declared, table
    assert fields(settings, "creator_daily")["net_usd_minor"] == (
        "Net in US cents: the sum of the events' USD cents, each rounded once (int_usd_amounts); NULL when no rate "
        "is known (unit: USD cents)",
        False,
    )
    publications = fields(settings, PUBLICATIONS)
    assert {name: doc for name, (doc, _) in publications.items()} == PUBLICATION_DOCS
    assert {name for name, (_, required) in publications.items() if required} == {
        f.name for f in PUBLICATIONS_SCHEMA if not f.nullable
    }
    # What Iceberg says is what readers get: the rollups read back whole.
    assert run_query(settings, "SELECT count(*) AS n FROM rollups.creator_daily").to_pylist()[0]["n"] > 0


def test_a_table_made_before_the_docs_gets_them_and_keeps_what_iceberg_cannot_tighten(settings: Settings):
    """An older kanda made every rollup column optional and undocumented; `fx_date` is made required here too, to
    stand for a column the models have since allowed to be NULL."""
    old = pa.schema([pa.field(c.name, _TYPES.get(c.name, pa.int64())) for c in column_docs("creator_daily").values()])
    old = old.set(old.get_field_index("fx_date"), pa.field("fx_date", pa.date32(), nullable=False))
    catalog = open_catalog(settings)
    catalog.create_table(f"{NAMESPACE}.creator_daily", schema=old)
    assert all(doc is None for doc, _ in fields(settings, "creator_daily").values())

    publish(settings)  # ensure_table brings the existing table up to date, then the publish writes into it

    after = fields(settings, "creator_daily")
    for column in column_docs("creator_daily").values():
        doc, required = after[column.name]
        assert doc == column.doc
        assert required is False, f"{column.name}: Iceberg cannot make an existing optional column required"
    assert run_query(settings, "SELECT count(*) AS n FROM rollups.creator_daily").to_pylist()[0]["n"] > 0


_TYPES = {"region": pa.string(), "local_date": pa.date32(), "creator_id": pa.string(), "currency": pa.string()}
_TYPES |= {"fx_date": pa.date32(), "fees_stated": pa.bool_()}


def test_a_column_added_to_the_models_since_the_table_was_made_is_added_and_filled(settings: Settings):
    """`fees_stated` came after the first catalogs were made: the table gains it, optional (rows written before have
    none), and each region's publish fills it, for every day it sends."""
    columns = [pa.field(c.name, _TYPES.get(c.name, pa.int64())) for c in column_docs("creator_daily").values()]
    old = pa.schema([f for f in columns if f.name != "fees_stated"])
    open_catalog(settings).create_table(f"{NAMESPACE}.creator_daily", schema=old)

    publish(settings, "KE")  # M-Pesa statements state no fees
    publish(settings, "NG")  # Paystack's events do

    doc, required = fields(settings, "creator_daily")["fees_stated"]
    assert (doc, required) == (column_docs("creator_daily")["fees_stated"].doc, False)
    assert run_query(settings, FLAGS_SQL).to_pylist() == [
        {"region": "KE", "flags": [False]},
        {"region": "NG", "flags": [True]},
    ]


def test_a_data_file_written_before_a_column_was_added_reads_null_there(settings: Settings):
    """Until each region publishes again, its files from before the column lack it. Readers see NULL there, as
    Iceberg defines it, in the table's column order; they must not fail on the files' differing shapes."""
    publish(settings, "GH")
    publish(settings, "KE")
    table = open_catalog(settings).load_table(f"{NAMESPACE}.creator_daily")
    ghana = [task.file.file_path.removeprefix("file://") for task in table.scan(EqualTo("region", "GH")).plan_files()]
    for path in ghana:  # as an older kanda wrote them: the same rows, no fees_stated
        pq.write_table(pq.read_table(path).drop_columns(["fees_stated"]), path)

    assert run_query(settings, FLAGS_SQL).to_pylist() == [
        {"region": "GH", "flags": [None]},
        {"region": "KE", "flags": [False]},
    ]
    columns = run_query(settings, "SELECT * FROM rollups.creator_daily LIMIT 0").column_names
    assert columns == list(column_docs("creator_daily"))


FLAGS_SQL = "SELECT region, list(DISTINCT fees_stated) AS flags FROM rollups.creator_daily GROUP BY 1 ORDER BY 1"


def test_a_null_in_a_required_column_is_refused_before_anything_is_written(settings: Settings):
    frame = pa.table({"region": ["KE"], "local_date": pa.array([None], pa.date32())})
    with pytest.raises(ValueError, match="local_date"):
        frame.cast(documented_schema("creator_daily", frame.schema))


def test_ensuring_an_up_to_date_table_commits_nothing(settings: Settings):
    publish(settings)
    catalog = open_catalog(settings)
    table = catalog.load_table(f"{NAMESPACE}.region_daily")
    before = table.metadata.current_schema_id, len(table.metadata.schemas)
    again = ensure_table(catalog, "region_daily", table.schema().as_arrow())
    assert (again.metadata.current_schema_id, len(again.metadata.schemas)) == before
