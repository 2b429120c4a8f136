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
either. An answer over `KANDA_API_SQL_MAX_BYTES` (default 100,000,000 bytes of Arrow data), or too large for one
Arrow batch at all, is refused with 413 and the limit. Rollup answers are paged (`limit` at most 100,000) and share
the time and size limits.

The database behind every answer is a read-only DuckDB file of the publication (`kanda.central.reader_files`), so
no request can change what another one reads, whatever the statement check lets through.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

import duckdb
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from kanda.analyst.api_formats import (
    UnsupportedFormat,
    pick_format,
    publication_headers,
    publication_json,
    render,
)
from kanda.analyst.api_rollups import (
    DIMENSIONS,
    RATES,
    ROW_ONLY,
    BadRollupRequest,
    RollupRequest,
    measures,
    rollup_sql,
)
from kanda.analyst.keys import ApiKey, InvalidKey, KeyStore
from kanda.analyst.reader_pool import shared_reader
from kanda.central.query import (
    AnswerTooLarge,
    DataUnavailable,
    NothingPublished,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    UnknownPublication,
    execute,
    fetch,
    parse_as_of,
)
from kanda.settings import Settings
from warehouse_models import published

MAX_PAGE = 100_000
FORMATS = ", ".join(("json", "csv", "parquet"))
ANSWER_CONTENT = {
    "application/json": {},
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
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

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            sql_max_rows=int(os.environ.get("KANDA_API_SQL_MAX_ROWS", "10000")),
            sql_timeout_seconds=float(os.environ.get("KANDA_API_SQL_TIMEOUT", "10")),
            sql_max_bytes=int(os.environ.get("KANDA_API_SQL_MAX_BYTES", "100000000")),
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


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the `/api` routes on the application behind `kanda serve`."""
    app.include_router(build_router(settings, KeyStore(settings.app_db_url), Limits.from_env()))


def build_router(settings: Settings, keys: KeyStore, limits: Limits) -> APIRouter:
    def analyst(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        api_key: Annotated[str | None, Depends(header)],
    ) -> ApiKey:
        token = credentials.credentials if credentials else api_key
        try:
            return keys.authenticate(token)
        except InvalidKey as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    router = APIRouter(prefix="/api", dependencies=[Depends(analyst)], responses=ERRORS)

    @router.get("/rollups", tags=["rollups"], summary="The rollup tables, their dimensions and measures")
    def tables() -> dict[str, object]:
        return {
            name: {
                "grain": list(published()[name]),
                "dimensions": list(DIMENSIONS[name]),
                "measures": {currency: list(measures(name, currency)) for currency in ("local", "usd")},
                "rates": list(RATES.get(name, {})),
                "ungrouped_only": list(ROW_ONLY.get(name, ())),
            }
            for name in published()
        }

    @router.get(
        "/rollups/{table}",
        tags=["rollups"],
        summary="Rollup rows, filtered, grouped and paged",
        responses={200: {"content": ANSWER_CONTENT}},
    )
    def rollups(
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
        offset: Annotated[int, Query(ge=0, description="Rows to skip (see `next`).")] = 0,
        fmt: FormatParam = None,
        as_of: AsOfParam = None,
    ) -> Response:
        """Rows of `creator_daily`, `product_daily`, `region_daily` or `channel_daily`, in the format asked for.

        JSON: `{publication, table, currency, group_by, total, limit, offset, next, columns, rows}`. CSV and
        Parquet: the rows; `X-Total-Count`, `Link: <...>; rel="next"` and `X-Kanda-Publication` headers.
        """
        grouping = None if group_by is None else [g.strip() for part in group_by for g in part.split(",") if g.strip()]
        spec = RollupRequest(
            table=table.value,
            regions=region or [],
            date_from=date_from,
            date_to=date_to,
            creators=creator or [],
            products=product or [],
            group_by=grouping,
            currency=currency,
        )
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering(), shared_reader(settings, as_of=_as_of(as_of)) as central:
            sql, params = rollup_sql(spec)
            timeout, size = limits.sql_timeout_seconds, limits.sql_max_bytes
            total = fetch(central, f"SELECT count(*) AS n FROM ({sql})", params, timeout_seconds=timeout)
            count = total.table.column("n")[0].as_py()
            page = fetch(
                central, f"{sql} LIMIT ? OFFSET ?", [*params, limit, offset], max_bytes=size, timeout_seconds=timeout
            )
        following = str(request.url.include_query_params(offset=offset + limit)) if offset + limit < count else None
        meta = {
            "publication": publication_json(page.publication),
            "table": spec.table,
            "currency": spec.currency,
            "group_by": spec.group_by,
            "total": count,
            "limit": limit,
            "offset": offset,
            "next": following,
        }
        headers = {**publication_headers(page.publication), "X-Total-Count": str(count)}
        if following:
            headers["Link"] = f'<{following}>; rel="next"'
        return _respond(page.table, chosen, meta, headers, f"{spec.table}.{chosen}")

    @router.post(
        "/sql",
        tags=["sql"],
        summary="Read-only SQL over the rollup tables",
        responses={200: {"content": ANSWER_CONTENT}},
    )
    def sql(request: Request, body: SqlRequest, fmt: FormatParam = None) -> Response:
        """One SELECT over `rollups.<table>`, with a row limit (`truncated` says when it applied) and a time limit.

        Writes (also inside a WITH clause), `COPY`, `ATTACH`, `SET`, `PRAGMA`, `INSTALL`/`LOAD`, `EXPORT`, `CALL`,
        several statements, table functions other than `range`, `generate_series` and `unnest`, and functions that
        describe the server (`current_setting`, `getenv`, `duckdb_*`, `pragma_*`) are refused with 403 and the
        reason. An answer over the size limit is refused with 413.
        JSON: `{publication, row_count, truncated, max_rows, columns, rows}`; CSV and Parquet: the rows, with
        `X-Kanda-Truncated` and `X-Kanda-Publication` headers.
        """
        max_rows = min(body.max_rows or limits.sql_max_rows, limits.sql_max_rows)
        timeout = min(body.timeout_seconds or limits.sql_timeout_seconds, limits.sql_timeout_seconds)
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering(), shared_reader(settings, as_of=_as_of(body.as_of)) as central:
            result = execute(
                central, body.sql, max_rows=max_rows, max_bytes=limits.sql_max_bytes, timeout_seconds=timeout
            )
        meta = {
            "publication": publication_json(result.publication),
            "row_count": result.table.num_rows,
            "truncated": result.truncated,
            "max_rows": max_rows,
        }
        headers = {**publication_headers(result.publication), "X-Kanda-Truncated": str(result.truncated).lower()}
        return _respond(result.table, chosen, meta, headers, f"query.{chosen}")

    @router.get(
        "/publications",
        tags=["publications"],
        summary="Publication history: the ids `as_of` accepts",
        responses={200: {"content": ANSWER_CONTENT}},
    )
    def publications(request: Request, fmt: FormatParam = None, as_of: AsOfParam = None) -> Response:
        """Every complete publication, newest first: publish id, region, time, days and rows, and the Iceberg
        snapshot id of each rollup table. With `as_of`, the history as it was then."""
        chosen = pick_format(fmt, request.headers.get("accept"))
        with _answering(), shared_reader(settings, as_of=_as_of(as_of)) as central:
            result = fetch(
                central,
                "SELECT * FROM rollups.publications ORDER BY published_at DESC, publish_id DESC",
                timeout_seconds=limits.sql_timeout_seconds,
            )
        meta = {"publication": publication_json(result.publication), "total": result.table.num_rows}
        return _respond(result.table, chosen, meta, publication_headers(result.publication), f"publications.{chosen}")

    return router


def _as_of(text: str | None):
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
    except DataUnavailable as exc:  # the server's fault, not the query's: retry after an operator restores it
        raise HTTPException(503, str(exc)) from None
    except QueryFailed as exc:  # the analyst's SQL does not bind, a type is wrong, ...
        raise HTTPException(400, f"query failed: {exc}") from None
    except duckdb.Error as exc:
        raise HTTPException(400, f"query failed: {str(exc).splitlines()[0]}") from None


def _respond(table, fmt, meta: dict[str, object], headers: dict[str, str], filename: str) -> Response:
    try:
        body, media_type = render(table, fmt, meta)
    except UnsupportedFormat as exc:
        raise HTTPException(406, str(exc)) from None
    if fmt != "json":
        headers = {**headers, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media_type, headers=headers)


__all__ = ["Limits", "build_router", "install"]
