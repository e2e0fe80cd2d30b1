"""The ASGI application: `fastapi run app/main.py` (or `uvicorn app.main:app`) serves `app`.

Layers, outermost first: the client address behind trusted proxies (only with FORWARDED_ALLOW_IPS),
request context (X-Request-ID, access log, metrics), security headers, CORS, the catch-all for
unhandled errors (500), the API request deadline (503), the body size limit (413), then FastAPI
with the exception handlers of app.api.error_handlers. Every error body is
`{"detail": ..., "request_id": ...}` (app.api.error_body).
"""

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api.context_middleware import REQUEST_ID_HEADER, RequestContextMiddleware
from app.api.deadline import DeadlineMiddleware
from app.api.docs import add_docs
from app.api.error_handlers import UnhandledErrorMiddleware, add_error_handlers, schema_behind
from app.api.limits import BodySizeLimitMiddleware
from app.api.main import API_ROUTERS
from app.api.openapi import complete, operation_id
from app.api.routes import ops
from app.api.routing import OVERRIDES
from app.api.security_headers import SecurityHeadersMiddleware
from app.core.config import API_V1_STR, ConfigError, Settings, get_settings
from app.core.database import dispose_async_engine, get_async_engine
from app.core.logging import configure_logging, log_format
from app.core.metrics import Metrics
from app.models import TicketStatus

startup_log = logging.getLogger("app.startup")

# Response headers a browser page may read (CORS).
EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", REQUEST_ID_HEADER, "Idempotent-Replayed"]


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

    add_error_handlers(application)
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
