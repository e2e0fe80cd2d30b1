"""Operational endpoints at the root, outside the versioned API."""

import asyncio
import hmac
import logging
from contextlib import suppress

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from app import crud
from app.api.deps import DbDep, get_current_user
from app.api.routing import api_router
from app.core.config import get_settings
from app.core.database import Database
from app.core.metrics import Metrics, OutboxReading
from app.core.migrations import current_revision, head_revision
from app.models import DbHealth, Role, StatusResponse

router = api_router("", "ops", versioned=False)
logger = logging.getLogger("app.metrics")


@router.get("/ping")
async def ping() -> StatusResponse:
    return StatusResponse(status="ok")


@router.get("/health")
async def health() -> StatusResponse:
    """Liveness: the process answers. Touches no database."""
    return StatusResponse(status="ok")


@router.get(
    "/db-health",
    response_model=DbHealth,
    responses={503: {"model": DbHealth, "description": "Database unreachable or behind head"}},
)
async def db_health(db: DbDep) -> JSONResponse:
    """Readiness: the database answers and its schema is at the migrations' head.

    Bounded by DB_POOL_TIMEOUT_SECONDS (it is outside the API's request deadline): a database that
    stops answering without closing its connections reads as unreachable, not as a hung probe. The
    check runs as a task of its own, and past the bound it is cancelled and left to unwind in the
    background (the driver's cancel request to a frozen server takes seconds of its own), as the
    request deadline does."""
    head = head_revision()
    check = asyncio.ensure_future(_current_revision(db))
    done, _ = await asyncio.wait({check}, timeout=get_settings().DB_POOL_TIMEOUT_SECONDS)
    current: str | None = None
    reached = False
    if done:
        with suppress(SQLAlchemyError):  # unreachable: the driver's error
            current, reached = check.result(), True
    else:
        check.cancel()
        check.add_done_callback(_collect)
    if not reached:
        body = DbHealth(
            status="unreachable",
            current_revision=None,
            head_revision=head,
            up_to_date=False,
        )
        return JSONResponse(body.model_dump(), status_code=503)
    up_to_date = current == head
    body = DbHealth(
        status="ok" if up_to_date else "behind",
        current_revision=current,
        head_revision=head,
        up_to_date=up_to_date,
    )
    return JSONResponse(body.model_dump(), status_code=200 if up_to_date else 503)


async def _current_revision(db: Database) -> str | None:
    connection = await db.connection()
    return await connection.run_sync(current_revision)


def _collect(task: "asyncio.Future[str | None]") -> None:
    """Retrieve a cancelled check's outcome, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _may_scrape(request: Request, db: DbDep) -> None:
    """METRICS_PUBLIC, or `Authorization: Bearer` with METRICS_TOKEN or an admin's access token."""
    settings = get_settings()
    if settings.METRICS_PUBLIC:
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        if settings.METRICS_TOKEN and hmac.compare_digest(
            credentials.encode(), settings.METRICS_TOKEN.encode()
        ):
            return
        try:
            user = await get_current_user(request, db, credentials, None)
        except HTTPException:
            user = None
        if user is not None and user.role == Role.admin:
            return
    raise HTTPException(
        401,
        "Metrics need a bearer token: METRICS_TOKEN or an admin's (or set METRICS_PUBLIC=true)",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(_may_scrape)])
async def metrics(request: Request, db: DbDep) -> Response:
    """Prometheus text format. Answers even when the database is down (ticket counts and the
    outbox's gauges left out)."""
    registry: Metrics = request.app.state.metrics
    try:
        counts: dict[str, int] | None = {
            status.value: n for status, n in (await crud.count_tickets_by_status(db=db)).items()
        }
    except SQLAlchemyError as exc:
        logger.warning("metrics: could not count tickets (%s)", type(exc).__name__)
        counts = None
    outbox: OutboxReading | None = None
    if counts is not None:  # the database answered
        try:
            outbox = await crud.read_outbox(db=db)
        except SQLAlchemyError as exc:
            logger.warning("metrics: could not read the outbox (%s)", type(exc).__name__)
    return Response(registry.render(counts, outbox), media_type=CONTENT_TYPE_LATEST)
