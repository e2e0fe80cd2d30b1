"""Writing to the notification outbox: the one way anything is queued for delivery.

`enqueue` adds a row to the caller's session, so it is stored by the caller's transaction or not at
all: call it inside the write that causes the notification (a ticket write's before-commit hook, the
password-recovery request). Nothing here sends anything; the worker delivers (app.crud.delivery).
"""

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import get_settings
from app.core.request_context import current_request_id
from app.crud import common
from app.models import Notification, NotificationChannel, NotificationKind, NotificationState

MESSAGE_ID_DOMAIN_FALLBACK = "incident-desk.invalid"


def message_id() -> str:
    """A new RFC 5322 Message-ID, `<uuid@domain of EMAILS_FROM_EMAIL>`."""
    sender = get_settings().EMAILS_FROM_EMAIL
    domain = sender.rpartition("@")[2] if sender else MESSAGE_ID_DOMAIN_FALLBACK
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass(frozen=True)
class Queued:
    """One notification to queue. `payload` must be JSON: ids and values that say what happened,
    never a secret."""

    kind: NotificationKind
    recipient_id: int
    ticket_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def _values(item: Queued, when: datetime, request_id: str | None) -> dict[str, Any]:
    """The column values of `item`'s row, as it is first written: pending, due now."""
    return {
        "channel": NotificationChannel.email,
        "kind": item.kind,
        "recipient_id": item.recipient_id,
        "ticket_id": item.ticket_id,
        "payload": json.dumps(dict(item.payload), separators=(",", ":"), sort_keys=True, default=str),
        "message_id": message_id(),
        "state": NotificationState.pending,
        "attempts": 0,
        "next_attempt_at": when,
        "created_at": when,
        "request_id": request_id,
    }


def enqueue(session: AsyncSession, item: Queued, *, now: datetime | None = None) -> Notification:
    """Queue one notification in `session`'s transaction (no flush, no query: the caller's commit
    writes it)."""
    row = Notification(**_values(item, now or common.utcnow(), current_request_id()))
    session.add(row)
    return row


_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


async def enqueue_many(
    session: AsyncSession, queued: Sequence[Queued], *, now: datetime | None = None
) -> None:
    """Queue several notifications in `session`'s transaction with one INSERT, now (no ORM objects:
    a ticket write's notifications are written in the request, and this is the cheaper way)."""
    if not queued:
        return
    when, request_id = now or common.utcnow(), current_request_id()
    await session.exec(insert(_NOTIFICATIONS), params=[_values(item, when, request_id) for item in queued])
