"""Creating the application database's tables when several processes start at once.

`kanda serve --workers N` starts N processes that each create the tables they use (API keys, accounts, the review
queue) and apply their upgrades. Between one process's look at the schema and its write, another may write the
same thing: the CREATE or the upgrade record then fails, and looking again settles it. A look may lose to a
different process each time, so it is repeated, with short jittered pauses that spread the processes out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import sqlalchemy as sa

ATTEMPTS = 20


def settle_schema(engine: sa.Engine, build: Callable[[sa.Connection], None]) -> None:
    """Run `build` in one transaction, again after a failure another process's schema change explains."""
    for attempt in range(ATTEMPTS):
        try:
            with engine.begin() as con:
                build(con)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(min(0.5, 0.02 * (attempt + 1)) * (0.5 + random.random()))
