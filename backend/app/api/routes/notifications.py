"""The notification outbox as admins manage it: what was sent, what failed, re-queueing the dead."""

from typing import Annotated

from fastapi import Depends

from app import crud
from app.api.deps import DbDep, NotificationAdmin, PathId
from app.api.openapi import answers
from app.api.query_params import query_model, query_parameters
from app.api.routing import api_router
from app.models import Notification, NotificationPublic, NotificationQuery, NotificationsPublic

router = api_router("/notifications", "notifications")


@router.get(
    "/",
    response_model=NotificationsPublic,
    responses=answers(403, 422),
    openapi_extra={"parameters": query_parameters(NotificationQuery)},
)
async def list_notifications(
    db: DbDep,
    _: NotificationAdmin,
    query: Annotated[NotificationQuery, Depends(query_model(NotificationQuery))],
) -> NotificationsPublic:
    """The outbox, newest first: filter by `state` (e.g. `dead`), `kind`, `recipient_id`, `ticket_id`.
    Bodies never include what the notification carries (its payload)."""
    rows, count = await crud.list_notifications(db=db, query=query)
    return NotificationsPublic(data=[NotificationPublic.model_validate(row) for row in rows], count=count)


@router.post(
    "/{notification_id:id}/requeue", response_model=NotificationPublic, responses=answers(403, 404, 409, 422)
)
async def requeue_notification(db: DbDep, _: NotificationAdmin, notification_id: PathId) -> Notification:
    """Queue a dead (or skipped) notification again: pending, attempts 0, due now. A pending or sent
    one answers 409."""
    return await crud.requeue_notification(db=db, notification_id=notification_id)
