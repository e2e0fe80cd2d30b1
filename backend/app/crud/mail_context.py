"""What a notification e-mail shows, read when it is sent, and whether it may be sent at all.

`context_for(session, row, recipient)` returns the template context for `row` (app.mail renders
it), or a `Skip` with the reason it must not be sent now. The checks are made at send time, with
the database as it is then, so a change between the write and the delivery counts:

| kind                       | skipped when                                                          |
|----------------------------|-----------------------------------------------------------------------|
| every kind                 | the recipient is deactivated                                          |
| ticket_* and sla_*         | the ticket is gone; the recipient can no longer see it (app.permissions.can_see) |
| ticket_commented           | the comment is gone; an internal note and the recipient is a reporter now |
| password_reset, invitation | the link was used, expired, or the password changed since (auth stamp) |
| webhook_disabled           | (only the first row: the endpoint's owner is told what the worker saw)  |

The row's payload says what happened (event ids, comment id, statuses, timer); the row contract is
in app.notifications. The delivery job (app.crud.delivery) marks skipped rows `skipped` with the
reason.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import account_tokens
from app.core.config import get_settings
from app.crud import common
from app.models import AccountToken, Comment, Notification, NotificationKind, Ticket, User
from app.permissions import can_see, sees_internal_notes

K = NotificationKind
ACCOUNT_KINDS = frozenset({K.password_reset, K.invitation})
TIMER_LABELS = {"first_response": "first response", "resolution": "resolution"}
SYSTEM_ACTOR = "The service-level clock"


@dataclass(frozen=True)
class Skip:
    reason: str


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def person(user: User | None) -> str:
    if user is None:
        return "Someone"
    return user.full_name or user.email


async def context_for(session: AsyncSession, row: Notification, recipient: User) -> dict[str, Any] | Skip:
    if not recipient.is_active:
        return Skip("the recipient is deactivated")
    settings = get_settings()
    front = settings.FRONTEND_HOST.rstrip("/")
    base: dict[str, Any] = {
        "project": settings.PROJECT_NAME,
        "recipient": {"name": recipient.full_name or recipient.email, "email": recipient.email},
        "settings_url": f"{front}/settings/notifications",
    }
    payload: dict[str, Any] = json.loads(row.payload or "{}")
    if row.kind in ACCOUNT_KINDS:
        return await _account_link(session, payload, recipient, base, front)
    if row.kind == K.webhook_disabled:  # what the worker recorded is the whole message
        return {
            **base,
            "endpoint": {"id": payload["endpoint_id"], "url": payload["url"], "reason": payload["reason"]},
        }
    ticket = None if row.ticket_id is None else await session.get(Ticket, row.ticket_id)
    if ticket is None:
        return Skip("the ticket was deleted")
    if not can_see(recipient, ticket):
        return Skip("the recipient can no longer see the ticket")
    base["ticket"] = {
        "id": ticket.id,
        "title": ticket.title,
        "status": ticket.status.value.replace("_", " "),
        "priority": ticket.priority.value,
        "resolution": ticket.resolution,
        "url": f"{front}/tickets/{ticket.id}",
    }
    return await _EXTRA[row.kind](session, payload, recipient, base)


async def _actor(session: AsyncSession, payload: dict[str, Any], _: User, base: dict[str, Any]) -> Any:
    actor_id = payload.get("actor_id")
    actor = None if actor_id is None else await session.get(User, actor_id)
    return {**base, "actor": person(actor) if actor_id is not None else SYSTEM_ACTOR}


async def _reopened(session: AsyncSession, payload: dict[str, Any], who: User, base: dict[str, Any]) -> Any:
    context = await _actor(session, payload, who, base)
    return {**context, "previous_status": str(payload.get("from", "resolved")).replace("_", " ")}


async def _comment(session: AsyncSession, payload: dict[str, Any], who: User, base: dict[str, Any]) -> Any:
    comment = await session.get(Comment, payload.get("comment_id"))
    if comment is None:
        return Skip("the comment was deleted")
    if comment.internal and not sees_internal_notes(who):
        return Skip("an internal note, and the recipient may not see internal notes")
    author = await session.get(User, comment.author_id)
    return {
        **base,
        "comment": {"author": person(author), "body": comment.body, "internal": comment.internal},
    }


async def _timer(_session: AsyncSession, payload: dict[str, Any], _who: User, base: dict[str, Any]) -> Any:
    due = payload.get("due_at")
    return {
        **base,
        "timer": TIMER_LABELS.get(str(payload.get("timer")), str(payload.get("timer"))),
        "due_at": when(datetime.fromisoformat(due)) if due else "now",
    }


async def _account_link(
    session: AsyncSession, payload: dict[str, Any], recipient: User, base: dict[str, Any], front: str
) -> dict[str, Any] | Skip:
    token = await session.get(AccountToken, payload.get("token_id"))
    if token is None or token.user_id != recipient.id:
        return Skip("the link no longer exists")
    if token.used_at is not None:
        return Skip("the link was already used")
    if token.expires_at <= common.utcnow():
        return Skip("the link expired")
    if token.auth_stamp != recipient.auth_stamp:
        return Skip("the password or account changed since the link was made")
    secret = account_tokens.derive(get_settings().SECRET_KEY, token.purpose.value, token.nonce)
    return {**base, "link": f"{front}/reset-password?token={secret}", "expires_at": when(token.expires_at)}


Extra = Callable[[AsyncSession, dict[str, Any], User, dict[str, Any]], Awaitable[dict[str, Any] | Skip]]
# What each ticket kind adds to the context.
_EXTRA: dict[NotificationKind, Extra] = {
    K.ticket_assigned: _actor,
    K.ticket_commented: _comment,
    K.ticket_resolved: _actor,
    K.ticket_reopened: _reopened,
    K.ticket_closed: _actor,
    K.sla_warning: _timer,
    K.sla_breached: _timer,
}
