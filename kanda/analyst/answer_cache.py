"""Finished API answers, kept per worker process: an answer of a publication never changes, so it is served again.

A key names everything an answer depends on: the publication (resolved per request, so a new publication is a new
key), the endpoint, the normalised parameters and the format; never the API key, because every analyst sees the
same rollups. The ETag is a hash of the key, so it is the same in every worker process and after a restart, and a
client holding it is answered `304 Not Modified` without running anything. Only successful answers are kept: an
error (a refused statement, a timeout) is decided again on every request.

The cache is a least-recently-used map bounded by the bytes of the bodies it holds (`KANDA_API_CACHE_BYTES`,
default 64 MiB per worker); an answer larger than an eighth of that is served but not kept, so one large export
cannot push out every dashboard's answers.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

DEFAULT_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    #: False when the answer depends on more than the publication (analyst SQL reading the clock or `random()`,
    #: `kanda.analyst.volatile`): then it is neither kept nor validated, and the client is told not to store it.
    keep: bool = True


def etag_of(key: tuple) -> str:
    """A strong validator: the same request of the same publication has the same ETag everywhere."""
    return '"' + hashlib.sha256(repr(key).encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names this ETag (a list, weak forms and `*` included, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


class AnswerCache:
    """A thread-safe LRU of answers bounded by body bytes; `hits` and `misses` count lookups since creation."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._size = 0
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    @classmethod
    def from_env(cls) -> AnswerCache:
        return cls(int(os.environ.get("KANDA_API_CACHE_BYTES", str(DEFAULT_BYTES))))

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, etag: str) -> Answer | None:
        with self._lock:
            answer = self._answers.get(etag)
            if answer is None:
                self.misses += 1
                return None
            self._answers.move_to_end(etag)
            self.hits += 1
            return answer

    def put(self, etag: str, answer: Answer) -> None:
        if len(answer.body) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._answers.pop(etag, None)
            if old is not None:
                self._size -= len(old.body)
            self._answers[etag] = answer
            self._size += len(answer.body)
            while self._size > self.max_bytes and self._answers:
                _, evicted = self._answers.popitem(last=False)
                self._size -= len(evicted.body)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._size = 0
