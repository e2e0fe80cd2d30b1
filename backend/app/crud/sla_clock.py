"""The SLA clock's work, run by the worker (app.worker): record the warnings and breaches whose time
has come, and recompute running timers after a calendar or a policy changed.

The clock claims due tickets with `FOR UPDATE SKIP LOCKED` on PostgreSQL, in one statement that
joins the due timers to their tickets: a ticket another worker (a replica) or a request holds is
passed over and the claim takes the next due one, so replicas share a backlog instead of queueing
on the same rows. Under the ticket's lock the timers are rebuilt by the same code as a request's
(app.crud.sla_timers.refresh), from a fresh read: what another worker already recorded is not
recorded again. With nothing due, a pass is one read on the index of sla_timers.next_check_at (no
transaction). SQLite serializes write transactions: one worker is enough there.

A recompute job (an SlaRecompute row) is claimed with `SKIP LOCKED` too, one batch of tickets per
transaction; its tickets are locked in id order, waiting for a request that holds one (a request
that loaded the policies before the change committed would otherwise keep the old due times).

Both passes stop between batches when `stop` is set (the worker's SIGTERM).
"""

import asyncio
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


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def _bring_up_to_date(
    session: AsyncSession, tickets: Sequence[Ticket], now: datetime
) -> list[TicketWrite]:
    """Bring the timers of `tickets` (locked in `session`'s transaction) to `now`: the batch's
    policies, timers and histories read in three queries, its writes flushed together. Returns the
    writes that recorded something (the caller commits, then runs their after-commit hooks)."""
    if not tickets:
        return []
    ids = [ticket.id for ticket in tickets if ticket.id is not None]
    return await ticket_writes.record_sla_many(
        session,
        tickets,
        now=now,
        policies=await sla_timers.load_policies(session),
        stored=await sla_timers.stored_timers_many(session, ids),
        facts=await sla_timers.load_facts_many(session, tickets),
    )


async def _anything_due(db: Database, at: datetime) -> bool:
    """One read on the index of next_check_at, outside any write transaction."""
    connection = await db.connection()
    found = (
        await connection.execute(
            select(SlaTimer.ticket_id)
            .where(col(SlaTimer.next_check_at) <= at)
            .order_by(col(SlaTimer.next_check_at))
            .limit(1)
        )
    ).first()
    await db.end_reads()
    return found is not None


async def _claim_due(session: AsyncSession, at: datetime, batch: int) -> tuple[list[Ticket], int]:
    """Lock up to `batch` due timers' tickets, earliest due first, passing over the tickets someone
    else holds (PostgreSQL). Returns the distinct tickets and the number of due timers claimed."""
    rows = (
        await session.exec(
            select(Ticket)
            .join(SlaTimer, col(SlaTimer.ticket_id) == col(Ticket.id))
            .where(col(SlaTimer.next_check_at) <= at)
            .order_by(col(SlaTimer.next_check_at), col(SlaTimer.id))
            .limit(batch)
            .with_for_update(skip_locked=True, of=Ticket)
        )
    ).all()
    distinct: dict[int, Ticket] = {}
    for ticket in rows:  # a ticket with two due timers comes twice
        assert ticket.id is not None
        distinct.setdefault(ticket.id, ticket)
    return [distinct[key] for key in sorted(distinct)], len(rows)


async def clock_pass(
    db: Database, *, now: datetime | None = None, batch: int = 200, stop: asyncio.Event | None = None
) -> int:
    """Record every warning and breach due by `now` (default: the clock at each batch); returns
    the number of tickets that had one. With nothing due, a pass is one query on the index of
    sla_timers.next_check_at."""
    recorded = 0
    if not await _anything_due(db, now or common.utcnow()):
        return recorded
    while not _stopped(stop):
        at = now or common.utcnow()
        async with db.write() as session:
            tickets, claimed = await _claim_due(session, at, batch)
            writes = await _bring_up_to_date(session, tickets, at)
        ticket_writes.after_commit(writes)
        recorded += len(writes)
        if claimed < batch or not writes:
            # Nothing more is due that no one else holds (another worker, a request: theirs), or
            # a whole batch had nothing to record (another worker just did it): the next pass
            # looks again.
            break
    return recorded


async def recompute_pass(
    db: Database, *, now: datetime | None = None, batch: int = 200, stop: asyncio.Event | None = None
) -> int:
    """Work through the queued recomputes (a calendar or policy changed) in batches of tickets by
    id, each batch and the job's progress in one transaction; returns the number of tickets
    recomputed. With no job queued, one read of the (empty) queue."""
    connection = await db.connection()
    queued = (await connection.execute(select(SlaRecompute.id).limit(1))).first()
    await db.end_reads()
    done = 0
    while queued is not None and not _stopped(stop):
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
                break  # none left, or another worker holds each
            tickets = list(
                (
                    await session.exec(
                        select(Ticket)
                        .where(col(Ticket.id) > job.after_ticket_id, col(Ticket.status).in_(RUNNING_STATUSES))
                        .order_by(col(Ticket.id))
                        .limit(batch)
                        .with_for_update()
                    )
                ).all()
            )
            writes = await _bring_up_to_date(session, tickets, now or common.utcnow())
            if len(tickets) < batch:
                await session.delete(job)
            else:
                last = tickets[-1].id
                assert last is not None
                job.after_ticket_id = last
                session.add(job)
        ticket_writes.after_commit(writes)
        done += len(tickets)
    return done
