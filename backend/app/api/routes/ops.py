"""Operational endpoints at the root, outside the versioned API."""

import hmac

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from app import crud
from app.api.deps import SessionDep, get_current_user
from app.api.strict_json import StrictJSONRoute
from app.core.config import get_settings
from app.core.metrics import Metrics
from app.core.migrations import head_revision
from app.models import DbHealth, Role, StatusResponse

router = APIRouter(tags=["ops"], route_class=StrictJSONRoute)


@router.get("/ping")
def ping() -> StatusResponse:
    return StatusResponse(status="ok")


@router.get("/health")
def health() -> StatusResponse:
    """Liveness: the process answers. Touches no database."""
    return StatusResponse(status="ok")


@router.get(
    "/db-health",
    response_model=DbHealth,
    responses={503: {"model": DbHealth, "description": "Database unreachable or behind head"}},
)
def db_health(session: SessionDep) -> JSONResponse:
    """Readiness: the database answers and its schema is at the migrations' head."""
    head = head_revision()
    try:
        current = crud.get_schema_revision(session=session)
    except SQLAlchemyError:
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


def _may_scrape(request: Request, session: SessionDep) -> None:
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
            user = get_current_user(session, credentials)
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
def metrics(request: Request, session: SessionDep) -> Response:
    """Prometheus text format. Answers even when the database is down (ticket counts left out)."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(session), media_type=CONTENT_TYPE_LATEST)
