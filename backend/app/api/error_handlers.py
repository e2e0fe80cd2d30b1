"""How errors become responses: the exception handlers and the catch-all for the rest (500).

Every error body is `{"detail": ..., "request_id": ...}` (app.api.error_body). Domain errors
(app.core.errors) map to one status each (STATUS_FOR); FastAPI's 422s never echo a rejected secret;
a 405 names every method of its path; a database that cannot be reached (or whose schema is behind
head) answers 503 with Retry-After; anything else is logged with its traceback and answered 500.
"""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.asgi import ResponseTracker
from app.api.context_middleware import KNOWN_METHODS
from app.api.error_body import error_response
from app.core.database import get_async_engine
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
from app.core.migrations import current_revision, head_revision, missing_schema

error_log = logging.getLogger("app.errors")

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
    if missing_schema(exc):
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


def add_error_handlers(application: FastAPI) -> None:
    """The handlers above, on `application` (app.main adds UnhandledErrorMiddleware, the 500 catch-all)."""
    application.add_exception_handler(DomainError, domain_error)
    application.add_exception_handler(HTTPException, http_error)
    application.add_exception_handler(RequestValidationError, validation_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError, ProgrammingError):
        application.add_exception_handler(unavailable, database_unavailable)
