"""A DuckDB process killed while it spills beside a database file, as `kill -9` or the OOM killer leaves one."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

#: Distinct 64-character texts of 30 million rows: far past a 64 MB memory limit, so DuckDB spills within seconds.
SPILLING = (
    "select count(*) from (select distinct md5(x::varchar) || md5((x + 1)::varchar) as h from range(30000000) t(x))"
)

_CHILD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET memory_limit = '64MB'")
con.execute("SET enable_progress_bar = false")
con.execute(sys.argv[2])
"""


def killed_while_spilling(database: Path) -> list[Path]:
    """Run a spilling query on `database` (read-only) in a child, kill it once it has spilled; its leftover files."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(database), SPILLING])
    folder = Path(f"{database}.tmp")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            spilled = [p for p in folder.glob(f"duckdb_temp_{child.pid}_*") if p.stat().st_size > 1_000_000]
            if spilled:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the child never spilled (exit code {child.poll()})")
    finally:
        child.kill()
        child.wait()
    return sorted(folder.glob(f"duckdb_temp_{child.pid}_*"))
