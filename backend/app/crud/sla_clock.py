"""The SLA clock's work, run by the worker (app.worker): record the warnings and breaches whose time
has come, and recompute running timers after a calendar or a policy changed.

Both claim tickets with `FOR UPDATE SKIP LOCKED` on PostgreSQL: several workers (replicas) never
work on the same ticket at once, and a ticket a request is writing is left to that request (which
brings its timers up to date itself). Under the ticket's lock the timers are rebuilt by the same
code as a request's (app.crud.sla_timers.refresh), so what another worker already recorded is not
recorded again. SQLite serializes write transactions: one worker is enough there.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.database import Database
from app.crud import common, sla_timers, ticket_writes
from app.crud.ticket_writes import TicketWrite
from app.models import SlaRecompute, SlaTimer, Ticket, TicketStatus

# Tickets whose timers a policy or calendar change can move: those not resolved, closed or cancelled.
RUNNING_STATUSES = (TicketStatus.open, TicketStatus.in_progress, TicketStatus.on_hold)


async def _bring_up_to_date(
    session: AsyncSession, ticket_ids: Sequence[int], now: datetime
) -> tuple[int, list[TicketWrite]]:
    """Lock what can be locked of `ticket_ids` and bring their timers to `now`. Returns the number
    of tickets locked and the writes that recorded something (the caller commits, then runs their
    after-commit hooks)."""
    locked = (
        await session.exec(
            select(Ticket)
            .where(col(Ticket.id).in_(ticket_ids))
            .order_by(col(Ticket.id))
            .with_for_update(skip_locked=True)
        )
    ).all()
    policies = await sla_timers.load_policies(session) if locked else []
    writes = []
    for ticket in locked:
        write = await ticket_writes.record_sla(session, ticket, now=now, policies=policies)
        if write is not None:
            writes.append(write)
    return len(locked), writes


async def clock_pass(db: Database, *, now: datetime | None = None, batch: int = 200) -> int:
    """Record every warning and breach due by `now`; returns the number of tickets that had one.
    With nothing due, a pass is one query on the index of sla_timers.next_check_at."""
    recorded = 0
    while True:
        at = now or common.utcnow()
        connection = await db.connection()
        due = (
            (
                await connection.execute(
                    select(SlaTimer.ticket_id)
                    .where(col(SlaTimer.next_check_at) <= at)
                    .order_by(col(SlaTimer.next_check_at))
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        await db.end_reads()
        if not due:
            return recorded
        async with db.write() as session:
            locked, writes = await _bring_up_to_date(session, sorted(set(due)), at)
        ticket_writes.after_commit(writes)
        recorded += len(writes)
        if locked == 0 or len(due) < batch:
            return recorded  # the rest is another worker's, or a request's, right now


async def recompute_pass(db: Database, *, now: datetime | None = None, batch: int = 200) -> int:
    """Work through the queued recomputes (a calendar or policy changed) in batches of tickets by
    id, each batch and the job's progress in one transaction; returns the number of tickets
    recomputed."""
    done = 0
    while True:
        async with db.write() as session:
            job = (
                await session.exec(
                    select(SlaRecompute)
                    .order_by(col(SlaRecompute.id))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if job is None:
                return done
            ids = [
                ticket_id
                for ticket_id in (
                    await session.exec(
                        select(Ticket.id)
                        .where(col(Ticket.id) > job.after_ticket_id, col(Ticket.status).in_(RUNNING_STATUSES))
                        .order_by(col(Ticket.id))
                        .limit(batch)
                    )
                ).all()
                if ticket_id is not None
            ]
            # A ticket a request holds right now is skipped: that request recomputes it itself.
            _locked, writes = await _bring_up_to_date(session, ids, now or common.utcnow())
            if len(ids) < batch:
                await session.delete(job)
            else:
                job.after_ticket_id = ids[-1]
                session.add(job)
        ticket_writes.after_commit(writes)
        done += len(ids)
