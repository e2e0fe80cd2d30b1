"""A ticket write's transaction, and the one seam where what it records is handed on.

Every ticket write (create, edit, move, comment, delete) runs in `async with transaction(db) as tx`
and declares itself once with `tx.change(kind, ticket, actor)`; the `Change` bumps the version and
collects the events (app.audit says which). When the block ends without an error, the ticket and
its events are flushed and the write is handed, as one `TicketWrite` (kind, ticket, actor, request
id, version, the events with their ids), to the hooks registered here:

- before-commit hooks, `hook(session, write)`, run in the write's own transaction after its rows
  are flushed, so they see the database as the write leaves it. This is where whatever must hold
  together with the write goes: SLA timers recomputed, notifications and webhooks written to the
  outbox. A hook that raises rolls the whole write back (nothing is stored; the API answers 500).
- after-commit hooks, `hook(write)`, run once the write is committed, for in-process reactions
  (metrics, waking a worker). They cannot undo the write: an error there is logged, not raised.

The rule: side effects that leave the process (e-mail, webhooks, any network call) never run inside
the request's transaction, not even in an after-commit hook of the request. They are written to
the outbox in the transaction and delivered by the worker, so a write and what it announces are
stored together or not at all, and a slow receiver never holds a lock.

A write refused before its end (404, 403, 412, 409, 422, or a database error) is rolled back and
calls no hook; so does an edit that changes nothing (no version, no event).
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app import audit, sla
from app.core.database import Database
from app.core.request_context import current_request_id
from app.crud import common, sla_timers
from app.models import EventAction, SlaTimer, Ticket, TicketEvent, TimerKind, User

logger = logging.getLogger("app.ticket_writes")


class WriteKind(StrEnum):
    created = "created"
    updated = "updated"
    moved = "moved"
    commented = "commented"
    deleted = "deleted"
    sla = "sla"  # the SLA clock recorded a warning or a breach (no actor)


@dataclass(frozen=True)
class TicketWrite:
    """One committed ticket write, as the hooks see it. `events` are the rows it added to the audit
    trail, in order (none for a delete: a ticket's events go with it)."""

    kind: WriteKind
    ticket: Ticket
    actor_id: int | None  # None: the system (the SLA clock)
    request_id: str | None
    version: int
    events: tuple[TicketEvent, ...]


BeforeCommit = Callable[[AsyncSession, TicketWrite], Awaitable[None]]
AfterCommit = Callable[[TicketWrite], None]
_before_commit: list[BeforeCommit] = []
_after_commit: list[AfterCommit] = []


def register(*, before: BeforeCommit | None = None, after: AfterCommit | None = None) -> Callable[[], None]:
    """Add hooks, run on every ticket write from now on, in the order they were added; returns the
    function that removes them again."""
    if before is not None:
        _before_commit.append(before)
    if after is not None:
        _after_commit.append(after)

    def unregister() -> None:
        if before is not None:
            _before_commit.remove(before)
        if after is not None:
            _after_commit.remove(after)

    return unregister


class Change:
    """One accepted write: bumps the ticket's version once and collects the events that record it."""

    def __init__(
        self, kind: WriteKind, ticket: Ticket, actor: User | None, *, now: datetime | None = None
    ) -> None:
        self.kind, self.ticket, self.actor, self.now = kind, ticket, actor, now or common.utcnow()
        self.events: list[TicketEvent] = []
        self.bumped = False

    def record(
        self, action: EventAction, field: str | None, old: Any, new: Any, reason: str | None = None
    ) -> None:
        assert self.ticket.id is not None
        self.events.append(
            TicketEvent(
                ticket_id=self.ticket.id,
                actor_id=None if self.actor is None else self.actor.id,
                action=action,
                field=field,
                old_value=audit.text_value(old),
                new_value=audit.text_value(new),
                reason=reason,
                ticket_version=self.ticket.version,
                created_at=self.now,
                request_id=current_request_id(),
            )
        )

    def bump(self) -> None:
        self.bumped = True
        self.ticket.version += 1
        self.ticket.updated_at = self.now

    def apply(self, changes: dict[str, Any], *, reason: str | None = None) -> None:
        """Set the fields and record the events app.audit says they make (`reason` goes on the
        status event)."""
        current = {name: getattr(self.ticket, name) for name in changes}
        for action, name, old in audit.recorded(current, changes):
            self.record(
                action, name, old, changes[name], reason if action == EventAction.status_changed else None
            )
        for name, value in changes.items():
            setattr(self.ticket, name, value)


class TicketTransaction:
    """What `transaction(db)` yields: the write's session, and the change it declares."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.changed: Change | None = None
        self._settled = False

    def change(
        self, kind: WriteKind, ticket: Ticket, actor: User | None, *, now: datetime | None = None
    ) -> Change:
        assert self.changed is None, "one change per ticket write"
        self.changed = Change(kind, ticket, actor, now=now)
        return self.changed

    async def settle(self) -> None:
        """Write the change's rows and bring the ticket's SLA timers in step with it (app.crud.sla:
        their events join the change's), once. `flush` does it; a write that serializes the
        ticket inside the transaction (an idempotent create) calls it first."""
        change = self.changed
        if change is None or self._settled:
            return
        self._settled = True
        if change.kind == WriteKind.deleted:
            await self.session.delete(change.ticket)  # events and comments go with it (ON DELETE CASCADE)
            await self.session.flush()
            return
        if change.kind == WriteKind.created:
            # A new ticket's timers read nothing of this write's rows: one flush for all of them.
            await sla_timers.refresh(self.session, change)
            self.session.add(change.ticket)
            self.session.add_all(change.events)
            await self.session.flush()
            return
        self.session.add(change.ticket)
        self.session.add_all(change.events)
        await self.session.flush()  # the history the timers are rebuilt from includes this write
        recorded = len(change.events)
        await sla_timers.refresh(self.session, change)
        self.session.add_all(change.events[recorded:])
        await self.session.flush()

    async def flush(self) -> TicketWrite | None:
        """Write the declared change's rows (the ticket, its events; or the delete) and describe it."""
        if self.changed is None:
            return None
        await self.settle()
        return _described(self.changed)


def _described(change: Change) -> TicketWrite:
    return TicketWrite(
        kind=change.kind,
        ticket=change.ticket,
        actor_id=None if change.actor is None else change.actor.id,
        request_id=current_request_id(),
        version=change.ticket.version,
        events=tuple(change.events),
    )


async def _before(session: AsyncSession, write: TicketWrite) -> None:
    for before in list(_before_commit):
        await before(session, write)


def after_commit(writes: Iterable[TicketWrite]) -> None:
    """Run the after-commit hooks for committed writes (an error there is logged, not raised)."""
    for write in writes:
        for after in list(_after_commit):
            try:
                after(write)
            except Exception:
                logger.exception("an after-commit hook failed on a %s write (the write stands)", write.kind)


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[TicketTransaction]:
    """A ticket write (see the module docstring): its rows, then the before-commit hooks, in one
    transaction; after the commit, the after-commit hooks."""
    async with db.write() as session:
        tx = TicketTransaction(session)
        yield tx
        write = await tx.flush()
        if write is not None:
            await _before(session, write)
    if write is not None:
        after_commit([write])


async def record_sla(
    session: AsyncSession, ticket: Ticket, *, now: datetime, policies: list[sla.Policy]
) -> TicketWrite | None:
    """The SLA clock's write on a ticket locked in `session`'s transaction: its timers brought to
    `now` (a warning or a breach recorded, as events without an actor, under a new version) and
    the before-commit hooks run; None when there was nothing to record. The caller commits, then
    calls `after_commit` with the writes."""
    writes = await record_sla_many(session, [ticket], now=now, policies=policies)
    return writes[0] if writes else None


async def record_sla_many(
    session: AsyncSession,
    tickets: Sequence[Ticket],
    *,
    now: datetime,
    policies: list[sla.Policy],
    stored: Mapping[int, dict[TimerKind, SlaTimer]] | None = None,
    facts: Mapping[int, sla.Facts] | None = None,
) -> list[TicketWrite]:
    """`record_sla` for a batch of locked tickets, written in one flush: `stored` and `facts` (by
    ticket id, app.crud.sla_timers' *_many loaders) spare each ticket its own reads."""
    changes = []
    for ticket in tickets:
        assert ticket.id is not None
        change = Change(WriteKind.sla, ticket, None, now=now)
        recorded = await sla_timers.refresh(
            session,
            change,
            policies=policies,
            stored=None if stored is None else stored[ticket.id],
            facts=None if facts is None else facts[ticket.id],
        )
        if recorded:
            session.add_all(change.events)
            changes.append(change)
    if not changes:
        return []
    await session.flush()
    writes = [_described(change) for change in changes]
    for write in writes:
        await _before(session, write)
    return writes
