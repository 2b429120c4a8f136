"""An address-space cap for the processes that run analyst SQL (`kanda serve` workers, `kanda query`).

DuckDB keeps most of a query's memory under its `memory_limit`, but not all: a constant folded while the statement
is planned (`len(range(300000000))`) or a vector of huge strings is allocated outside it, and planning cannot be
interrupted by the time limit. One analyst request then grew a worker past 15 GB. Under an address-space limit
(`RLIMIT_AS`) such an allocation fails at once, DuckDB reports it as an out-of-memory error for that statement
alone, and the worker goes on serving.

The cap is on virtual memory, which a process reserves well beyond what it uses: about 2-3 GB for an idle worker
on two cores, and more with every core (thread stacks, malloc arenas, the thread pools of DuckDB, Arrow and
polars are sized to the cores), plus whatever DuckDB may legitimately use. So the default, `auto`, is 4 GiB, twice
DuckDB's memory limit and 256 MiB per core: 8.5 GiB on a 2-core machine with the 2 GB default, 24 GiB on 64 cores.
"""

from __future__ import annotations

import os
import re

_SIZE = re.compile(r"(?i)^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?)b?\s*$")


def size_in_bytes(text: str) -> int:
    """`8GiB`, `8GB`, `500MB` or `0` as bytes (a decimal unit is taken as binary: this is a ceiling, not a bill)."""
    found = _SIZE.match(text)
    if not found:
        raise ValueError(f"not a size: {text!r}")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * 1024 ** " kmgtp".index(unit or " "))


def auto_limit(duckdb_memory: str) -> int:
    """The default cap: room for what this machine's processes reserve, and for DuckDB's own limit, twice over."""
    text = duckdb_memory.strip()
    if text.endswith("%"):
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        duckdb = int(physical * float(text[:-1]) / 100)
    else:
        duckdb = size_in_bytes(text)
    return 4 * 1024**3 + 2 * duckdb + (os.cpu_count() or 1) * 256 * 1024**2


def cap_address_space(limit: str, duckdb_memory: str = "2GB") -> int | None:
    """Lower this process's `RLIMIT_AS` to `limit` (`auto`: `auto_limit`; never raise it); None when `limit` is 0
    or the platform has no such limit. Returns the limit in force."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    wanted = auto_limit(duckdb_memory) if limit.strip().lower() == "auto" else size_in_bytes(limit)
    if wanted <= 0:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    return wanted
