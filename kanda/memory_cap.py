"""An address-space cap for the processes that run analyst SQL (`kanda serve` workers, `kanda query`).

DuckDB keeps most of a query's memory under its `memory_limit`, but not all: a constant folded while the statement
is planned (`len(range(300000000))`) or a vector of huge strings is allocated outside it, and planning cannot be
interrupted by the time limit. One analyst request then grew a worker past 15 GB. Under an address-space limit
(`RLIMIT_AS`) such an allocation fails at once, DuckDB reports it as an out-of-memory error for that statement
alone, and the worker goes on serving. The cap is on virtual memory, which a Python process with DuckDB reserves
well beyond what it uses (about 3 GB for an idle worker), hence its generous default.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"(?i)^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?)b?\s*$")


def size_in_bytes(text: str) -> int:
    """`8GiB`, `8GB`, `500MB` or `0` as bytes (a decimal unit is taken as binary: this is a ceiling, not a bill)."""
    found = _SIZE.match(text)
    if not found:
        raise ValueError(f"not a size: {text!r}")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * 1024 ** " kmgtp".index(unit or " "))


def cap_address_space(limit: str) -> int | None:
    """Lower this process's `RLIMIT_AS` to `limit` (never raise it); None when `limit` is 0 or the platform has no
    such limit. Returns the limit in force."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    wanted = size_in_bytes(limit)
    if wanted <= 0:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    return wanted
