"""A ticket write's webhook deliveries, written in the write's own transaction (a before-commit hook
of app.crud.ticket_writes): a rolled-back write sends nothing, a committed one always does.

Per write: the webhook events it makes (app.webhooks.events_of; most writes make one), then one
read of the active endpoints (a small table; once per transaction), then one delivery row per
event and endpoint that wants it. A write that makes no webhook event (an internal note, SLA bookkeeping) reads nothing.
"""

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import webhooks
from app.crud.ticket_writes import TicketWrite
from app.models import Comment, EventAction, TicketPublic, WebhookDelivery, WebhookEndpoint

_CACHED = "webhook_endpoints"
_ACTIVE = select(WebhookEndpoint.id, WebhookEndpoint.event_types, WebhookEndpoint.filter).where(
    col(WebhookEndpoint.active).is_(True)
)


async def enqueue(session: AsyncSession, write: TicketWrite) -> None:
    events = webhooks.events_of(write.kind.value, write.events)
    if not events:
        return
    endpoints = session.info.get(_CACHED)
    if endpoints is None:  # read once per transaction (the SLA clock writes many tickets in one)
        endpoints = session.info[_CACHED] = (await session.exec(_ACTIVE)).all()
    if not endpoints:
        return
    ticket = TicketPublic.model_validate(write.ticket).model_dump(mode="json")
    occurred = write.ticket.updated_at if write.events == () else write.events[-1].created_at
    sequence = max((event.id or 0 for event in write.events), default=write.version)
    for event in events:
        data: dict[str, Any] = {"ticket": ticket}
        if event.type == "ticket.commented":
            data["comment"] = await _comment(session, write)
        message = webhooks.new_message_id()
        body = webhooks.body(
            message, event.type, occurred_at=occurred, sequence=sequence, data=data, changes=event.changes
        )
        for endpoint_id, types, flt in endpoints:
            if endpoint_id is not None and webhooks.wants(types, flt, event.type, ticket):
                session.add(
                    WebhookDelivery(
                        endpoint_id=endpoint_id,
                        message_id=message,
                        event_type=event.type,
                        ticket_id=write.ticket.id,
                        payload=body,
                        next_attempt_at=occurred,
                        created_at=occurred,
                    )
                )


async def _comment(session: AsyncSession, write: TicketWrite) -> dict[str, Any] | None:
    for event in write.events:
        if event.action == EventAction.commented and event.new_value and event.new_value.isdigit():
            comment = await session.get(Comment, int(event.new_value))  # in the session already
            if comment is not None and not comment.internal:
                return {
                    "id": comment.id,
                    "body": comment.body,
                    "author_id": comment.author_id,
                    "created_at": webhooks.instant(comment.created_at),
                }
    return None
