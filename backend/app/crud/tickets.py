"""Tickets: reading one, filing, editing, lifecycle moves, deleting, and the audit trail.

Every write is one transaction (app.crud.ticket_writes: `transaction(db)`): the ticket's new
version, the events that record it (app.audit) and what the write hooks add are stored together or
not at all. An edit, a move and a delete load their ticket with `ticket_for_write`, which checks the
preconditions in one order (404, 403, 412, 409). Rules come from app.lifecycle (moves: what exists,
who may, what they require and change) and app.permissions (roles); the errors raised are
app.core.errors, which the API maps to statuses.
"""

from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import audit, lifecycle
from app.core.database import Database
from app.core.errors import Conflict, Forbidden, Invalid, NotFound, StaleVersion
from app.crud import common, ticket_writes
from app.crud.common import check_assignee, check_team, page
from app.crud.prepared import Prepared
from app.crud.ticket_writes import WriteKind
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


async def ticket_for_write(
    session: AsyncSession,
    ticket_id: int,
    actor: User,
    *,
    expected: set[int] | None,
    permitted: Callable[[Ticket], None],
    state_allows: Callable[[Ticket], None] = lambda _ticket: None,
) -> Ticket:
    """The ticket an edit, a move or a delete writes to, locked, once its preconditions hold, checked
    in this one order: it exists and the actor sees it (404); `permitted` (raises Forbidden: 403);
    If-Match, `expected` (412, with the current version); `state_allows` (raises Conflict: 409).
    What the request body refers to (an assignee, a team, required fields: 422) is checked after."""
    ticket = await visible_ticket(session, ticket_id, actor, for_update=True)
    permitted(ticket)
    check_version(ticket, expected)
    state_allows(ticket)
    return ticket


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
    async with ticket_writes.transaction(db) as tx:
        session = tx.session
        await check_assignee(session, ticket_in.assignee_id)
        await check_team(session, ticket_in.team_id)
        now = common.utcnow()
        ticket = Ticket.model_validate(ticket_in, update={"reporter_id": reporter.id, "created_at": now})
        ticket.updated_at = now
        session.add(ticket)
        await session.flush()
        change = tx.change(WriteKind.created, ticket, reporter, now=now)
        for field, value in audit.created({name: getattr(ticket, name) for name in audit.CREATED_FIELDS}):
            change.record(EventAction.created, field, None, value)
        if before_commit is not None:
            await before_commit(session, ticket)
    return ticket


def _editable(ticket: Ticket) -> None:
    if not lifecycle.editable(ticket.status):
        raise Conflict(
            f"The ticket is {ticket.status.value}; it can no longer be edited", status=ticket.status
        )


async def update_ticket(
    *, db: Database, ticket_id: int, ticket_in: TicketUpdate, actor: User, expected: set[int] | None
) -> Ticket:
    """Nulls are what TicketUpdate lets through: a null clears a field that may be cleared."""
    data = ticket_in.model_dump(exclude_unset=True)
    async with ticket_writes.transaction(db) as tx:
        ticket = await ticket_for_write(
            tx.session,
            ticket_id,
            actor,
            expected=expected,
            permitted=lambda _ticket: require(actor, P.ticket_edit, "edit tickets"),
            state_allows=_editable,
        )
        if "assignee_id" in data:
            await check_assignee(tx.session, data["assignee_id"])
        if "team_id" in data:
            await check_team(tx.session, data["team_id"])
        if all(getattr(ticket, field) == value for field, value in data.items()):
            return ticket  # nothing changes: no new version, no event, no hook
        change = tx.change(WriteKind.updated, ticket, actor)
        change.bump()
        change.apply(data)
    return ticket


def _mover(user: User, ticket: Ticket) -> lifecycle.Mover:
    """The lifecycle's view of who asks for a move (their role's say from app.permissions)."""
    return lifecycle.Mover(
        may_move_any=has(user, P.ticket_move),
        is_reporter=ticket.reporter_id == user.id,
        is_assignee=ticket.assignee_id == user.id,
    )


def _may_move(actor: User, move: StatusChange) -> Callable[[Ticket], None]:
    """A move the table has must be one the actor may make (a move it lacks is refused by the state:
    409); giving an assignee needs the assign permission."""

    def check(ticket: Ticket) -> None:
        transition = lifecycle.find(ticket.status, move.status)
        if transition is not None and not lifecycle.may_make(transition, _mover(actor, ticket)):
            raise Forbidden(f"{actor.role.value}s may not move this ticket to {move.status.value}")
        if move.assignee_id is not None:
            require(actor, P.ticket_assign, "assign tickets")

    return check


def _movable(actor: User, target: TicketStatus) -> Callable[[Ticket], None]:
    """409 unless the table has the move, naming the moves open to the actor."""

    def check(ticket: Ticket) -> None:
        if lifecycle.find(ticket.status, target) is not None:
            return
        current = ticket.status
        allowed = [t.target for t in lifecycle.moves_for(current, _mover(actor, ticket))]
        if target == current:
            detail = f"Ticket is already {current.value}"
        else:
            detail = f"Ticket cannot move from {current.value} to {target.value}"
        raise Conflict(detail, current=current, allowed=allowed)

    return check


async def move_ticket(
    *, db: Database, ticket_id: int, move: StatusChange, actor: User, expected: set[int] | None
) -> Ticket:
    async with ticket_writes.transaction(db) as tx:
        ticket = await ticket_for_write(
            tx.session,
            ticket_id,
            actor,
            expected=expected,
            permitted=_may_move(actor, move),
            state_allows=_movable(actor, move.status),
        )
        transition = lifecycle.find(ticket.status, move.status)
        assert transition is not None  # _movable
        await check_assignee(tx.session, move.assignee_id)
        has_assignee = ticket.assignee_id is not None or move.assignee_id is not None
        given = move.model_dump(include={lifecycle.RESOLUTION, lifecycle.REASON, lifecycle.ASSIGNEE})
        refused = lifecycle.refused_field(transition, has_assignee=has_assignee, given=given)
        if refused is not None:
            raise Invalid(*refused)
        change = tx.change(WriteKind.moved, ticket, actor)
        change.bump()
        changes = lifecycle.changes(
            transition,
            at=change.now,
            reopen_count=ticket.reopen_count,
            assignee_id=move.assignee_id,
            resolution=move.resolution,
        )
        change.apply(changes, reason=move.reason)
    return ticket


async def list_transitions(*, db: Database, ticket_id: int, viewer: User) -> TransitionsPublic:
    ticket = await get_ticket(db=db, ticket_id=ticket_id, viewer=viewer)
    has_assignee = ticket.assignee_id is not None
    options = [
        TransitionOption(status=t.target, requires=lifecycle.required_fields(t, has_assignee=has_assignee))
        for t in lifecycle.moves_for(ticket.status, _mover(viewer, ticket))
    ]
    return TransitionsPublic(current=ticket.status, transitions=options)


async def delete_ticket(
    *, db: Database, ticket_id: int, actor: User, expected: set[int] | None = None
) -> None:
    """Any state may be deleted (no 409); its events and comments go with it."""
    async with ticket_writes.transaction(db) as tx:
        ticket = await ticket_for_write(
            tx.session,
            ticket_id,
            actor,
            expected=expected,
            permitted=lambda _ticket: require(actor, P.ticket_delete, "delete tickets"),
        )
        tx.change(WriteKind.deleted, ticket, actor)


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
