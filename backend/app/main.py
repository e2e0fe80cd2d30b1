"""The ASGI application: `fastapi run app/main.py` serves `app`."""

import sys

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.middleware.cors import CORSMiddleware

from app.api.main import api_router
from app.api.routes import ops
from app.core.config import API_V1_STR, ConfigError, get_settings
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


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = next(code for kind, code in STATUS_FOR.items() if isinstance(exc, kind))
    if isinstance(exc, Invalid):  # the same shape as FastAPI's own 422s
        detail = [{"type": exc.kind, "loc": ["body", exc.field], "msg": exc.detail}]
        return JSONResponse({"detail": detail}, status_code=status)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    body = {"detail": exc.detail, **jsonable_encoder(exc.extra)}
    return JSONResponse(body, status_code=status, headers=headers)


async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Database unavailable, try again shortly"}, status_code=503)


def create_app() -> FastAPI:
    settings = get_settings()
    application = FastAPI(
        title=settings.PROJECT_NAME,
        description="Incident & ticket management API for IT operations teams.",
        openapi_url=f"{API_V1_STR}/openapi.json",
        docs_url="/docs",
    )
    if settings.all_cors_origins:
        application.add_middleware(
            CORSMiddleware,
            allow_origins=settings.all_cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location"],
        )
    application.add_exception_handler(DomainError, domain_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError):
        application.add_exception_handler(unavailable, database_unavailable)
    application.include_router(ops.router)
    application.include_router(api_router, prefix=API_V1_STR)
    return application


try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"incident-desk: {exc}")
