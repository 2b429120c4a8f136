"""The contract is the one schema source: the store's table, event ids, dtypes and id shapes follow from it."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from kanda.regional.store import open_store, registered
from kanda.settings import Settings
from quality.contract import (
    CONTRACT_COLUMNS,
    VIRTUAL_COLUMNS,
    SaleEvent,
    column_descriptions,
    contract_dtypes,
    event_id_expr,
    event_id_value,
)
from regions import CREATOR_ID_SHAPE, PRODUCT_ID_SHAPE, all_regions, creator_pattern, product_pattern

DUCKDB_TYPE = {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Date: "DATE", pl.Datetime: "TIMESTAMP WITH TIME ZONE"}


def test_the_stored_table_has_the_contracts_columns_types_and_nullability(settings: Settings):
    schema = SaleEvent.to_schema().columns
    with open_store(settings, "KE") as con:
        stored = {name: (kind, null) for name, kind, null, *_ in con.execute("DESCRIBE sale_events").fetchall()}
    assert set(stored) == set(CONTRACT_COLUMNS)
    for name, dtype in contract_dtypes().items():
        kind = DUCKDB_TYPE[dtype if isinstance(dtype, type) else type(dtype)]
        nullable = schema[name].nullable or name in VIRTUAL_COLUMNS
        assert stored[name] == (kind, "YES" if nullable else "NO"), name


def test_the_stores_event_id_is_the_one_the_boundary_computes(settings: Settings):
    rows = pl.DataFrame(
        {
            "transaction_id": ["T1", "T1", "T1", "T:2"],
            "event_type": ["sale", "refund", "refund", "sale"],
            "status": ["success"] * 4,
            "event_ref": [0, 1_790_000_000_000_000, 4_000, 0],
        }
    )
    expected = rows.select(event_id_expr()).to_series().to_list()
    python = [event_id_value(row) for row in rows.to_dicts()]
    with open_store(settings, "KE") as con, registered(con, "drawn", rows.to_arrow()):
        got = [row[0] for row in con.execute(f"SELECT {VIRTUAL_COLUMNS['event_id']} FROM drawn").fetchall()]
    # a sale's id is its first three parts; money going back adds its reference, so a second refund is its own event
    assert (
        got
        == expected
        == python
        == [
            "T1:sale:success",
            "T1:refund:success:1790000000000000",
            "T1:refund:success:4000",
            "T:2:sale:success",
        ]
    )


def test_every_contract_column_is_described():
    descriptions = column_descriptions()
    assert list(descriptions) == CONTRACT_COLUMNS
    assert all(len(text) > 10 for text in descriptions.values()), descriptions


def test_id_shapes_are_written_once_in_regions():
    schema = SaleEvent.to_schema().columns
    contract_patterns = {str(check) for name in ("creator_id", "product_id") for check in schema[name].checks}
    assert any(creator_pattern() in text for text in contract_patterns)
    assert any(product_pattern() in text for text in contract_patterns)
    configs = Path(__file__).resolve().parents[2] / "regions" / "config"
    for path in configs.glob("*.yaml"):
        assert not re.search(r"-[CP]\\d", path.read_text()), f"{path.name} spells out an id shape"
    for region in all_regions().values():
        assert f"(?P<creator_id>{region.code}-{CREATOR_ID_SHAPE})" in region.reference_pattern, region.code
        assert f"(?P<product_id>{region.code}-{PRODUCT_ID_SHAPE})" in region.reference_pattern, region.code


def test_the_models_page_lists_the_contracts_columns_as_the_contract_describes_them():
    page = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    for name, text in column_descriptions().items():
        assert f"| `{name}` |" in page and f"| {text} |" in page, name
