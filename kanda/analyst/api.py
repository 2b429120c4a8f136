"""The analysts' read-only HTTP API under `/api`, served by `kanda serve` (OpenAPI docs at `/docs`).

Every answer is computed by DuckDB over the same read-only, locked-down database as `kanda query` opens
(`kanda.central.query.reader_connection`), at one publication: the newest, or the one `as_of` names, resolved per
request. The connection to a publication is opened once and shared (`kanda.analyst.reader_pool`), each request on
its own cursor. So the API can only ever show a complete publication, and it answers exactly what `kanda query`
answers. The publication is named in every answer (`X-Kanda-Publication`, and `publication` in JSON bodies).

Access needs an analyst API key (`kanda keys create NAME`) as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
`/docs` and `/openapi.json` are public: they describe the API and hold no data.

Limits: `POST /api/sql` returns at most `KANDA_API_SQL_MAX_ROWS` rows (default 10,000; the answer says when it was
truncated) and stops a query after `KANDA_API_SQL_TIMEOUT` seconds (default 10); a request may ask for less of
either. The statement is checked here and run in one of a few processes per worker (`KANDA_API_SQL_PROCESSES`,
`kanda.analyst.sql_processes`), killed when it runs on past the limit: DuckDB's own interrupt cannot stop one
expensive value. kanda's own rollup and history queries run here, on a cursor: they scan and sum columns, which the
interrupt stops between batches. An answer over `KANDA_API_SQL_MAX_BYTES` (default 100,000,000 bytes of Arrow
data), or too large for one Arrow batch at all, is refused with 413 and the limit. Rollup answers are paged (`limit`
at most 100,000) and share the time and size limits.

The database behind every answer is a read-only DuckDB file of the publication (`kanda.central.reader_files`), so
no request can change what another one reads, whatever the statement check lets through.

An answer of a publication never changes, so it is computed once per worker process and then served from memory
(`kanda.analyst.answer_cache`), keyed by the publication and the normalised request, with an `ETag` and
`Cache-Control: private`; `If-None-Match` gets `304 Not Modified`. The API key is checked before any of that, on
every request, 304s included. A rollup page is one query (read one row long to know whether another page follows);
the total is counted only when asked (`count=true`). The endpoints are coroutines: a cached answer never waits for
a thread, and a query runs in the thread pool, so the event loop keeps answering while DuckDB works.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import duckdb
import sqlalchemy.exc
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from kanda.analyst import sql_processes
from kanda.analyst.answer_cache import Answer, AnswerCache, etag_of, matches
from kanda.analyst.api_fast import FastAnswerMiddleware, FastAnswers
from kanda.analyst.api_formats import (
    UnsupportedFormat,
    pick_format,
    publication_headers,
    publication_json,
    render,
)
from kanda.analyst.api_rollups import (
    DIMENSIONS,
    FEES_STATED,
    MONEY_TABLES,
    RATES,
    ROW_ONLY,
    BadRollupRequest,
    RollupRequest,
    canonical_ids,
    measures,
    rollup_sql,
)
from kanda.analyst.keys import ApiKey, InvalidKey, KeyStore
from kanda.analyst.reader_pool import shared_reader
from kanda.analyst.sql_processes import run_statement
from kanda.central.query import (
    AnswerTooLarge,
    AsOf,
    DataUnavailable,
    NothingPublished,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    Resolved,
    UnknownPublication,
    fetch,
    parse_as_of,
    resolve,
)
from kanda.settings import Settings
from warehouse_models import published

MAX_PAGE = 100_000
#: The largest `offset`: DuckDB takes LIMIT and OFFSET as 64-bit integers, and a page's `next` link (offset + limit)
#: must fit too. Far beyond any rollup's rows; a larger value is a 422 like any other invalid parameter.
MAX_OFFSET = 10**18
FORMATS = ", ".join(("json", "csv", "parquet"))
#: Part of every cache key: bump it when the bytes of an answer change for the same request (format, columns).
ANSWER_VERSION = 4  # 3: money answers carry fees_stated; 4: a grouped fees_stated is NULL over unknown rows
#: Answers at a publication named by id never change; a client may keep them as long as it likes.
IMMUTABLE = "private, max-age=31536000, immutable"
ANSWER_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}
NOT_MODIFIED = {
    304: {
        "description": "Not Modified: the `If-None-Match` ETag is this answer's; nothing was run or sent. "
        "The API key is checked first, as on every request."
    }
}
ERRORS = {
    400: {"description": "The SQL does not bind or run (unknown column, wrong type, ...); the reason is given."},
    401: {"description": "No API key, an unknown one, or a revoked one."},
    403: {
        "description": "Refused: not a read-only query over the rollup tables, or a function that describes the server."
    },
    404: {"description": "Nothing published yet, or `as_of` names no publication."},
    406: {"description": "The rows cannot be written in the format asked for (nested values as CSV)."},
    408: {"description": "The query ran past its time limit and was stopped."},
    413: {"description": "The answer is larger than the size limit (stated); ask for fewer rows or columns."},
    422: {"description": "A parameter that is invalid or does not apply to the table; the reason is given."},
    429: {"description": "This API key has its share of the SQL processes busy already; retry after an answer."},
    503: {"description": "A data file of the publication is missing on the server; the table is named."},
}

RollupTable = StrEnum("RollupTable", {name: name for name in published()})  # type: ignore[misc]
FormatParam = Annotated[
    Literal["json", "csv", "parquet"] | None,
    Query(alias="format", description=f"Answer format ({FORMATS}); otherwise the Accept header, otherwise JSON."),
]
AsOfParam = Annotated[
    str | None,
    Query(
        description="Read an earlier publication: an ISO 8601 time (UTC without offset) selects the newest "
        "publication at or before it; a publish id or an Iceberg snapshot id (see /api/publications) selects it."
    ),
]
# Module-level so that FastAPI can resolve them from the (postponed) annotations of the dependency below.
bearer = HTTPBearer(auto_error=False, description="An analyst API key: `kanda keys create NAME`.")
header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header.")


@dataclass(frozen=True)
class Limits:
    sql_max_rows: int
    sql_timeout_seconds: float
    sql_max_bytes: int = 100_000_000
    #: How long a client may reuse an answer of the newest publication without asking (`Cache-Control`).
    max_age_seconds: int = 10

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            sql_max_rows=int(os.environ.get("KANDA_API_SQL_MAX_ROWS", "10000")),
            sql_timeout_seconds=float(os.environ.get("KANDA_API_SQL_TIMEOUT", "10")),
            sql_max_bytes=int(os.environ.get("KANDA_API_SQL_MAX_BYTES", "100000000")),
            max_age_seconds=int(os.environ.get("KANDA_API_MAX_AGE", "10")),
        )


class SqlRequest(BaseModel):
    sql: str = Field(
        description="One read-only SELECT over rollups.creator_daily, rollups.product_daily, rollups.region_daily, "
        "rollups.channel_daily "
        "or rollups.publications (EXPLAIN allowed).",
        examples=["select region, sum(net_usd_minor) as net_usd_minor from rollups.creator_daily group by 1"],
    )
    as_of: str | None = Field(None, description="As in the `as_of` query parameter.")
    max_rows: int | None = Field(None, ge=1, description="At most this many rows (capped by the server's limit).")
    timeout_seconds: float | None = Field(None, gt=0, description="Stop sooner than the server's time limit.")


# --- what the JSON answers hold (the OpenAPI schemas; CSV and Parquet carry the same rows) ------------------------


class PublicationInfo(BaseModel):
    """The publication an answer was read from: every answer names it."""

    publish_id: str = Field(description="The id `as_of` accepts.")
    region: str = Field(description="The region whose publish made it.")
    published_at: str = Field(description="When it became visible, ISO 8601 in UTC.")
    snapshots: dict[str, int | None] = Field(
        description="The Iceberg snapshot id of each rollup table (null: the table did not exist yet)."
    )


class Column(BaseModel):
    name: str
    type: str = Field(description="The Arrow type, e.g. string, int64, date32[day], decimal128(38, 0).")


class TableInfo(BaseModel):
    grain: list[str] = Field(description="The columns that identify a row of the rollup.")
    dimensions: list[str] = Field(description="What `group_by` and the filters accept.")
    measures: dict[str, list[str]] = Field(description="Summed columns, per `currency` (local, usd).")
    flags: list[str] = Field(
        description="Yes/no columns on how to read the money (fees_stated); when grouped, true only if for every row."
    )
    rates: list[str] = Field(description="Rates recomputed from their parts when grouped.")
    ungrouped_only: list[str] = Field(description="Columns only in the rollup's own rows (not additive).")


class RollupAnswer(BaseModel):
    publication: PublicationInfo
    table: str
    currency: Literal["local", "usd"]
    group_by: list[str] | None = Field(description="The dimensions grouped by (null: the rollup's own rows).")
    total: int | None = Field(description="Rows in the whole answer, with `count=true`; otherwise null.")
    limit: int
    offset: int
    next: str | None = Field(description="The URL of the next page; null on the last one.")
    columns: list[Column]
    rows: list[dict[str, Any]] = Field(description="One object per row; money in integer minor units.")


class SqlAnswer(BaseModel):
    publication: PublicationInfo
    row_count: int
    truncated: bool = Field(description="True when the row limit cut the answer short.")
    max_rows: int
    columns: list[Column]
    rows: list[dict[str, Any]]


class PublicationsAnswer(BaseModel):
    publication: PublicationInfo
    total: int
    columns: list[Column]
    rows: list[dict[str, Any]] = Field(
        description="publish_id, region, published_at, days, rows and each table's snapshot id, newest first."
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the `/api` routes on the application behind `kanda serve`, with the middleware that serves repeated
    requests from the answer cache before FastAPI parses them (`kanda.analyst.api_fast`)."""
    keys = KeyStore(settings.app_db_url)
    fast = FastAnswers(settings, keys, AnswerCache.from_env())
    app.include_router(build_router(settings, keys, Limits.from_env(), fast=fast))
    app.add_middleware(FastAnswerMiddleware, answers=fast)
    app.router.lifespan_context = _with_sql_processes(app.router.lifespan_context)


def _with_sql_processes(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The app's lifespan, with the processes that run analyst SQL started before the first request (so that it
    pays no start-up) and stopped at shutdown (`kanda.analyst.sql_processes`)."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        sql_processes.start()
        try:
            async with inner(app) as state:
                yield state
        finally:
            await run_in_threadpool(sql_processes.stop)

    return lifespan


def _next_page(
    request: Request,
    spec: RollupRequest,
    limit: int,
    offset: int,
    count: bool,
    fmt: str | None,
    as_of: str | None,
) -> str:
    """The next page's URL, from what the request asked for (as the route understood it), never its raw query
    string: an answer is cached and served to every analyst who asks the same, so nothing else of one analyst's
    request (an unknown parameter, a note) may travel in the link another analyst gets."""
    params: list[tuple[str, str]] = [("region", r) for r in spec.regions]
    params += [
        (name, day.isoformat()) for name, day in (("date_from", spec.date_from), ("date_to", spec.date_to)) if day
    ]
    params += [("creator", c) for c in spec.creators] + [("product", p) for p in spec.products]
    if spec.group_by is not None:
        params.append(("group_by", ",".join(spec.group_by)))
    params += [("currency", spec.currency), ("limit", str(limit)), ("offset", str(offset))]
    if count:
        params.append(("count", "true"))
    if fmt:
        params.append(("format", fmt))
    if as_of:
        params.append(("as_of", as_of))
    return str(request.url.replace(query=urlencode(params)))


def build_router(
    settings: Settings,
    keys: KeyStore,
    limits: Limits,
    cache: AnswerCache | None = None,
    *,
    fast: FastAnswers | None = None,
) -> APIRouter:
    answers = fast.cache if fast is not None else cache if cache is not None else AnswerCache.from_env()

    async def analyst(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        api_key: Annotated[str | None, Depends(header)],
    ) -> ApiKey:
        """Every request, cached answers and 304s included, is checked against the key table: a revoked key stops
        working at once, in every worker. A local SQLite lookup takes less than handing it to a thread would; a
        database server is asked from the thread pool, so that its round trip does not hold up other requests.
        The key is kept on the request: analyst SQL is shared out among keys."""
        token = credentials.credentials if credentials else api_key
        try:
            key = keys.authenticate(token) if keys.local else await run_in_threadpool(keys.authenticate, token)
        except InvalidKey as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        request.state.api_key = key
        return key

    router = APIRouter(prefix="/api", dependencies=[Depends(analyst)], responses=ERRORS)
    router.answer_cache = answers  # type: ignore[attr-defined]  # tests and operators read its counters

    computing: dict[str, asyncio.Future[Answer]] = {}

    async def computed_once(etag: str, compute: Callable[[], Answer]) -> Answer:
        """The answer, computed once for every request that asks for it meanwhile: a new publication's first
        requests (twenty clients of one dashboard, say) used to run one statement each, all alike, and one API
        key's share of the SQL processes refused the ones past it. A shared answer that must not be kept
        (`Answer.keep`: the clock or chance) is computed again for each request that waited for it."""
        flight = computing.get(etag)
        if flight is not None and flight.get_loop() is asyncio.get_running_loop():  # a test client's loops differ
            try:
                shared = await asyncio.shield(flight)
            except asyncio.CancelledError:
                if not flight.cancelled():  # this request itself was cancelled
                    raise
                shared = None  # the request computing it went away: compute it here
            return shared if shared is not None and shared.keep else await run_in_threadpool(compute)
        flight = asyncio.get_running_loop().create_future()
        flight.add_done_callback(lambda done: done.cancelled() or done.exception())  # never "not retrieved"
        computing[etag] = flight
        try:
            answer = await run_in_threadpool(compute)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(answer)
            return answer
        finally:
            if computing.get(etag) is flight:
                del computing[etag]

    async def serve(
        request: Request, key: tuple, resolved: Resolved, pinned: bool, compute: Callable[[], Answer], *, checked: bool
    ) -> Response:
        """The cached answer, a 304, or a computed one (then kept). `checked`: the key alone proves the request is
        acceptable (kanda's own SQL from validated parameters), so a matching ETag is answered without computing;
        analyst SQL is answered 304 only once this process has checked and run it."""
        etag = etag_of((ANSWER_VERSION, *key))
        validators = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE if pinned else f"private, max-age={limits.max_age_seconds}",
            "Vary": "Accept",
            **publication_headers(resolved.publication),
        }
        wanted = request.headers.get("if-none-match")
        answer = answers.get(etag)
        if matches(wanted, etag) and (answer is not None or checked):
            return Response(status_code=304, headers={**validators, "X-Kanda-Cache": "hit" if answer else "etag"})
        state = "hit"
        if answer is None:
            state = "miss"
            answer = await computed_once(etag, compute)
            if not answer.keep:  # tomorrow's answer differs at the same publication: no ETag, no copy anywhere
                headers = {k: v for k, v in validators.items() if k != "ETag"}
                headers.update({"Cache-Control": "no-store", "X-Kanda-Cache": "off"})
                return Response(answer.body, media_type=answer.media_type, headers={**answer.headers, **headers})
            answers.put(etag, answer)
        if fast is not None:  # the same bytes of request are answered before parsing from now on
            fast.remember(request.scope, await request.body(), resolved.location, etag, validators)
        if matches(wanted, etag):
            return Response(status_code=304, headers={**validators, "X-Kanda-Cache": state})
        return Response(
            answer.body,
            media_type=answer.media_type,
            headers={**answer.headers, **validators, "X-Kanda-Cache": state},
        )

    @router.get(
        "/rollups",
        tags=["rollups"],
        summary="The rollup tables, their dimensions and measures",
        response_model=dict[str, TableInfo],
    )
    async def tables() -> dict[str, TableInfo]:
        return {
            name: TableInfo(
                grain=list(published()[name]),
                dimensions=list(DIMENSIONS[name]),
                measures={currency: list(measures(name, currency)) for currency in ("local", "usd")},
                flags=[FEES_STATED] if name in MONEY_TABLES else [],
                rates=list(RATES.get(name, {})),
                ungrouped_only=list(ROW_ONLY.get(name, ())),
            )
            for name in published()
        }

    @router.get(
        "/rollups/{table}",
        tags=["rollups"],
        summary="Rollup rows, filtered, grouped and paged",
        response_model=RollupAnswer,
        responses={200: {"content": ANSWER_CONTENT}, **NOT_MODIFIED},
    )
    async def rollups(
        request: Request,
        table: Annotated[RollupTable, PathParam(description="A published rollup table.")],
        region: Annotated[list[str] | None, Query(description="Region code(s), e.g. KE (repeatable).")] = None,
        date_from: Annotated[dt.date | None, Query(description="First local day (inclusive).")] = None,
        date_to: Annotated[dt.date | None, Query(description="Last local day (inclusive).")] = None,
        creator: Annotated[list[str] | None, Query(description="Creator id(s) (repeatable).")] = None,
        product: Annotated[list[str] | None, Query(description="Product id(s), product_daily only.")] = None,
        group_by: Annotated[
            list[str] | None,
            Query(
                description="Dimensions to group by (repeatable or comma-separated): region, local_date, month, "
                "creator_id, product_id, channel, currency, as the table has them. Measures are summed. Absent: the "
                "rollup's own rows. Empty: one total. In local currency `currency` is always added, so "
                "sums never mix currencies."
            ),
        ] = None,
        currency: Annotated[
            Literal["local", "usd"],
            Query(description="local: *_minor columns in each row's currency; usd: net_usd_minor, in US cents."),
        ] = "local",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")] = 1000,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (see `next`).")] = 0,
        count: Annotated[
            bool,
            Query(description="Also count the rows of the whole answer (`total`, `X-Total-Count`): a second query."),
        ] = False,
        fmt: FormatParam = None,
        as_of: AsOfParam = None,
    ) -> Response:
        """Rows of `creator_daily`, `product_daily`, `region_daily` or `channel_daily`, in the format asked for.

        JSON: `{publication, table, currency, group_by, total, limit, offset, next, columns, rows}`. CSV and
        Parquet: the rows; `Link: <...>; rel="next"`, `X-Kanda-Publication` (and with `count=true`
        `X-Total-Count`) headers. One query per page: the page is read one row long to know whether another follows.
        Answers carry an `ETag`; send it back as `If-None-Match` for a `304 Not Modified`.
        """
        grouping = None if group_by is None else [g.strip() for part in group_by for g in part.split(",") if g.strip()]
        spec = RollupRequest(
            table=table.value,
            regions=canonical_ids(region),
            date_from=date_from,
            date_to=date_to,
            creators=canonical_ids(creator),
            products=canonical_ids(product),
            group_by=grouping,
            currency=currency,
        )
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering():
            sql, params = rollup_sql(spec)  # refuses what does not apply before anything is looked up
            moment = _as_of(as_of)
            resolved = resolve(settings, as_of=moment)
        timeout, size = limits.sql_timeout_seconds, limits.sql_max_bytes

        def compute() -> Answer:
            with _answering(), shared_reader(settings, resolved=resolved) as central:
                page = fetch(
                    central,
                    f"{sql} LIMIT ? OFFSET ?",
                    [*params, limit + 1, offset],
                    max_bytes=size,
                    timeout_seconds=timeout,
                )
                total = None
                if count:
                    counted = fetch(central, f"SELECT count(*) AS n FROM ({sql})", params, timeout_seconds=timeout)
                    total = counted.table.column("n")[0].as_py()
            more = page.table.num_rows > limit
            following = _next_page(request, spec, limit, offset + limit, count, fmt, as_of) if more else None
            meta = {
                "publication": publication_json(page.publication),
                "table": spec.table,
                "currency": spec.currency,
                "group_by": spec.group_by,
                "total": total,
                "limit": limit,
                "offset": offset,
                "next": following,
            }
            headers = {} if total is None else {"X-Total-Count": str(total)}
            if following:
                headers["Link"] = f'<{following}>; rel="next"'
            return _answer(page.table.slice(0, limit), chosen, meta, headers, f"{spec.table}.{chosen}")

        # The `next` link names the host the client used and the request's own parameters (as_of pinned or not),
        # so they are part of what the answer depends on; parameters the route does not know are left out of both.
        key = (
            "rollups", resolved.publication.publish_id, str(request.base_url), spec, limit, offset, count, chosen,
            fmt, as_of,
        )  # fmt: skip
        return await serve(request, key, resolved, _pinned(moment), compute, checked=True)

    @router.post(
        "/sql",
        tags=["sql"],
        summary="Read-only SQL over the rollup tables",
        response_model=SqlAnswer,
        responses={200: {"content": ANSWER_CONTENT}, **NOT_MODIFIED},
    )
    async def sql(request: Request, body: SqlRequest, fmt: FormatParam = None) -> Response:
        """One SELECT over `rollups.<table>`, with a row limit (`truncated` says when it applied) and a time limit.

        Writes (also inside a WITH clause), `COPY`, `ATTACH`, `SET`, `PRAGMA`, `INSTALL`/`LOAD`, `EXPORT`, `CALL`,
        several statements, table functions other than `range`, `generate_series` and `unnest`, and functions that
        describe the server (`current_setting`, `getenv`, `duckdb_*`, `pragma_*`) are refused with 403 and the
        reason. An answer over the size limit is refused with 413.
        JSON: `{publication, row_count, truncated, max_rows, columns, rows}`; CSV and Parquet: the rows, with
        `X-Kanda-Truncated` and `X-Kanda-Publication` headers. The same statement at the same publication is
        answered from the cache (`X-Kanda-Cache: hit`), with an `ETag` for `If-None-Match`.
        """
        max_rows = min(body.max_rows or limits.sql_max_rows, limits.sql_max_rows)
        timeout = min(body.timeout_seconds or limits.sql_timeout_seconds, limits.sql_timeout_seconds)
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering():
            moment = _as_of(body.as_of)
            resolved = resolve(settings, as_of=moment)

        def compute() -> Answer:
            with _answering():
                # checked, and run, in a process that the time limit stops (`kanda.analyst.sql_processes`)
                result, varies = run_statement(
                    settings,
                    resolved,
                    body.sql,
                    max_rows=max_rows,
                    max_bytes=limits.sql_max_bytes,
                    timeout_seconds=timeout,
                    holder=request.state.api_key.name,
                )
            meta = {
                "publication": publication_json(result.publication),
                "row_count": result.table.num_rows,
                "truncated": result.truncated,
                "max_rows": max_rows,
            }
            headers = {"X-Kanda-Truncated": str(result.truncated).lower()}
            return _answer(result.table, chosen, meta, headers, f"query.{chosen}", keep=not varies)

        key = ("sql", resolved.publication.publish_id, body.sql, max_rows, chosen)
        return await serve(request, key, resolved, _pinned(moment), compute, checked=False)

    @router.get(
        "/publications",
        tags=["publications"],
        summary="Publication history: the ids `as_of` accepts",
        response_model=PublicationsAnswer,
        responses={200: {"content": ANSWER_CONTENT}, **NOT_MODIFIED},
    )
    async def publications(request: Request, fmt: FormatParam = None, as_of: AsOfParam = None) -> Response:
        """Every complete publication, newest first: publish id, region, time, days and rows, and the Iceberg
        snapshot id of each rollup table. With `as_of`, the history as it was then."""
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering():
            moment = _as_of(as_of)
            resolved = resolve(settings, as_of=moment)

        def compute() -> Answer:
            with _answering(), shared_reader(settings, resolved=resolved) as central:
                result = fetch(
                    central,
                    "SELECT * FROM rollups.publications ORDER BY published_at DESC, publish_id DESC",
                    timeout_seconds=limits.sql_timeout_seconds,
                )
            meta = {"publication": publication_json(result.publication), "total": result.table.num_rows}
            return _answer(result.table, chosen, meta, {}, f"publications.{chosen}")

        key = ("publications", resolved.publication.publish_id, chosen)
        return await serve(request, key, resolved, _pinned(moment), compute, checked=True)

    return router


def _pinned(moment: AsOf | None) -> bool:
    """An id names one publication for ever; a time may name a newer one once it is published."""
    return isinstance(moment, str)


def _as_of(text: str | None) -> AsOf | None:
    return parse_as_of(text) if text and text.strip() else None


@contextmanager
def _answering() -> Iterator[None]:
    """kanda's own errors as HTTP answers with their message; anything else stays a 500."""
    try:
        yield
    except QueryRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except (UnknownPublication, NothingPublished) as exc:
        raise HTTPException(404, str(exc)) from None
    except QueryTimeout as exc:
        raise HTTPException(408, str(exc)) from None
    except AnswerTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except BadRollupRequest as exc:
        raise HTTPException(422, str(exc)) from None
    except sql_processes.KeyBusy as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "1"}) from None
    except DataUnavailable as exc:  # the server's fault, not the query's: retry after an operator restores it
        raise HTTPException(503, str(exc)) from None
    except sqlalchemy.exc.DBAPIError as exc:  # the catalog's database down or restarting (never the analyst's SQL)
        problem = f"the central catalog's database cannot be reached ({type(exc.orig).__name__}); retry later"
        raise HTTPException(503, problem, headers={"Retry-After": "30"}) from None
    except QueryFailed as exc:  # the analyst's SQL does not bind, a type is wrong, ...
        raise HTTPException(400, f"query failed: {exc}") from None
    except duckdb.Error as exc:
        raise HTTPException(400, f"query failed: {str(exc).splitlines()[0]}") from None
    except MemoryError:  # past the worker's address-space cap (KANDA_ANALYST_MEMORY), in Python's part of the work
        raise HTTPException(413, "the answer needs more memory than one request may use here") from None


def _answer(
    table, fmt, meta: dict[str, object], headers: dict[str, str], filename: str, *, keep: bool = True
) -> Answer:
    try:
        body, media_type = render(table, fmt, meta)
    except UnsupportedFormat as exc:
        raise HTTPException(406, str(exc)) from None
    if fmt != "json":
        headers = {**headers, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Answer(body, media_type, headers, keep=keep)


__all__ = ["Limits", "build_router", "install"]
