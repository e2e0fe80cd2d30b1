"""Writing to the notification outbox: the one way anything is queued for delivery.

`enqueue` adds a row to the caller's session, so it is stored by the caller's transaction or not at
all: call it inside the write that causes the notification (a ticket write's before-commit hook, the
password-recovery request). Nothing here sends anything; the worker delivers (app.crud.delivery).
"""

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import get_settings
from app.core.request_context import current_request_id
from app.crud import common
from app.models import Notification, NotificationChannel, NotificationKind

MESSAGE_ID_DOMAIN_FALLBACK = "incident-desk.invalid"


def message_id() -> str:
    """A new RFC 5322 Message-ID, `<uuid@domain of EMAILS_FROM_EMAIL>`."""
    sender = get_settings().EMAILS_FROM_EMAIL
    domain = sender.rpartition("@")[2] if sender else MESSAGE_ID_DOMAIN_FALLBACK
    return f"<{uuid.uuid4().hex}@{domain}>"


def enqueue(
    session: AsyncSession,
    *,
    kind: NotificationKind,
    recipient_id: int,
    ticket_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    channel: NotificationChannel = NotificationChannel.email,
    now: datetime | None = None,
) -> Notification:
    """Queue one notification in `session`'s transaction (no flush, no query: the caller's commit
    writes it). `payload` must be JSON: ids and values that say what happened, never a secret."""
    when = now or common.utcnow()
    row = Notification(
        channel=channel,
        kind=kind,
        recipient_id=recipient_id,
        ticket_id=ticket_id,
        payload=json.dumps(dict(payload or {}), separators=(",", ":"), sort_keys=True, default=str),
        message_id=message_id(),
        next_attempt_at=when,
        created_at=when,
        request_id=current_request_id(),
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Queued:
    """One notification for `enqueue_many`."""

    kind: NotificationKind
    recipient_id: int
    ticket_id: int | None
    payload: Mapping[str, Any]


_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


async def enqueue_many(
    session: AsyncSession, queued: Sequence[Queued], *, now: datetime | None = None
) -> None:
    """Queue several notifications in `session`'s transaction with one INSERT (no ORM objects: a
    ticket write's notifications are written by the request, and this is the cheaper way)."""
    if not queued:
        return
    when = now or common.utcnow()
    request_id = current_request_id()
    rows = [
        {
            "channel": NotificationChannel.email.value,
            "kind": item.kind.value,
            "recipient_id": item.recipient_id,
            "ticket_id": item.ticket_id,
            "payload": json.dumps(dict(item.payload), separators=(",", ":"), sort_keys=True, default=str),
            "message_id": message_id(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": when,
            "created_at": when,
            "request_id": request_id,
        }
        for item in queued
    ]
    await session.exec(insert(_NOTIFICATIONS), params=rows)
