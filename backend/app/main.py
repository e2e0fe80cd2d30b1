"""The ASGI application: `fastapi run app/main.py` serves `app`."""

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.middleware.cors import CORSMiddleware

from app.api.main import api_router
from app.api.routes import ops
from app.core.config import ConfigError, get_settings


async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Database unavailable, try again shortly"}, status_code=503)


def create_app() -> FastAPI:
    settings = get_settings()
    application = FastAPI(
        title=settings.PROJECT_NAME,
        description="Incident & ticket management API for IT operations teams.",
        openapi_url=f"{settings.API_V1_STR}/openapi.json",
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
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError):
        application.add_exception_handler(unavailable, database_unavailable)
    application.include_router(ops.router)
    application.include_router(api_router, prefix=settings.API_V1_STR)
    return application


try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"incident-desk: {exc}")
