from typing import Annotated

from fastapi import Depends, status

from app import crud
from app.api.deps import DbDep, allowed
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import AlertEvent, AlertmanagerOutcome, AlertmanagerPayload, AlertOutcome, User
from app.permissions import Permission

router = api_router("/alerts", "alerts")

AlertSender = Annotated[User, Depends(allowed(Permission.alert_write, "send alerts"))]


@router.post(
    "/", response_model=AlertOutcome, status_code=status.HTTP_202_ACCEPTED, responses=answers(403, 404, 422)
)
async def send_alert(db: DbDep, user: AlertSender, event: AlertEvent) -> AlertOutcome:
    """An alert from monitoring, after PagerDuty's Events API v2: `trigger` opens a ticket (or
    counts a repeat on the open one, or reopens one resolved within ALERT_REOPEN_WINDOW_SECONDS),
    `acknowledge` moves it to in_progress, `resolve` resolves it. 404: an acknowledge or resolve
    for a dedup key that has no ticket."""
    return await crud.handle_alert(db=db, event=event, caller=user)


@router.post(
    "/alertmanager",
    response_model=AlertmanagerOutcome,
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(403, 422),
)
async def receive_alertmanager(
    db: DbDep, user: AlertSender, payload: AlertmanagerPayload
) -> AlertmanagerOutcome:
    """Prometheus Alertmanager's webhook (version 4): each alert is a trigger (firing) or a resolve
    (resolved) with its fingerprint as the dedup key; one result per alert, in order."""
    return AlertmanagerOutcome(results=await crud.handle_alertmanager(db=db, payload=payload, caller=user))
