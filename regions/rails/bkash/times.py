"""bKash's execute time, "2024-01-01T12:05:00:000 GMT+0600", as one expression, for code outside the rail's spec.

The rail itself is a spec (`spec.yaml` rewrites the time with regex captures); the steward review's notation
(`kanda/review/notation.py`) reads a corrected value the same way, with this.
"""

from __future__ import annotations

import polars as pl

from regions.parsing import utc_from_iso

#: A colon before the milliseconds and a GMT offset without a colon; the same pattern as in `spec.yaml`.
BKASH_TIME = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}):(\d{1,6})\s*GMT([+-]\d{2}):?(\d{2})$"


def bkash_time_to_utc(expr: pl.Expr) -> pl.Expr:
    """ "2024-01-01T12:05:00:000 GMT+0600" -> 2024-01-01 06:05:00 UTC; ISO 8601 passes through; else null."""
    text = expr.str.strip_chars()
    return utc_from_iso(text.str.replace(BKASH_TIME, "${1}.${2}${3}:${4}"))
