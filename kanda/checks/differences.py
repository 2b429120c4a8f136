"""How verify's recounts word the rows that differ: a few named in full, the rest counted.

Every recount (payments, row counts, currency, fees stated, USD) names rows the same way, so that a steward reading
`kanda verify` sees one shape of message whatever the check: the table, how many rows differ, the first few with
their key and both figures, then "(and N more)". A long message would bury the first rows an operator needs.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Rates are doubles: two computed from the same counts agree far closer than this, a wrong count moves one further.
RATE_TOLERANCE = 1e-9


def rows_differ(headline: str, named: Sequence[str], total: int) -> str:
    """`headline` and the rows named, with how many more differ than are named."""
    more = f" (and {total - len(named)} more)" if total > len(named) else ""
    return headline + "; ".join(named) + more


def key_text(key: Sequence[object]) -> str:
    """A row's key as the operator reads it: its values, space-separated (a day, then a creator, ...)."""
    return " ".join(str(value) for value in key)


def figures_differ(is_rate: bool, built: float, recounted: float) -> bool:
    """Counts must be equal; two rates only as close as their doubles allow."""
    return abs(built - recounted) > RATE_TOLERANCE if is_rate else built != recounted


def figure_pair(built: float, recounted: float) -> tuple[str, str]:
    """Two counts as numbers; two rates to six significant digits, or to fifteen where six would show them equal."""
    if isinstance(built, int) and isinstance(recounted, int):
        return f"{built:,}", f"{recounted:,}"
    short = f"{built:.6g}", f"{recounted:.6g}"
    return short if short[0] != short[1] else (f"{built:.15g}", f"{recounted:.15g}")
