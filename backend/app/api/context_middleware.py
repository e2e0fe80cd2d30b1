"""The request-context middleware: X-Request-ID, the access log line and the request metrics.

`RequestContextMiddleware` is the outermost layer. For each HTTP request it takes the client's `X-Request-ID` when well-formed (else makes one), makes
it the current request context (app.core.request_context), returns it on the response, writes one
access log line when the response is done, and feeds the request metrics (a RequestObserver:
app.core.metrics.Metrics).
"""

import logging
import re
import time
from typing import Protocol

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.request_context import new_request_id, request_context

REQUEST_ID_HEADER = "X-Request-ID"
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger("app.access")


def accept_request_id(value: str | None) -> str:
    """The client's id when well-formed (1-128 of `A-Za-z0-9._:-`), else a new one."""
    if value is not None and WELL_FORMED_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


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
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                for name, value in context.response_headers.items():
                    headers[name] = value
            await send(message)

        if self.observer is not None:
            self.observer.request_started()
        with request_context(request_id, method, scope["path"]) as context:
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
