"""Cached answers served before FastAPI parses anything: the same bytes of request, the same publication, the same
answer.

Parsing and validating a request's parameters costs more than the rest of serving a cached answer. So once the
normal route has answered a request, its raw form (method, path, query string, the headers that choose or shape
the answer, the body) is remembered beside the metadata file of `rollups.publications` it was answered at, with
the answer's ETag. A request that is byte-for-byte the same at the same metadata file, from a valid key, is answered
here from the answer cache, with the same headers, or 304. Anything else (another spelling, a new publication, an
invalid or revoked key, an answer no longer cached, an error) goes through the normal route, which decides it and
gives the errors their messages. The API key is checked here too, on every request.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kanda.analyst.answer_cache import AnswerCache, matches
from kanda.analyst.keys import InvalidKey, KeyStore
from kanda.central.query import publications_location
from kanda.settings import Settings

#: Request headers an answer depends on (besides the path, query and body): the format, the host in `next` links,
#: and how the body is read.
SHAPING_HEADERS = (b"accept", b"host", b"content-type")
MAX_BODY = 64 * 1024
MAX_ALIASES = 20_000
#: The largest request body any /api route reads (a statement and its options); a larger one is refused with 413
#: before it is read, key or no key, so that nobody can make a worker hold an arbitrary upload in memory.
MAX_REQUEST_BODY = 1024 * 1024


@dataclass(frozen=True)
class Alias:
    etag: str
    headers: tuple[tuple[str, str], ...]  # the validators and publication headers the route sent


class FastAnswers:
    """Raw request -> ETag, per metadata file of the publications table; bounded, least recently used first out."""

    def __init__(self, settings: Settings, keys: KeyStore, cache: AnswerCache) -> None:
        self.settings = settings
        self.keys = keys
        self.cache = cache
        self.served = 0
        self._lock = threading.Lock()
        self._aliases: OrderedDict[tuple, Alias] = OrderedDict()

    def remember(self, scope: Scope, body: bytes, location: str | None, etag: str, headers: dict[str, str]) -> None:
        if location is None or len(body) > MAX_BODY:
            return
        key = _raw_key(scope, body, location)
        with self._lock:
            self._aliases[key] = Alias(etag, tuple(headers.items()))
            self._aliases.move_to_end(key)
            while len(self._aliases) > MAX_ALIASES:
                self._aliases.popitem(last=False)

    def lookup(self, scope: Scope, body: bytes) -> Alias | None:
        location = publications_location(self.settings)
        return None if location is None else self.lookup_at(scope, body, location)

    def lookup_at(self, scope: Scope, body: bytes, location: str) -> Alias | None:
        with self._lock:
            return self._aliases.get(_raw_key(scope, body, location))


def _raw_key(scope: Scope, body: bytes, location: str) -> tuple:
    """The request's raw form as a digest: `MAX_ALIASES` keys holding 64 KiB bodies would be a gigabyte a worker."""
    digest = hashlib.sha256()
    # the scheme too: `next` links name it (behind a TLS proxy, as X-Forwarded-Proto tells uvicorn)
    for part in (scope.get("scheme", "").encode(), scope["method"].encode(), scope["path"].encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    for part in (scope["query_string"], *(n + b":" + v for n, v in scope["headers"] if n in SHAPING_HEADERS), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return (location, digest.digest())


def _token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials.strip()
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1")
    return None


class FastAnswerMiddleware:
    """ASGI middleware in front of the app: answers remembered requests from the cache, passes on everything else."""

    def __init__(self, app: ASGIApp, answers: FastAnswers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") or scope["method"] not in {"GET", "POST"}:
            await self.app(scope, receive, send)
            return
        try:
            body, receive = await _buffered(scope, receive)
        except _TooLarge:
            await _refuse_too_large(send)
            return
        alias = self.answers.lookup(scope, body) if body is not None else None
        answer = self.answers.cache.get(alias.etag) if alias else None
        if alias is None or answer is None or not self._authorised(scope):
            await self.app(scope, receive, send)
            return
        self.answers.served += 1
        wanted = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"if-none-match"), None)
        headers = [(n.encode(), v.encode("latin-1")) for n, v in alias.headers]
        headers.append((b"x-kanda-cache", b"hit"))
        if matches(wanted, alias.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(n.lower().encode(), v.encode("latin-1")) for n, v in answer.headers.items()]
        headers += [(b"content-type", answer.media_type.encode()), (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _authorised(self, scope: Scope) -> bool:
        if not self.answers.keys.local:  # a database server: let the route ask it from the thread pool
            return False
        try:
            self.answers.keys.authenticate(_token(scope))
        except InvalidKey:
            return False  # the route answers 401 with the reason
        return True


class _TooLarge(Exception):
    """The request body is over `MAX_REQUEST_BODY` (by its Content-Length, or as it arrives)."""


async def _refuse_too_large(send: Send) -> None:
    body = b'{"detail": "request body over %d bytes: send one statement, not a file"}' % MAX_REQUEST_BODY
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the upload is not read
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _buffered(scope: Scope, receive: Receive) -> tuple[bytes | None, Receive]:
    """The request body (None when too large to remember), and a `receive` that replays it to the app.

    Raises `_TooLarge` before reading a body whose Content-Length is over `MAX_REQUEST_BODY`, and as soon as a body
    without one (chunked) grows past it."""
    if scope["method"] == "GET":
        return b"", receive
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit() and int(value) > MAX_REQUEST_BODY:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_REQUEST_BODY:
            raise _TooLarge
        if not message.get("more_body", False):
            break
    replay = iter(messages)

    async def replaying() -> Message:
        for message in replay:
            return message
        return await receive()

    return (b"".join(chunks) if size <= MAX_BODY else None), replaying
