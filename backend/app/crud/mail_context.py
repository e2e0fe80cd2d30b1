"""What a notification e-mail shows, read when it is sent, and whether it may be sent at all.

`context_for(session, row, recipient)` returns the template context for `row`, or a `Skip` with
the reason it must not be sent now: the recipient is inactive or can no longer see the ticket,
the ticket or comment is gone, an internal note would reach a reporter, an account link was used
or expired. The delivery job (app.crud.delivery) marks skipped rows `skipped` with that reason.
"""

from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Notification, User


@dataclass(frozen=True)
class Skip:
    reason: str


async def context_for(
    session: AsyncSession,  # noqa: ARG001  (placeholder)
    row: Notification,
    recipient: User,
) -> dict[str, Any] | Skip:
    """(Placeholder until the per-kind contexts land.)"""
    if not recipient.is_active:
        return Skip("the recipient is deactivated")
    return {"recipient": recipient, "ticket_id": row.ticket_id}
