"""Text cells that a spreadsheet would run as a formula (CSV injection), made inert with a leading apostrophe.

Every CSV kanda hands to a person goes through this: the creators' report attachments and the analysts' CSV
answers (API and `kanda query --format csv`). Creator-supplied text (product titles, channel names) and analyst SQL
both choose cell contents, and Excel, LibreOffice and Google Sheets treat a cell starting with `=`, `+`, `-` or `@`
(or a tab or carriage return before one) as a formula. Only text is changed: a negative number is a number, not a
formula, and stays as it is.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: A cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^([=+\-@\t\r])"


def neutralised(value: str) -> str:
    """One text cell, with a leading ' when a spreadsheet would read it as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def neutralise_table(table: pa.Table) -> pa.Table:
    """Every text column of an Arrow table neutralised, vectorised (other columns untouched)."""
    if not table.num_columns:
        return table
    return pa.Table.from_arrays([_neutralise_column(c) for c in table.columns], names=table.column_names)


def _neutralise_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_string_view(kind):
        column, kind = column.cast(pa.large_string()), pa.large_string()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _neutralise_text(column)
    if pa.types.is_dictionary(kind) and (
        pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
    ):
        chunks = [pa.DictionaryArray.from_arrays(c.indices, _neutralise_text(c.dictionary)) for c in column.chunks]
        return pa.chunked_array(chunks, type=kind)
    return column


def _neutralise_text(values):
    return pc.replace_substring_regex(values, pattern=_FORMULA_PATTERN, replacement=r"'\1")
