"""Tickets: reading one, filing, editing, lifecycle moves, deleting, and the audit trail.

Every write is one transaction (app.core.database: `db.write()`): the ticket's new version and the
events that record it are stored together or not at all. Rules come from app.lifecycle (moves) and
app.permissions (roles); the errors raised are app.core.errors, which the API maps to statuses.
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import lifecycle
from app.core.database import Database
from app.core.errors import Conflict, Forbidden, Invalid, NotFound, StaleVersion
from app.core.request_context import current_request_id
from app.crud import common
from app.crud.common import check_assignee, check_team, page, text_value
from app.crud.prepared import Prepared
from app.models import (
    EventAction,
    StatusChange,
    Ticket,
    TicketCreate,
    TicketEvent,
    TicketStatus,
    TicketUpdate,
    TransitionOption,
    TransitionsPublic,
    User,
)
from app.permissions import Permission as P
from app.permissions import can_see, has, require, sees_internal_notes

TICKET_NOT_FOUND = "Ticket not found"
# Fields recorded by the `created` events, i.e. what a ticket's history starts from.
CREATED_FIELDS = ("title", "description", "priority", "status", "reporter_id", "assignee_id", "team_id")


class Change:
    """One accepted write: bumps the ticket's version once and collects the events that record it."""

    def __init__(self, ticket: Ticket, actor: User, *, now: datetime | None = None) -> None:
        self.ticket, self.actor, self.now = ticket, actor, now or common.utcnow()
        self.events: list[TicketEvent] = []

    def record(
        self, action: EventAction, field: str | None, old: Any, new: Any, reason: str | None = None
    ) -> None:
        assert self.ticket.id is not None and self.actor.id is not None
        self.events.append(
            TicketEvent(
                ticket_id=self.ticket.id,
                actor_id=self.actor.id,
                action=action,
                field=field,
                old_value=text_value(old),
                new_value=text_value(new),
                reason=reason,
                ticket_version=self.ticket.version,
                created_at=self.now,
                request_id=current_request_id(),
            )
        )

    def set(self, field: str, value: Any, action: EventAction = EventAction.updated) -> None:
        old = getattr(self.ticket, field)
        if old != value:
            setattr(self.ticket, field, value)
            self.record(action, field, old, value)

    def bump(self) -> None:
        self.ticket.version += 1
        self.ticket.updated_at = self.now

    def save(self, session: AsyncSession) -> Ticket:
        """Add the ticket and its events to the write's transaction (committed when it ends)."""
        session.add(self.ticket)
        session.add_all(self.events)
        return self.ticket


async def visible_ticket(
    session: AsyncSession, ticket_id: int, viewer: User, *, for_update: bool = False
) -> Ticket:
    ticket = await session.get(Ticket, ticket_id, with_for_update=for_update)
    if ticket is None or not can_see(viewer, ticket):
        raise NotFound(TICKET_NOT_FOUND)
    return ticket


def check_version(ticket: Ticket, expected: set[int] | None) -> None:
    """`expected` comes from If-Match: None means no precondition."""
    if expected is not None and ticket.version not in expected:
        raise StaleVersion(
            "The ticket has changed since you read it; reload and retry", current_version=ticket.version
        )


# One ticket by id, for reading (GET, its transitions): a prepared statement (app.crud.prepared).
_TICKETS = Ticket.__table__  # type: ignore[attr-defined]
_TICKET_FIELDS = tuple(name for name in Ticket.model_fields if name in _TICKETS.c)
_TICKET_BY_ID = Prepared(
    select(*(_TICKETS.c[name] for name in _TICKET_FIELDS)).where(_TICKETS.c.id == bindparam("ticket_id"))
)


async def get_ticket(*, db: Database, ticket_id: int, viewer: User) -> Ticket:
    """A snapshot of the ticket (not attached to a session), if the viewer may see it."""
    rows = await _TICKET_BY_ID.rows(await db.connection(), {"ticket_id": ticket_id})
    ticket = Ticket.model_construct(**dict(zip(_TICKET_FIELDS, rows[0], strict=True))) if rows else None
    if ticket is None or not can_see(viewer, ticket):
        raise NotFound(TICKET_NOT_FOUND)
    return ticket


async def create_ticket(
    *,
    db: Database,
    ticket_in: TicketCreate,
    reporter: User,
    before_commit: Callable[[AsyncSession, Ticket], Awaitable[None]] | None = None,
) -> Ticket:
    """`before_commit(session, ticket)` may add rows to the same transaction (an idempotency key's
    response)."""
    require(reporter, P.ticket_create, "create tickets")
    if ticket_in.assignee_id is not None:
        require(reporter, P.ticket_assign, "assign tickets")
    async with db.write() as session:
        await check_assignee(session, ticket_in.assignee_id)
        await check_team(session, ticket_in.team_id)
        now = common.utcnow()
        ticket = Ticket.model_validate(ticket_in, update={"reporter_id": reporter.id, "created_at": now})
        ticket.updated_at = now
        session.add(ticket)
        await session.flush()
        change = Change(ticket, reporter, now=now)
        for field in CREATED_FIELDS:
            if (value := getattr(ticket, field)) is not None:
                change.record(EventAction.created, field, None, value)
        if before_commit is not None:
            await before_commit(session, ticket)
        change.save(session)
    return ticket


async def update_ticket(
    *, db: Database, ticket_id: int, ticket_in: TicketUpdate, actor: User, expected: set[int] | None
) -> Ticket:
    async with db.write() as session:
        ticket = await visible_ticket(session, ticket_id, actor, for_update=True)
        require(actor, P.ticket_edit, "edit tickets")
        check_version(ticket, expected)
        if ticket.status in lifecycle.FINAL:
            raise Conflict(
                f"The ticket is {ticket.status.value}; it can no longer be edited", status=ticket.status
            )
        data = ticket_in.model_dump(exclude_unset=True)
        if "assignee_id" in data:
            await check_assignee(session, data["assignee_id"])
        if "team_id" in data:
            await check_team(session, data["team_id"])
        if all(getattr(ticket, field) == value for field, value in data.items()):
            return ticket  # nothing changes: no new version, no event
        change = Change(ticket, actor)
        change.bump()
        for field, value in data.items():
            change.set(field, value, EventAction.assigned if field == "assignee_id" else EventAction.updated)
        change.save(session)
    return ticket


def _refuse_move(ticket: Ticket, target: TicketStatus, allowed: Sequence[TicketStatus]) -> Conflict:
    current = ticket.status
    if target == current:
        detail = f"Ticket is already {current.value}"
    else:
        detail = f"Ticket cannot move from {current.value} to {target.value}"
    return Conflict(detail, current=current, allowed=list(allowed))


def _may_move(user: User, ticket: Ticket, transition: lifecycle.Transition) -> bool:
    if has(user, P.ticket_move):
        return True
    return transition.reporter_may and ticket.reporter_id == user.id


def _moves_for(user: User, ticket: Ticket) -> list[lifecycle.Transition]:
    return [t for t in lifecycle.moves_from(ticket.status) if _may_move(user, ticket, t)]


async def move_ticket(
    *, db: Database, ticket_id: int, move: StatusChange, actor: User, expected: set[int] | None
) -> Ticket:
    async with db.write() as session:
        ticket = await visible_ticket(session, ticket_id, actor, for_update=True)
        transition = lifecycle.find(ticket.status, move.status)
        if transition is None:
            raise _refuse_move(ticket, move.status, [t.target for t in _moves_for(actor, ticket)])
        if not _may_move(actor, ticket, transition):
            raise Forbidden(f"{actor.role.value}s may not move this ticket to {move.status.value}")
        if move.assignee_id is not None:
            require(actor, P.ticket_assign, "assign tickets")
            await check_assignee(session, move.assignee_id)
        check_version(ticket, expected)

        has_assignee = ticket.assignee_id is not None or move.assignee_id is not None
        for field in lifecycle.required_fields(transition, has_assignee=has_assignee):
            if getattr(move, field) is None:
                raise Invalid(
                    field, f"required to move from {ticket.status.value} to {move.status.value}", "missing"
                )
        if move.resolution is not None and lifecycle.RESOLUTION not in transition.requires:
            raise Invalid("resolution", f"only given when moving to {TicketStatus.resolved.value}")

        change = Change(ticket, actor)
        change.bump()
        change.record(EventAction.status_changed, "status", ticket.status, move.status, reason=move.reason)
        ticket.status = move.status
        if move.assignee_id is not None:
            change.set("assignee_id", move.assignee_id, EventAction.assigned)
        if lifecycle.RESOLUTION in transition.requires:
            change.set("resolution", move.resolution)
            ticket.resolved_at = change.now
        if transition.reopen:
            change.set("resolution", None)
            ticket.resolved_at = None
            ticket.reopen_count += 1
        if move.status in lifecycle.FINAL:
            ticket.closed_at = change.now
        change.save(session)
    return ticket


async def list_transitions(*, db: Database, ticket_id: int, viewer: User) -> TransitionsPublic:
    ticket = await get_ticket(db=db, ticket_id=ticket_id, viewer=viewer)
    has_assignee = ticket.assignee_id is not None
    options = [
        TransitionOption(status=t.target, requires=lifecycle.required_fields(t, has_assignee=has_assignee))
        for t in _moves_for(viewer, ticket)
    ]
    return TransitionsPublic(current=ticket.status, transitions=options)


async def delete_ticket(
    *, db: Database, ticket_id: int, actor: User, expected: set[int] | None = None
) -> None:
    async with db.write() as session:
        ticket = await visible_ticket(session, ticket_id, actor, for_update=True)
        require(actor, P.ticket_delete, "delete tickets")
        check_version(ticket, expected)
        await session.delete(ticket)  # events and comments go with it (ON DELETE CASCADE)


async def list_events(
    *, db: Database, ticket_id: int, viewer: User, offset: int, limit: int
) -> tuple[list[TicketEvent], int]:
    session = await db.reader()
    await visible_ticket(session, ticket_id, viewer)
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    if not sees_internal_notes(viewer):
        stmt = stmt.where(TicketEvent.action != EventAction.noted)
    return await page(session, stmt.order_by(col(TicketEvent.id)), offset=offset, limit=limit)


async def count_tickets_by_status(*, db: Database) -> dict[TicketStatus, int]:
    """Tickets per status, for /metrics (statuses with no ticket are absent)."""
    stmt = select(Ticket.status, func.count()).group_by(col(Ticket.status))
    session = await db.reader()
    return {TicketStatus(status): count for status, count in (await session.exec(stmt)).all()}
