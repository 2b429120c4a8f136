"""Local days as SQL conditions that let DuckDB skip what it does not need to read.

A build or a publish restricts its reads to a set of local days. Written as constants (not a subquery on a table of
days), the condition is pushed through the views to the table scans, which check it against each row group's
min/max and read only the row groups that can hold those days: few when a table's rows are in day order, as files
that arrive day by day leave `sale_events`; all of them when its rows are in no day order.
"""

from __future__ import annotations

import datetime as dt

#: At most this many ranges of days in one day filter (see `day_ranges`).
MAX_RANGES = 8


def day_ranges(days: list[dt.date]) -> list[list[dt.date]]:
    """`days` sorted into at most MAX_RANGES groups of near days: each run of consecutive days a group, and while
    there are too many, the two nearest groups merged. A day filter is one range per group (`_in_range`)."""
    groups: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if groups and (day - groups[-1][-1]).days == 1:
            groups[-1].append(day)
        else:
            groups.append([day])
    while len(groups) > MAX_RANGES:
        i = min(range(len(groups) - 1), key=lambda i: groups[i + 1][0] - groups[i][-1])
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
    return groups


def _in_range(expr: str, group: list[dt.date]) -> str:
    """The SQL condition "`expr` is one of the days of `group`" (sorted): one range, narrowed by an IN list of the
    group's days when it has gaps."""
    lo, hi = group[0], group[-1]
    if lo == hi:
        return f"{expr} = {_date(lo)}"
    between = f"{expr} BETWEEN {_date(lo)} AND {_date(hi)}"
    if (hi - lo).days + 1 == len(group):
        return between
    return f"{between} AND {expr} IN ({', '.join(_date(d) for d in group)})"


def in_days(expr: str, days: list[dt.date]) -> str:
    """The SQL condition "`expr` is one of `days`", parenthesised: one range per group of near days (`_in_range`).

    Ranges rather than an IN list of every day: a range is the cheapest check against a row group's min/max, and
    a few of them cost less than a list; an OR of many costs more, hence at most MAX_RANGES of them.
    """
    groups = day_ranges(days)
    if not groups:
        return "(FALSE)"
    return "(" + " OR ".join(f"({_in_range(expr, g)})" for g in groups) + ")"


def _date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"
