"""The outbox as admins see it: the list (GET /notifications), re-queueing a notification, and the
outbox's gauges for /metrics."""

from sqlalchemy import func
from sqlmodel import col, select

from app.core.database import Database
from app.core.errors import Conflict, NotFound
from app.core.metrics import OutboxReading
from app.crud import common
from app.crud.common import page
from app.models import Notification, NotificationChannel, NotificationQuery, NotificationState

NOTIFICATION_NOT_FOUND = "Notification not found"
# What an admin may queue again, and what answers 409: a pending row is queued already (or being
# sent), a sent one went out. Skipped rows may be queued again too (e.g. once SMTP is configured);
# whether they may be sent is checked again when they are.
REQUEUEABLE = frozenset({NotificationState.dead, NotificationState.skipped})
NOT_REQUEUEABLE = {
    NotificationState.pending: "This notification is already queued",
    NotificationState.sent: "This notification was sent; it is not queued again",
}


async def list_notifications(*, db: Database, query: NotificationQuery) -> tuple[list[Notification], int]:
    """Notifications matching the filters, newest first, one page and the total count."""
    stmt = select(Notification)
    filters = {
        Notification.state: query.state,
        Notification.kind: query.kind,
        Notification.recipient_id: query.recipient_id,
        Notification.ticket_id: query.ticket_id,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(col(column) == value)
    stmt = stmt.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
    session = await db.reader()
    return await page(session, stmt, offset=query.offset, limit=query.limit)


async def requeue_notification(*, db: Database, notification_id: int) -> Notification:
    """A dead (or skipped) notification back in the queue: pending, attempts 0, due now. Its
    last_error stays until the next attempt replaces it. 404 unknown; 409 pending or sent."""
    async with db.write() as session:
        row = (
            await session.exec(
                select(Notification).where(col(Notification.id) == notification_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(NOTIFICATION_NOT_FOUND)
        if row.state not in REQUEUEABLE:
            raise Conflict(NOT_REQUEUEABLE[row.state])
        row.state = NotificationState.pending
        row.attempts = 0
        row.next_attempt_at = common.utcnow()
        row.sent_at = None
        session.add(row)
    return row


async def read_outbox(*, db: Database) -> OutboxReading:
    """Pending and dead rows by channel and the oldest pending row's age: two queries on the index
    of (state, next_attempt_at), whatever the number of sent rows."""
    connection = await db.connection()
    pending = (
        await connection.execute(
            select(Notification.channel, func.count(), func.min(Notification.created_at))
            .where(col(Notification.state) == NotificationState.pending)
            .group_by(col(Notification.channel))
        )
    ).all()
    dead = (
        await connection.execute(
            select(Notification.channel, func.count())
            .where(col(Notification.state) == NotificationState.dead)
            .group_by(col(Notification.channel))
        )
    ).all()
    now = common.utcnow()
    zeros = {channel.value: 0 for channel in NotificationChannel}
    oldest = {str(channel): max(0.0, (now - first).total_seconds()) for channel, _, first in pending}
    return OutboxReading(
        pending=zeros | {str(channel): n for channel, n, _ in pending},
        dead=zeros | {str(channel): n for channel, n in dead},
        oldest_pending_seconds={key: float(value) for key, value in (zeros | oldest).items()},
    )
