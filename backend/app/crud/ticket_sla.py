"""A ticket's service level as `GET /tickets/{id}/sla` shows it: the policy, its calendar, and each
stored timer with the numbers that explain its due time (how late it is, the pauses that moved it).

Read-only. The pauses are not stored: they come from rebuilding the ticket's timers from its history
with the rules (app.sla.evaluate on the facts and the policy app.crud.sla_timers loads), at the
time of the request, under the policy the stored timers were computed with. Nothing is written.
"""

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app import sla
from app.core.database import Database
from app.crud import common, sla_timers
from app.crud.tickets import visible_ticket
from app.models import (
    Calendar,
    CalendarPublic,
    SlaPause,
    SlaPolicy,
    SlaPolicyPublic,
    SlaTimer,
    SlaTimerPublic,
    TicketSlaPublic,
    TimerKind,
    TimerState,
    User,
)

_ORDER = [rule.kind for rule in sla.TIMER_RULES]


def late_seconds(timer: SlaTimer, now: datetime) -> int | None:
    """How late a timer is: met late, by how much; breached, by how much so far; else None."""
    if timer.state == TimerState.met_late and timer.met_at is not None:
        return int((timer.met_at - timer.due_at).total_seconds())
    if timer.state == TimerState.breached:
        return max(0, int((now - timer.due_at).total_seconds()))
    return None


def _pauses(timer: sla.Timer | None) -> list[SlaPause]:
    if timer is None:
        return []
    return [
        SlaPause(
            started_at=pause.started_at,
            ended_at=pause.ended_at,
            reason=pause.reason,
            business_seconds=int(pause.business.total_seconds()),
        )
        for pause in timer.pauses
    ]


async def _policy(session: AsyncSession, policy_id: int | None) -> tuple[SlaPolicy, Calendar] | None:
    policy = None if policy_id is None else await session.get(SlaPolicy, policy_id)
    if policy is None:
        return None
    calendar = await session.get(Calendar, policy.calendar_id)
    assert calendar is not None  # a policy's calendar cannot be deleted (RESTRICT)
    return policy, calendar


async def get_ticket_sla(*, db: Database, ticket_id: int, viewer: User) -> TicketSlaPublic:
    """The ticket's service level, if the viewer may see the ticket (404 otherwise, as for the
    ticket itself)."""
    session = await db.reader()
    ticket = await visible_ticket(session, ticket_id, viewer)
    assert ticket.id is not None
    now = common.utcnow()
    stored = await sla_timers.stored_timers(session, ticket.id)
    # The policy the stored timers were computed with (a policy change is applied by recomputing).
    chosen = await _policy(session, next((t.policy_id for t in stored.values() if t.policy_id), None))
    rebuilt: dict[TimerKind, sla.Timer] = {}
    if chosen is not None and stored:
        facts = await sla_timers.load_facts(session, ticket)
        rebuilt = sla.evaluate(sla_timers.policy_rule(*chosen), facts, now)
    timers = [
        SlaTimerPublic.model_validate(
            timer,
            update={"late_seconds": late_seconds(timer, now), "pauses": _pauses(rebuilt.get(timer.kind))},
        )
        for timer in sorted(stored.values(), key=lambda t: _ORDER.index(t.kind))
    ]
    return TicketSlaPublic(
        ticket_id=ticket.id,
        sla_state=ticket.sla_state,
        sla_due_at=ticket.sla_due_at,
        policy=None if chosen is None else SlaPolicyPublic.model_validate(chosen[0]),
        calendar=None if chosen is None else CalendarPublic.model_validate(chosen[1]),
        timers=timers,
    )
