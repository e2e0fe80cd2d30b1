"""A ticket's watchers: who may be told about it (read in one query), and explicit watch/unwatch.

`people` is the one read behind both the enqueue hook (app.crud.notify) and GET .../watchers: the
users it is asked for, the ticket's commenters and explicit watch rows, and (for an SLA notice on
an unassigned ticket) the agents and admins of its team, each with their role, active flag, team,
explicit row, whether they commented, and the kinds they switched off. Which of them watch and who
is told is decided by app.notifications.

Watching is not a change of the ticket: no version, no event, no hook. An unwatch is a row with
`watching` false (it beats the automatic reasons); watching again sets it true. Both are upserts,
so repeating them (or two at once) is harmless.
"""

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, exists, false, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import notifications
from app.core.database import Database
from app.core.errors import Invalid, NotFound
from app.crud import common
from app.crud.tickets import visible_ticket
from app.models import (
    Comment,
    NotificationKind,
    NotificationSetting,
    Role,
    Ticket,
    TicketWatcher,
    User,
    WatcherPublic,
)
from app.notifications import Person
from app.permissions import Permission as P
from app.permissions import can_see, has, require, sees_internal_notes

_USERS = User.__table__  # type: ignore[attr-defined]
_WATCHERS = TicketWatcher.__table__  # type: ignore[attr-defined]
_COMMENTS = Comment.__table__  # type: ignore[attr-defined]
_SETTINGS = NotificationSetting.__table__  # type: ignore[attr-defined]
USER_NOT_FOUND = "User not found"


@cache
def _people_statement(
    *, users: bool, watchers: bool, team: bool, kinds: bool, public_only: bool
) -> Select[Any]:
    """The `people` query of one shape, built once (its values are bound parameters: building a
    statement costs more CPU than running it)."""
    u, w, c, s = _USERS.c, _WATCHERS.c, _COMMENTS.c, _SETTINGS.c
    ticket_id: BindParameter[int] = bindparam("ticket_id")
    wanted = []
    if users:
        wanted.append(u.id.in_(bindparam("users", expanding=True)))
    if watchers:
        wanted.append(u.id.in_(select(c.author_id).where(c.ticket_id == ticket_id)))
        wanted.append(u.id.in_(select(w.user_id).where(w.ticket_id == ticket_id)))
    if team:
        roles = [role.value for role in sorted(notifications.SLA_TEAM_ROLES)]
        wanted.append(and_(u.team_id == bindparam("team_id"), u.role.in_(roles)))
    by_author = [c.ticket_id == ticket_id, c.author_id == u.id]
    if public_only:
        by_author.append(c.internal == false())
    commented = exists().where(*by_author) if watchers else false()
    joined = _USERS.outerjoin(_WATCHERS, and_(w.ticket_id == ticket_id, w.user_id == u.id))
    columns = [
        u.id,
        u.role,
        u.is_active,
        u.team_id,
        u.email,
        u.full_name,
        w.watching,
        commented,
        u.is_service_account,
    ]
    if kinds:
        opted_out = and_(
            s.user_id == u.id, s.enabled == false(), s.kind.in_(bindparam("kinds", expanding=True))
        )
        joined = joined.outerjoin(_SETTINGS, opted_out)
        columns.append(s.kind)
    return sa_select(*columns).select_from(joined).where(or_(*wanted))


async def people(
    session: AsyncSession,
    ticket: Ticket,
    *,
    users: Collection[int] = (),
    watchers: bool = False,
    team: bool = False,
    kinds: Collection[NotificationKind] = (),
    public_comments_only: bool = False,
) -> dict[int, Person]:
    """Everyone who may be told about `ticket` (see the module docstring), by id; one query.
    `kinds`: the kinds whose opt-outs to read; `public_comments_only`: a note makes no commenter."""
    team = team and ticket.team_id is not None
    if not (users or watchers or team):
        return {}
    stmt = _people_statement(
        users=bool(users), watchers=watchers, team=team, kinds=bool(kinds), public_only=public_comments_only
    )
    params: dict[str, Any] = {"ticket_id": ticket.id}
    if users:
        params["users"] = sorted(users)
    if team:
        params["team_id"] = ticket.team_id
    if kinds:
        params["kinds"] = sorted(kinds)
    rows = (await (await session.connection()).execute(stmt, params)).all()
    found: dict[int, Person] = {}
    for row in rows:
        user_id, role, active, team_id, email, name, watching, did_comment, service = row[:9]
        off = frozenset({NotificationKind(row[9])}) if kinds and row[9] is not None else frozenset()
        known = found.get(user_id)
        if known is not None:
            off |= known.disabled
        found[user_id] = Person(
            id=user_id,
            role=Role(role),
            is_active=bool(active),
            team_id=team_id,
            watching=None if watching is None else bool(watching),
            commented=bool(did_comment),
            email=email,
            full_name=name,
            disabled=off,
            is_service_account=bool(service),
        )
    return found


def _public(person: Person, ticket: Ticket, viewer: User) -> WatcherPublic | None:
    """A watcher as `viewer` sees them, or None when they are no watcher anyone would tell (they
    unwatched it, are inactive, or can no longer see the ticket)."""
    reasons = notifications.watch_reasons(person, ticket)
    if not reasons or not person.is_active or not person.can_see(ticket):
        return None
    return WatcherPublic(
        user_id=person.id,
        email=person.email if has(viewer, P.user_read) else None,
        full_name=person.full_name,
        reasons=reasons,
    )


async def _watchers_of(session: AsyncSession, ticket: Ticket, viewer: User) -> list[WatcherPublic]:
    users = {ticket.reporter_id} | ({ticket.assignee_id} if ticket.assignee_id is not None else set())
    found = await people(
        session, ticket, users=users, watchers=True, public_comments_only=not sees_internal_notes(viewer)
    )
    shown = (_public(person, ticket, viewer) for _, person in sorted(found.items()))
    return [watcher for watcher in shown if watcher is not None]


async def list_watchers(*, db: Database, ticket_id: int, viewer: User) -> list[WatcherPublic]:
    """Who watches the ticket and why (404 if the viewer cannot see it). Reporters see no e-mail
    addresses, and no one who only wrote internal notes."""
    session = await db.reader()
    ticket = await visible_ticket(session, ticket_id, viewer)
    return await _watchers_of(session, ticket, viewer)


async def _set_watching(session: AsyncSession, *, ticket_id: int, user_id: int, watching: bool) -> None:
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = insert(_WATCHERS).values(
        ticket_id=ticket_id, user_id=user_id, watching=watching, created_at=common.utcnow()
    )
    await session.exec(
        row.on_conflict_do_update(
            index_elements=[_WATCHERS.c.ticket_id, _WATCHERS.c.user_id], set_={"watching": watching}
        )
    )


async def watch(*, db: Database, ticket_id: int, actor: User, user_id: int | None) -> list[WatcherPublic]:
    """`user_id` (default: the actor) watches the ticket from now on; the watchers afterwards.
    404: the actor cannot see the ticket; 403: a reporter naming someone else; 422: the user named
    does not exist, is inactive or cannot see the ticket."""
    async with db.write() as session:
        ticket = await visible_ticket(session, ticket_id, actor)
        assert actor.id is not None
        target = actor.id if user_id is None else user_id
        if target != actor.id:
            require(actor, P.ticket_edit, "add other watchers")
            user = await session.get(User, target)
            if user is None or not user.is_active or not can_see(user, ticket):
                raise Invalid("user_id", f"no active user with id {target} who can see this ticket")
        await _set_watching(session, ticket_id=ticket_id, user_id=target, watching=True)
        await session.flush()
        return await _watchers_of(session, ticket, actor)


async def unwatch(*, db: Database, ticket_id: int, actor: User, user_id: int) -> None:
    """`user_id` stops watching the ticket, whatever made them watch it (yourself always; others:
    agents and admins). 404: the ticket (as for every ticket route) or the user does not exist."""
    async with db.write() as session:
        await visible_ticket(session, ticket_id, actor)
        if user_id != actor.id:
            require(actor, P.ticket_edit, "remove other watchers")
            if await session.get(User, user_id) is None:
                raise NotFound(USER_NOT_FOUND)
        await _set_watching(session, ticket_id=ticket_id, user_id=user_id, watching=False)
