"""The ASGI application: `fastapi run app/main.py` (or `uvicorn app.main:app`) serves `app`.

Layers, outermost first: the client address behind trusted proxies (only with FORWARDED_ALLOW_IPS),
request context (X-Request-ID, access log, metrics), security headers, CORS, the catch-all for
unhandled errors (500), the API request deadline (503), the body size limit (413), then FastAPI
with the handlers below. Every
error body is `{"detail": ..., "request_id": ...}` (app.core.error_body).
"""

import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api.deadline import DeadlineMiddleware
from app.api.docs import add_docs
from app.api.main import API_ROUTERS
from app.api.openapi import complete, operation_id
from app.api.routes import ops
from app.api.routing import OVERRIDES
from app.api.security_headers import SecurityHeadersMiddleware
from app.core.asgi import ResponseTracker
from app.core.config import API_V1_STR, ConfigError, Settings, get_settings
from app.core.database import dispose_async_engine, get_async_engine
from app.core.error_body import error_response
from app.core.errors import (
    BadCredentials,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    StaleVersion,
    Throttled,
)
from app.core.limits import BodySizeLimitMiddleware
from app.core.logging import configure_logging
from app.core.metrics import Metrics
from app.core.migrations import current_revision, head_revision
from app.core.request_context import KNOWN_METHODS, REQUEST_ID_HEADER, RequestContextMiddleware
from app.models import TicketStatus

error_log = logging.getLogger("app.errors")
startup_log = logging.getLogger("app.startup")

# How each kind of domain error reaches the client.
STATUS_FOR: dict[type[DomainError], int] = {
    BadCredentials: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StaleVersion: 412,
    Invalid: 422,
    Throttled: 429,
}
DATABASE_UNAVAILABLE = "Database unavailable, try again shortly"
# Response headers a browser page may read (CORS).
EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", REQUEST_ID_HEADER, "Idempotent-Replayed"]


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = next(code for kind, code in STATUS_FOR.items() if isinstance(exc, kind))
    if isinstance(exc, Invalid):  # the same shape as FastAPI's own 422s
        detail = [{"type": exc.kind, "loc": ["body", exc.field], "msg": exc.detail}]
        return error_response(status, detail)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return error_response(status, exc.detail, headers=headers, **jsonable_encoder(exc.extra))


def allowed_methods(request: Request) -> str | None:
    """Every documented method of the path the request names (Starlette's 405 names only the first
    route's, e.g. `GET` for /tickets/{id} which also takes PATCH and DELETE); None if undocumented.

    The path templates come from the OpenAPI document; a literal segment beats a parameter (so
    /users/me is not /users/{user_id}), as in the order the routes are matched.
    """
    table: list[tuple[re.Pattern[str], int, frozenset[str]]] | None = getattr(
        request.app.state, "allow", None
    )
    if table is None:
        table = []
        for template, operations in request.app.openapi().get("paths", {}).items():
            pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
            regex = re.compile(re.sub(r"\{[^/]+?\}", "[^/]+", pattern) + "$")
            methods = {method.upper() for method in operations if method.upper() in KNOWN_METHODS}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((regex, template.count("{"), frozenset(methods)))
        request.app.state.allow = table
    path = request.url.path
    matches = sorted((params, methods) for regex, params, methods in table if regex.match(path))
    return ", ".join(sorted(matches[0][1])) if matches else None


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405 and (allow := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    return error_response(exc.status_code, exc.detail, headers=headers)


# Fields whose rejected value must never be echoed back in a 422 (or land in a log).
SECRET_FIELDS = frozenset({"password", "current_password", "new_password", "client_secret", "token"})


def _client_facing(error: dict[str, Any]) -> dict[str, Any]:
    """A field error as the client gets it: a rejected secret is never echoed (`input` dropped),
    and a body that is not JSON says why in `msg` (FastAPI puts only "JSON decode error" there)."""
    location = error.get("loc") or ()
    if location and location[-1] in SECRET_FIELDS:
        error = {key: value for key, value in error.items() if key != "input"}
    if error.get("type") == "json_invalid" and (reason := (error.get("ctx") or {}).get("error")):
        error = {**error, "msg": f"Invalid JSON: {reason}"}
    return error


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, jsonable_encoder([_client_facing(error) for error in exc.errors()]))


SCHEMA_BEHIND = "Database schema is not at head; run `db migrate`"
# What a query says when a table or column it needs is missing: SQLite's messages, PostgreSQL's codes.
_MISSING_SCHEMA_TEXT = ("no such table", "no such column")
_MISSING_SCHEMA_CODES = frozenset({"42P01", "42703"})  # undefined_table, undefined_column


def _missing_schema(exc: Exception) -> bool:
    original = getattr(exc, "orig", None)
    if getattr(original, "sqlstate", None) in _MISSING_SCHEMA_CODES:
        return True
    return any(text in str(original or "") for text in _MISSING_SCHEMA_TEXT)


async def schema_behind() -> tuple[str | None, str] | None:
    """(current revision, head) when the database answers but is not migrated to head, else None."""
    head = head_revision()
    async with get_async_engine().connect() as connection:  # a read: no write lock on SQLite
        current = await connection.run_sync(current_revision)
        await connection.rollback()
    return None if current == head else (current, head)


def describe_database_error(exc: Exception) -> str:
    """The class, the driver's SQLSTATE when it has one, and the driver's first line: enough to tell
    a pool timeout from a lock timeout (55P03), a deadlock (40P01) or a lost server, no traceback."""
    original = getattr(exc, "orig", None)
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    message = str(original if original is not None else exc).strip().splitlines()
    parts = [type(exc).__name__, f"SQLSTATE {sqlstate}" if sqlstate else "", message[0] if message else ""]
    return ": ".join(part for part in parts if part)[:300]


async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    if _missing_schema(exc):
        behind = await schema_behind()
        if behind is not None:
            error_log.warning(
                "database schema at %s, head %s: run `db migrate`", behind[0] or "base (empty)", behind[1]
            )
            return error_response(503, SCHEMA_BEHIND, headers={"Retry-After": "10"})
        if isinstance(exc, ProgrammingError):  # at head, yet missing: a bug, not the operator's
            raise exc
    elif isinstance(exc, ProgrammingError):
        raise exc
    error_log.warning("database unavailable: %s", describe_database_error(exc))
    return error_response(503, DATABASE_UNAVAILABLE, headers={"Retry-After": "2"})


async def startup_checks(settings: Settings) -> None:
    """One line each for what a developer should fix: placeholders, an unmigrated database."""
    for warning in settings.development_warnings() if settings.ENVIRONMENT == "local" else []:
        startup_log.warning(warning)
    try:
        behind = await schema_behind()
    except SQLAlchemyError as exc:
        startup_log.warning(
            "database unreachable at startup (%s); requests answer 503 until it is back", type(exc).__name__
        )
        return
    if behind is not None:
        startup_log.warning(
            "database schema at %s, head %s: the API answers 503 until `db migrate` runs",
            behind[0] or "base (empty)",
            behind[1],
        )


class UnhandledErrorMiddleware:
    """An exception no handler took: logged with its traceback, answered 500 with only the request
    id (never the exception's text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = ResponseTracker(send)
        try:
            await self.app(scope, receive, response.send)
        except Exception:
            error_log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response.started:  # too late for a 500: the server drops the connection
                raise
            await error_response(500, "Internal server error")(scope, receive, send)


def log_format(settings: Settings) -> str:
    if settings.LOG_FORMAT != "auto":
        return settings.LOG_FORMAT
    return "console" if settings.ENVIRONMENT == "local" else "json"


def _completed_openapi(application: FastAPI) -> Callable[[], dict[str, Any]]:
    build = application.openapi

    def openapi() -> dict[str, Any]:
        if application.openapi_schema is None:
            complete(build())
        assert application.openapi_schema is not None
        return application.openapi_schema

    return openapi


DESCRIPTION = """Incident & ticket management API for IT operations teams.

Log in with `POST /api/v1/login/access-token` (OAuth2 password form; Swagger's **Authorize**) and
send `Authorization: Bearer <token>`.

**Input rules.** Bodies are UTF-8 JSON objects; unknown fields are refused. Text fields refuse NUL
characters and lone UTF-16 surrogates, numbers must be finite, ids are JSON integers and flags JSON
booleans. Trimmed text fields (titles, names, comments) may not be blank. In PATCH bodies, leaving a
field out keeps it; `null` clears a field that may be empty and is refused for the others. Every
list refuses query parameters it does not know.

**Answers.** Every response carries `X-Request-ID`. Errors are `{"detail": ..., "request_id": ...}`
(422: `detail` lists the problems). Ticket responses carry an `ETag`; send it back in `If-Match` on
a PATCH or DELETE to refuse lost updates (412). Creates take an `Idempotency-Key` for safe retries.
"""


def create_app() -> FastAPI:
    settings = get_settings()
    fmt = log_format(settings)
    configure_logging(settings.LOG_LEVEL, fmt)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Again at startup: the server may have configured its own loggers after the import.
        configure_logging(settings.LOG_LEVEL, fmt)
        await startup_checks(settings)
        yield
        # The pool's connections belong to this event loop: close them while it still runs.
        await dispose_async_engine()

    application = FastAPI(
        title=settings.PROJECT_NAME,
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
        openapi_url=f"{API_V1_STR}/openapi.json",
        docs_url=None,  # app.api.docs serves /docs and /redoc with local assets
        redoc_url=None,
        lifespan=lifespan,
    )
    metrics = Metrics(get_async_engine, [status.value for status in TicketStatus])
    application.state.metrics = metrics

    application.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    application.add_middleware(
        DeadlineMiddleware, prefix=API_V1_STR, seconds=settings.API_REQUEST_TIMEOUT_SECONDS
    )
    application.add_middleware(UnhandledErrorMiddleware)
    if settings.all_cors_origins:
        application.add_middleware(
            CORSMiddleware,
            allow_origins=settings.all_cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
        )
    application.add_middleware(SecurityHeadersMiddleware)
    application.add_middleware(RequestContextMiddleware, observer=metrics)
    if settings.FORWARDED_ALLOW_IPS:
        # Outermost: the request context, the access log and login throttling see the client
        # behind a trusted proxy. Nobody is trusted by default (the servers run --no-proxy-headers).
        application.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.FORWARDED_ALLOW_IPS)

    application.add_exception_handler(DomainError, domain_error)
    application.add_exception_handler(HTTPException, http_error)
    application.add_exception_handler(RequestValidationError, validation_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError, ProgrammingError):
        application.add_exception_handler(unavailable, database_unavailable)
    application.dependency_overrides = OVERRIDES.dependency_overrides  # shared with the routers
    for router in (*API_ROUTERS, ops.router):
        application.router.routes.extend(router.routes)  # one flat route table (app.api.routing)
    add_docs(application)
    application.openapi = _completed_openapi(application)  # type: ignore[method-assign]
    return application


try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"incident-desk: {exc}")
