"""DuckDB's spill files that a killed process left behind, removed by the next process that opens the database.

DuckDB spills a sort or join that outgrows its memory limit into files beside the database (`<file>.tmp/`), named
by the process (`duckdb_temp_<pid>_...`), and removes them when that process closes the database. A process killed
mid-query (`kill -9`, the kernel's out-of-memory killer, a deadline) leaves them: 1.4-1.8 GB per killed analyst
query, on the disk of the stores and the warehouse, outside any spill cap (`max_temp_directory_size` bounds a live
instance only), and no later open removed them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SPILL_FILE = re.compile(r"duckdb_temp_(\d+)_")


def clear_dead_spill(database: Path) -> int:
    """Remove the spill files of processes that no longer run from the database's spill folder; how many."""
    removed = 0
    try:
        entries = list(os.scandir(f"{database}.tmp"))
    except OSError:  # no spill folder: nothing ever spilled, or it was cleaned up
        return 0
    for entry in entries:
        found = _SPILL_FILE.match(entry.name)
        if found and not process_running(int(found.group(1))):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:  # another opener removed it first, or it is not ours to remove
                pass
    return removed


def process_running(pid: int) -> bool:
    """Whether a process of this id runs on this host (this process included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
