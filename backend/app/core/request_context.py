"""The request being served: its id, method, path and user, and the middleware that sets them.

`RequestContextMiddleware` is the outermost layer. For each HTTP request it takes the client's
`X-Request-ID` when well-formed (else makes one), makes it the current context (a contextvar, so log
lines, audit events and error bodies of this request can name it), returns it on the response,
writes one access log line when the response is done, and feeds the request metrics.

The context object is shared, not copied: code running in the threadpool (sync routes and
dependencies) sees the same object, so `set_user_id()` there is visible to the access log.
"""

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger("app.access")


@dataclass
class RequestContext:
    request_id: str
    method: str
    path: str
    user_id: int | None = None


_current: ContextVar[RequestContext | None] = ContextVar("incident_desk_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request being served; None outside a request (the CLI, the seed, a test)."""
    context = _current.get()
    return context.request_id if context else None


def set_user_id(user_id: int | None) -> None:
    """Name the authenticated user of the current request (for the access log); no-op outside one."""
    context = _current.get()
    if context is not None:
        context.user_id = user_id


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The client's id when well-formed (1-128 of `A-Za-z0-9._:-`), else a new one."""
    if value is not None and WELL_FORMED_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


@contextmanager
def request_context(request_id: str, method: str = "", path: str = "") -> Iterator[RequestContext]:
    """Make `request_id` current for the block (the middleware; also handy in tests and scripts)."""
    context = RequestContext(request_id=request_id, method=method, path=path)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request (e.g. `/api/v1/tickets/{ticket_id}`).

    Never the raw path: metric labels must have bounded cardinality. FastAPI keeps the template of
    a route included with a prefix in its routing context; a plain Starlette route has it itself.
    """
    routing = scope.get("fastapi")
    effective = routing.get("effective_route_context") if isinstance(routing, dict) else None
    template = getattr(effective, "path_format", None)
    if isinstance(template, str):
        return template
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class RequestObserver(Protocol):
    """What the middleware reports to (app.core.metrics.Metrics)."""

    def request_started(self) -> None: ...

    def request_finished(self, *, method: str, route: str, status: int, seconds: float) -> None: ...


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = accept_request_id(header.decode("latin-1") if header is not None else None)
        method = scope["method"]
        status = 500  # if the app dies before it answers, the server answers 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        if self.observer is not None:
            self.observer.request_started()
        with request_context(request_id, method, scope["path"]):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope)
                if self.observer is not None:
                    label = method if method in KNOWN_METHODS else "other"
                    self.observer.request_finished(method=label, route=route, status=status, seconds=seconds)
                access_log.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },  # request_id and user_id: stamped on every record (app.core.logging)
                )
