"""The ticket-write hook that queues notifications: who is told (app.notifications) about what a
write recorded, written to the outbox (app.crud.outbox) in the write's own transaction.

Registered once, when app.crud is imported (`ticket_writes.register(before=hook)`), so every
ticket write enqueues: the API's and the SLA clock's (the worker's writes have no actor). A write
whose events notify nobody (most edits) costs no query; one that does costs one (app.crud.watchers
.people: the audience with roles, active flags, watch rows and opt-outs). A write rolled back
(refused, or failed in a later hook) takes its rows with it: nothing is ever sent for it.
"""

from sqlmodel.ext.asyncio.session import AsyncSession

from app import notifications
from app.crud import outbox, watchers
from app.crud.ticket_writes import TicketWrite


async def hook(session: AsyncSession, write: TicketWrite) -> None:
    """Queue, in `session`'s transaction, the notifications `write` makes."""
    found = notifications.notices(write.events)
    if not found:
        return
    ticket = write.ticket
    need = notifications.needs(found, ticket)
    people = await watchers.people(
        session, ticket, users=need.users, watchers=need.watchers, team=need.team, kinds=need.kinds
    )
    await outbox.enqueue_many(
        session,
        [
            outbox.Queued(
                kind=notice.kind, recipient_id=recipient_id, ticket_id=ticket.id, payload=notice.payload
            )
            for notice in found
            for recipient_id in notifications.recipients(notice, people, ticket, write.actor_id)
        ],
    )
