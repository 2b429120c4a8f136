"""Whether an analyst statement's answer depends on more than the publication: the clock, or chance.

The API keeps an answer per publication because a publication never changes (`kanda.analyst.answer_cache`). A
statement that reads the clock (`current_date`, `now()`, `today() - 7`) or draws numbers (`random()`, `uuid()`) gives
another answer tomorrow, or on the next call, at the same publication; served again from memory, or kept by the
client for a year at a publication named by id, it would be yesterday's figure with nothing saying so. Such a
statement is run on every request instead.

The statement is read from DuckDB's own parse tree (as `kanda.central.query.check_read_only` reads it): a function
DuckDB marks VOLATILE (`duckdb_functions().stability`), or one of the clock's functions, which DuckDB marks
CONSISTENT_WITHIN_QUERY together with hundreds of pure ones (`year`, `+`, `strftime`) and so are named here (and
`age` with one argument, the time since a value, which DuckDB marks like the pure `age(a, b)`). The
SQL-standard `current_date`, `current_timestamp`, `localtime`... parse as column references (no rollup has such a
column). `EXPLAIN ANALYZE` reports how long this run took. A sample (`USING SAMPLE`, `TABLESAMPLE`) draws rows by
chance, seeded or not (DuckDB repeats a seeded sample only on one thread).
"""

from __future__ import annotations

import json
import re
from functools import cache

import duckdb

from kanda.central.query import parse_tree_nodes

#: Functions that read the clock (DuckDB's names and aliases); their answer changes with the day, hour, second.
CLOCK_FUNCTIONS = frozenset(
    {
        "now",
        "today",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_localtime",
        "current_localtimestamp",
        "get_current_time",
        "get_current_timestamp",
        "localtime",
        "localtimestamp",
        "transaction_timestamp",
        "txid_current",
    }
)
#: Functions that read the clock only when given one argument: `age(ts)` is the time from `ts` to now, `age(a, b)`
#: the time between two values.
CLOCK_WHEN_ALONE = frozenset({"age"})
_EXPLAIN_ANALYZE = re.compile(r"^\s*explain\s+analy[sz]e\b", re.IGNORECASE)


@cache
def volatile_functions() -> frozenset[str]:
    """What this DuckDB calls VOLATILE (random, uuid, nextval, ...) and the clock's functions."""
    with duckdb.connect() as con:
        rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE stability = 'VOLATILE'")
        return frozenset(name for (name,) in rows.fetchall()) | CLOCK_FUNCTIONS


def answer_varies(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether the same statement at the same publication may answer differently another time (see the module)."""
    if _EXPLAIN_ANALYZE.match(sql):
        return True
    tree = json.loads(
        con.execute("SELECT json_serialize_sql(?)", [_EXPLAIN_PREFIX.sub("", sql, count=1)]).fetchall()[0][0]
    )
    if tree.get("error"):  # not something the checked statement can be; keep nothing rather than guess
        return True
    varying = volatile_functions()
    for node in parse_tree_nodes(tree):
        if node.get("sample"):  # USING SAMPLE / TABLESAMPLE: chance, and a seed repeats only on one thread
            return True
        if node.get("class") == "FUNCTION":
            name = node.get("function_name", "").lower()
            if name in varying or (
                name in CLOCK_WHEN_ALONE and len(node.get("arguments") or node.get("children") or []) == 1
            ):
                return True
        if node.get("class") == "COLUMN_REF":
            names = node.get("column_names") or []
            if len(names) == 1 and names[0].lower() in CLOCK_FUNCTIONS:
                return True
    return False


_EXPLAIN_PREFIX = re.compile(r"^\s*explain\s+", re.IGNORECASE)
