"""A ticket's SLA timers kept in step with its writes: the facts app.sla rebuilds them from, the
stored timers, and what a ticket write or the SLA clock stores when they differ.

`refresh(session, change)` runs inside every ticket write's transaction (app.crud.ticket_writes),
after the write's own rows are flushed: it chooses the policy from the ticket's priority and team,
rebuilds the timers from the ticket's creation and status history at the change's time, records
the events that explain the difference on the change (the audit trail), and stores the timers and
the ticket's sla_state and sla_due_at.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import business_time, calendars, sla
from app.models import (
    Calendar,
    EventAction,
    SlaPolicy,
    SlaState,
    SlaTimer,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimerKind,
    TimerState,
    User,
)

if TYPE_CHECKING:
    from app.crud.ticket_writes import Change


def _rule(policy: Any, calendar_name: str, calendar: business_time.WorkingTime) -> sla.Policy:
    """`policy`: the policy's stored values (a row or the model)."""
    targets = {
        kind: minutes
        for kind, minutes in (
            (TimerKind.first_response, policy.first_response_minutes),
            (TimerKind.resolution, policy.resolution_minutes),
        )
        if minutes is not None
    }
    return sla.Policy(
        id=policy.id,
        name=policy.name,
        position=policy.position,
        priority=policy.priority,
        team_id=policy.team_id,
        calendar_name=calendar_name,
        calendar=calendar,
        targets=targets,
        warn_at_percent=policy.warn_at_percent,
    )


def policy_rule(policy: SlaPolicy, calendar: Calendar) -> sla.Policy:
    assert policy.id is not None
    return _rule(policy, calendar.name, calendars.working_time(calendar))


# Every ticket write reads the policies: one Core statement, built once (no ORM objects).
_POLICIES = (
    sa.select(
        *SlaPolicy.__table__.c,  # type: ignore[attr-defined]
        col(Calendar.name).label("calendar_name"),
        col(Calendar.time_zone),
        col(Calendar.working_hours),
        col(Calendar.holidays),
    )
    .join(Calendar, col(Calendar.id) == col(SlaPolicy.calendar_id))
    .order_by(col(SlaPolicy.position))
)


async def load_policies(session: AsyncSession) -> list[sla.Policy]:
    """Every policy with its calendar, by position."""
    rows = (await (await session.connection()).execute(_POLICIES)).all()
    return [
        _rule(
            row, row.calendar_name, calendars.working_time_of(row.time_zone, row.working_hours, row.holidays)
        )
        for row in rows
    ]


async def load_facts(session: AsyncSession, ticket: Ticket) -> sla.Facts:
    """The ticket's creation, its status moves, and its first public comment by an agent or admin,
    from the audit trail (one query)."""
    assert ticket.id is not None
    return (await load_facts_many(session, [ticket]))[ticket.id]


async def load_facts_many(session: AsyncSession, tickets: Sequence[Ticket]) -> dict[int, sla.Facts]:
    """`load_facts` for several tickets in one query (the SLA clock's batches), by ticket id."""
    if not tickets:
        return {}
    connection = await session.connection()  # Core: sqlmodel's select() takes up to 4 columns
    rows = await connection.execute(
        sa.select(
            col(TicketEvent.ticket_id),
            col(TicketEvent.created_at),
            col(TicketEvent.action),
            col(TicketEvent.new_value),
            col(User.role),
        )
        .outerjoin(User, col(User.id) == col(TicketEvent.actor_id))
        .where(
            col(TicketEvent.ticket_id).in_([ticket.id for ticket in tickets]),
            col(TicketEvent.action).in_([EventAction.status_changed, EventAction.commented]),
        )
        .order_by(col(TicketEvent.ticket_id), col(TicketEvent.id))
    )
    moves: dict[int, list[tuple[datetime, TicketStatus]]] = defaultdict(list)
    first_reply: dict[int, datetime] = {}
    for ticket_id, at, action, value, role in rows.all():
        if action == EventAction.status_changed and value is not None:
            moves[ticket_id].append((at, TicketStatus(value)))
        elif ticket_id not in first_reply and role is not None and role in sla.RESPONDING_ROLES:
            first_reply[ticket_id] = at
    return {
        ticket.id: sla.Facts(
            created_at=ticket.created_at,
            moves=tuple(moves[ticket.id]),
            first_reply_at=first_reply.get(ticket.id),
        )
        for ticket in tickets
        if ticket.id is not None
    }


async def stored_timers(session: AsyncSession, ticket_id: int) -> dict[TimerKind, SlaTimer]:
    return (await stored_timers_many(session, [ticket_id]))[ticket_id]


async def stored_timers_many(
    session: AsyncSession, ticket_ids: Sequence[int]
) -> dict[int, dict[TimerKind, SlaTimer]]:
    """`stored_timers` for several tickets in one query; every id has an entry."""
    found: dict[int, dict[TimerKind, SlaTimer]] = {ticket_id: {} for ticket_id in ticket_ids}
    for timer in (await session.exec(select(SlaTimer).where(col(SlaTimer.ticket_id).in_(ticket_ids)))).all():
        found[timer.ticket_id][timer.kind] = timer
    return found


def _store(row: SlaTimer, timer: sla.Timer) -> None:
    row.policy_id = timer.policy_id
    row.target_minutes = timer.target_minutes
    row.state = timer.state
    row.started_at = timer.started_at
    row.due_at = timer.due_at
    row.warn_at = timer.warn_at
    row.warned_at = timer.warned_at
    row.breached_at = timer.breached_at
    row.met_at = timer.met_at
    row.paused_since = timer.paused_since
    row.paused_seconds = int(timer.paused.total_seconds())
    row.next_check_at = timer.next_check_at


async def refresh(
    session: AsyncSession,
    change: "Change",
    *,
    policies: list[sla.Policy] | None = None,
    stored: dict[TimerKind, SlaTimer] | None = None,
    facts: sla.Facts | None = None,
) -> bool:
    """Bring the ticket's timers in step with its history at `change.now` (see the module
    docstring). For a change that is not itself a new version (the SLA clock's, a comment), the
    ticket's version goes up when there is something to record. Returns whether anything was recorded.
    `policies`, `stored` and `facts` may come loaded already (the SLA clock loads a batch's at once)."""
    ticket = change.ticket
    assert ticket.id is not None
    if policies is None:
        policies = await load_policies(session)
    policy = sla.choose_policy(policies, ticket.priority, ticket.team_id)
    created = change.kind.value == "created"
    if stored is None:
        # A ticket being created has no timers yet, and no history but its creation.
        needed = not created and (policies or ticket.sla_state != SlaState.none)
        stored = await stored_timers(session, ticket.id) if needed else {}
    if policy is None and not stored:
        return False
    if facts is None:
        facts = (
            sla.Facts(created_at=ticket.created_at, moves=())
            if created
            else await load_facts(session, ticket)
        )
    timers = sla.evaluate(policy, facts, change.now)
    events = sla.changes({kind: sla.Stored.of(row) for kind, row in stored.items()}, timers, policy)
    if events and not change.bumped and not created:
        change.bump()  # the clock's write, or a comment that met a target: the ticket reads differently
    for action, kind, old, new, reason in events:
        change.record(action, kind.value, old, new, reason)
    for kind, timer in timers.items():
        row = stored.get(kind)
        if row is None:
            row = SlaTimer(
                ticket_id=ticket.id,
                kind=kind,
                state=timer.state,
                target_minutes=timer.target_minutes,
                started_at=timer.started_at,
                due_at=timer.due_at,
            )
        _store(row, timer)
        session.add(row)
    for kind, row in stored.items():
        if kind not in timers and row.state != TimerState.cancelled:
            row.state, row.next_check_at = TimerState.cancelled, None
            session.add(row)
    ticket.sla_state, ticket.sla_due_at = sla.summary(timers.values())
    session.add(ticket)
    return bool(events)
