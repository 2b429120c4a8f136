"""Answers of the analysts' API as JSON, CSV or Parquet, with the publication they came from in the headers.

JSON carries the metadata (publication, totals, paging) in its body and the rows as objects; CSV and Parquet carry
only rows, so the same metadata also travels in headers (`X-Kanda-Publication`, `X-Total-Count`, `Link`) on every
format. Sums of integer money come out of DuckDB as 128-bit decimals: JSON writes them as plain integers. CSV text
cells that a spreadsheet would run as a formula get a leading apostrophe, like the creators' report attachments
(`kanda.csv_safety`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
from typing import Literal

import pyarrow as pa

from kanda.central.catalog import Publication
from kanda.csv_safety import neutralise_table

Format = Literal["json", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_ACCEPTED = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/json": "json",
}


class UnsupportedFormat(ValueError):
    """The rows cannot be written in the requested format (e.g. nested values in CSV)."""


def pick_format(explicit: str | None, accept: str | None) -> Format:
    """`format=` wins; otherwise the first media type of the Accept header that we speak; otherwise JSON."""
    if explicit:
        return explicit  # type: ignore[return-value]  # validated by the endpoint's Literal
    for part in (accept or "").split(","):
        chosen = _ACCEPTED.get(part.split(";")[0].strip().lower())
        if chosen:
            return chosen  # type: ignore[return-value]
    return "json"


def publication_json(publication: Publication) -> dict[str, object]:
    return {
        "publish_id": publication.publish_id,
        "region": publication.region,
        "published_at": publication.published_at.isoformat(),
        "snapshots": dict(publication.snapshots),
    }


def publication_headers(publication: Publication) -> dict[str, str]:
    return {
        "X-Kanda-Publication": publication.publish_id,
        "X-Kanda-Published-At": publication.published_at.isoformat(),
    }


def render(table: pa.Table, fmt: Format, meta: dict[str, object]) -> tuple[bytes, str]:
    """The body and media type of an answer: `meta` plus `rows` in JSON, the rows alone otherwise."""
    if fmt == "csv":
        import pyarrow.csv

        sink = io.BytesIO()
        try:
            pyarrow.csv.write_csv(neutralise_table(table), sink)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
            raise UnsupportedFormat(f"these rows cannot be written as CSV ({exc}); ask for json or parquet") from None
        return sink.getvalue(), MEDIA_TYPES["csv"]
    if fmt == "parquet":
        import pyarrow.parquet

        sink = io.BytesIO()
        try:
            pyarrow.parquet.write_table(table, sink)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
            raise UnsupportedFormat(f"these rows cannot be written as Parquet ({exc}); ask for json") from None
        return sink.getvalue(), MEDIA_TYPES["parquet"]
    body = {**meta, "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema], "rows": rows(table)}
    try:
        return json.dumps(body, default=_json_value, allow_nan=False).encode(), MEDIA_TYPES["json"]
    except ValueError:  # a NaN or infinity inside a struct or list, which `rows` does not walk into on its way
        body["rows"] = _finite(body["rows"])
        return json.dumps(body, default=_json_value, allow_nan=False).encode(), MEDIA_TYPES["json"]


def rows(table: pa.Table) -> list[dict[str, object]]:
    """Rows as JSON-ready dicts (NaN and infinities become null: JSON has no such numbers). Dates and times that
    Python cannot hold (DuckDB's `infinity`, a year before 1 or after 9999) are given as DuckDB's own text."""
    try:
        out = table.to_pylist()
    except (OverflowError, ValueError):
        out = _with_temporal_as_text(table).to_pylist()
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    if floats:
        for row in out:
            for name in floats:
                value = row[name]
                if value is not None and not math.isfinite(value):
                    row[name] = None
    return out


def _with_temporal_as_text(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    for index, column in enumerate(table.schema):
        if pa.types.is_temporal(column.type):
            try:
                text = pc.cast(table.column(index), pa.string())
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
                raise UnsupportedFormat(f"column {column.name!r} cannot be written as JSON ({exc})") from None
            table = table.set_column(index, column.name, text)
    return table


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
