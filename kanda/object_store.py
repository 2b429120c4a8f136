"""How an object store that cannot be reached is told apart from a missing file, for every front end.

Kept free of heavy imports: the CLI looks a failure up here before printing it, on every command.
"""

from __future__ import annotations

import re

#: What pyarrow's and DuckDB's S3 clients say when the store is down, elsewhere, or refuses the credentials.
STORE_OUT_OF_REACH = re.compile(
    r"NETWORK_CONNECTION|ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Connection refused"
    r"|Could not connect|Couldn't connect|curlCode: 7|Failed to resolve|HTTP 403",
    re.IGNORECASE,
)
#: What to check, said once for every place that reports it.
CHECK_SETTINGS = "check AWS_ENDPOINT_URL, the credentials and that the store runs"


def out_of_reach(exc: BaseException | str | None) -> str | None:
    """The first line of the client's message when it says the store cannot be reached or refused access, else
    None (a missing or damaged file is another matter: an operator restores or republishes it)."""
    text = str(exc or "")
    return text.strip().splitlines()[0] if STORE_OUT_OF_REACH.search(text) else None
