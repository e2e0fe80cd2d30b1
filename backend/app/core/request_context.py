"""The request being served: its id, method, path and user, in a contextvar.

The HTTP middleware (app.api.context_middleware) makes each request's context current; log lines
(app.core.logging), audit events and error bodies of that request name it. A script or a test can
make one current too (`request_context()`).

The context object is shared, not copied: code running in the threadpool (sync routes and
dependencies) sees the same object, so `set_user_id()` there is visible to the access log.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    request_id: str
    method: str
    path: str
    user_id: int | None = None
    # Headers the middleware adds to the response, whatever it is (an error included): e.g. an API
    # token's RateLimit-* headers, known once the token is checked.
    response_headers: dict[str, str] = field(default_factory=dict)


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


def add_response_headers(headers: dict[str, str]) -> None:
    """Headers for the current request's response (app.api.context_middleware adds them)."""
    context = _current.get()
    if context is not None:
        context.response_headers.update(headers)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_context(request_id: str, method: str = "", path: str = "") -> Iterator[RequestContext]:
    """Make `request_id` current for the block (the middleware; also handy in tests and scripts)."""
    context = RequestContext(request_id=request_id, method=method, path=path)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
