"""All data access. Functions take the session and their arguments by keyword.

Every write commits as one transaction: a ticket change and the events that record it are stored
together or not at all. Rules come from app.lifecycle (moves) and app.permissions (roles); the
errors raised are app.core.errors, which the API maps to HTTP statuses.
"""

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar, cast

import psycopg
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import (
    ColumnElement,
    Double,
    Table,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    literal_column,
    table,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.selectable import GenerativeSelect, ScalarSelect, Select
from sqlalchemy.types import NullType
from sqlmodel import Session, SQLModel, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar

from app import lifecycle, ticket_query
from app.core import passwords, security
from app.core.config import get_settings
from app.core.errors import BadCredentials, Conflict, Forbidden, Invalid, NotFound, StaleVersion, Throttled
from app.core.request_context import current_request_id
from app.core.types import UTCDateTime
from app.models import (
    Comment,
    CommentCreate,
    EventAction,
    IdempotencyKey,
    IdempotencyState,
    LoginThrottle,
    Role,
    StatusChange,
    Team,
    TeamCreate,
    TeamUpdate,
    Ticket,
    TicketCreate,
    TicketEvent,
    TicketPublic,
    TicketQuery,
    TicketStatus,
    TicketUpdate,
    TransitionOption,
    TransitionsPublic,
    User,
    UserCreate,
    UserUpdate,
    UserUpdateMe,
    new_auth_stamp,
    utcnow,
)
from app.permissions import Permission as P
from app.permissions import can_see, has, require, sees_internal_notes
from app.search import SearchQuery

T = TypeVar("T", bound=SQLModel)


def get_schema_revision(*, session: Session) -> str | None:
    """The revision alembic last stamped on this database (None: never migrated)."""
    return MigrationContext.configure(session.connection()).get_current_revision()


def _page(session: Session, stmt: SelectOfScalar[T], *, offset: int, limit: int) -> tuple[list[T], int]:
    count = session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one()
    rows = session.exec(stmt.offset(offset).limit(limit)).all()
    return list(rows), count


def _commit(session: Session, *objects: SQLModel, conflict: str | None = None) -> None:
    """Commit; a unique-constraint clash becomes Conflict(conflict) when the caller expects one."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if conflict is None:
            raise
        raise Conflict(conflict) from None
    for obj in objects:
        session.refresh(obj)


# --- Users ----------------------------------------------------------------------------------------


def get_user(*, session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_or_404(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


def get_user_by_email(*, session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.lower())).first()


def list_users(*, session: Session, offset: int, limit: int) -> tuple[list[User], int]:
    return _page(session, select(User).order_by(col(User.id)), offset=offset, limit=limit)


def _email_taken(session: Session, email: str, *, other_than: int | None = None) -> bool:
    existing = get_user_by_email(session=session, email=email)
    return existing is not None and existing.id != other_than


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise Invalid("team_id", f"no team with id {team_id}")


EMAIL_TAKEN = "A user with this email already exists"


def _checked_hash(password: str, *, field: str, user_inputs: Iterable[str | None]) -> str:
    """The hash of a new password that passes the policy (app.core.passwords), else Invalid."""
    if problem := passwords.weakness(password, [value for value in user_inputs if value]):
        raise Invalid(field, problem)
    return security.hash_password(password)


def create_user(*, session: Session, user_in: UserCreate, hashed_password: str | None = None) -> User:
    if _email_taken(session, user_in.email):
        raise Conflict(EMAIL_TAKEN)
    _check_team(session, user_in.team_id)
    hashed = hashed_password or _checked_hash(
        user_in.password, field="password", user_inputs=(user_in.email, user_in.full_name)
    )
    user = User.model_validate(user_in, update={"hashed_password": hashed})
    session.add(user)
    _commit(session, user, conflict=EMAIL_TAKEN)
    return user


def _active_admins(session: Session) -> int:
    stmt = select(func.count()).where(User.role == Role.admin, col(User.is_active).is_(True))
    return session.exec(stmt).one()


def _guard_last_admin(session: Session, user: User, *, stays_admin: bool) -> None:
    if user.role == Role.admin and user.is_active and not stays_admin and _active_admins(session) <= 1:
        raise Conflict("This is the last active admin; make another admin first")


def update_user(*, session: Session, db_user: User, user_in: UserUpdate | UserUpdateMe) -> User:
    data = user_in.model_dump(exclude_unset=True)  # nulls only for fields that may be cleared
    if data.get("email") and _email_taken(session, data["email"], other_than=db_user.id):
        raise Conflict(EMAIL_TAKEN)
    _check_team(session, data.get("team_id"))
    role = data.get("role", db_user.role)
    active = data.get("is_active", db_user.is_active)
    _guard_last_admin(session, db_user, stays_admin=role == Role.admin and active)
    password = data.pop("password", None)
    if password:
        names = (data.get("email") or db_user.email, data.get("full_name") or db_user.full_name)
        data["hashed_password"] = _checked_hash(password, field="password", user_inputs=names)
    if password or role != db_user.role or (db_user.is_active and not active):
        data["auth_stamp"] = new_auth_stamp()  # revokes every token issued before this change
    db_user.sqlmodel_update(data)
    session.add(db_user)
    _commit(session, db_user, conflict=EMAIL_TAKEN)
    return db_user


def change_password(*, session: Session, user: User, current: str, new: str) -> None:
    if not security.verify_password(current, user.hashed_password):
        raise Invalid("current_password", "incorrect password")
    if current == new:
        raise Invalid("new_password", "must differ from the current password")
    user.hashed_password = _checked_hash(new, field="new_password", user_inputs=(user.email, user.full_name))
    user.auth_stamp = new_auth_stamp()  # every token issued before, this request's included, stops working
    session.add(user)
    session.commit()


def delete_user(*, session: Session, db_user: User) -> None:
    _guard_last_admin(session, db_user, stays_admin=False)
    user_id = db_user.id
    activity = [
        select(Ticket.id).where((Ticket.reporter_id == user_id) | (Ticket.assignee_id == user_id)),
        select(TicketEvent.id).where(TicketEvent.actor_id == user_id),
        select(Comment.id).where(Comment.author_id == user_id),
    ]
    if any(session.exec(stmt.limit(1)).first() is not None for stmt in activity):
        raise Conflict("This user has tickets, comments or audit events; deactivate them instead")
    session.delete(db_user)
    session.commit()


def authenticate(*, session: Session, email: str, password: str) -> User | None:
    """The user if the password matches; the same work is done when the address is unknown."""
    user = get_user_by_email(session=session, email=email)
    if user is None:
        security.verify_nobody(password)
        return None
    return user if security.verify_password(password, user.hashed_password) else None


def ensure_superuser(*, session: Session, email: str, password: str) -> tuple[User, bool]:
    """The admin with this e-mail, created if absent (True when created)."""
    existing = get_user_by_email(session=session, email=email)
    if existing is not None:
        return existing, False
    user_in = UserCreate(email=email, password=password, role=Role.admin, full_name="Administrator")
    return create_user(session=session, user_in=user_in), True


# --- Login throttling -----------------------------------------------------------------------------
# An attempt is counted BEFORE its password is checked, in one atomic statement (an upsert), and
# committed at once: however many requests arrive together, at most `limit` of them per window get
# a password check; the others are refused unchecked. A success takes its attempt back.


def throttle_key(kind: str, value: str) -> str:
    """`account:<sha256 of the e-mail>` (fixed length, whatever was typed) or `client:<address>`."""
    if kind == "account":
        return f"account:{hashlib.sha256(value.strip().lower().encode()).hexdigest()}"
    return f"client:{value[:64]}"


def _upsert_insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def count_login_attempt(
    *, session: Session, key: str, window: timedelta, now: datetime
) -> tuple[int, datetime]:
    """Count one attempt against `key` (a new window when the last one is over); commits.
    Returns (attempts in this window, this one included; when the window started)."""
    table_ = LoginThrottle.__table__  # type: ignore[attr-defined]
    over = table_.c.window_started_at <= bindparam("window_cutoff", now - window, type_=UTCDateTime())
    stmt = _upsert_insert(session)(table_).values(key=key, failures=1, window_started_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table_.c.key],
        set_={
            "failures": case((over, 1), else_=table_.c.failures + 1),
            "window_started_at": case(
                (over, stmt.excluded.window_started_at), else_=table_.c.window_started_at
            ),
        },
    ).returning(table_.c.failures, table_.c.window_started_at)
    attempts, started = session.execute(stmt).one()
    session.commit()
    return int(attempts), started


def take_back_login_attempt(*, session: Session, key: str, window_started_at: datetime) -> None:
    """Uncount an attempt counted by count_login_attempt (still in the same window); commits."""
    table_ = LoginThrottle.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table_)
        .where(table_.c.key == key, table_.c.window_started_at == window_started_at, table_.c.failures > 0)
        .values(failures=table_.c.failures - 1)
    )
    session.commit()


def clear_login_attempts(*, session: Session, key: str) -> None:
    session.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == key))
    session.commit()


BAD_CREDENTIALS = "Incorrect email or password"
THROTTLED = "Too many failed logins; try again later"


def log_in(*, session: Session, email: str, password: str, client: str) -> User:
    """The user these credentials name, with throttling per account and per client address.

    Each attempt is counted against both keys before the password is checked; over either limit
    in the window, it is refused with Throttled and counts against neither. A wrong password, an
    unknown address and an inactive account all answer BadCredentials alike and stay counted; a
    success clears the account's count and takes its attempt back from the address's count (so
    logging into one's own account never resets what the address has tried elsewhere).
    """
    settings = get_settings()
    window = timedelta(seconds=settings.LOGIN_WINDOW_SECONDS)
    limits = {
        throttle_key("account", email): settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        throttle_key("client", client): settings.LOGIN_MAX_FAILURES_PER_CLIENT,
    }
    now = utcnow()
    counted: dict[str, datetime] = {}
    waits: list[float] = []
    for key, limit in limits.items():
        attempts, started = count_login_attempt(session=session, key=key, window=window, now=now)
        counted[key] = started
        if attempts > limit:
            waits.append((started + window - now).total_seconds())
    if waits:
        for key, started in counted.items():  # a refused attempt is not an attempt
            take_back_login_attempt(session=session, key=key, window_started_at=started)
        raise Throttled(THROTTLED, retry_after=max(1, math.ceil(max(waits))))
    user = authenticate(session=session, email=email.strip(), password=password)
    if user is None or not user.is_active:  # an inactive account says nothing about its password
        raise BadCredentials(BAD_CREDENTIALS)
    account, address = limits
    clear_login_attempts(session=session, key=account)
    take_back_login_attempt(session=session, key=address, window_started_at=counted[address])
    return user


# --- Teams ----------------------------------------------------------------------------------------

TEAM_TAKEN = "A team with this name already exists"


def get_team(*, session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound("Team not found")
    return team


def list_teams(*, session: Session, offset: int, limit: int) -> tuple[list[Team], int]:
    return _page(session, select(Team).order_by(col(Team.name)), offset=offset, limit=limit)


def create_team(*, session: Session, team_in: TeamCreate) -> Team:
    team = Team.model_validate(team_in)
    session.add(team)
    _commit(session, team, conflict=TEAM_TAKEN)
    return team


def update_team(*, session: Session, team: Team, team_in: TeamUpdate) -> Team:
    team.sqlmodel_update(team_in.model_dump(exclude_unset=True))
    session.add(team)
    _commit(session, team, conflict=TEAM_TAKEN)
    return team


def delete_team(*, session: Session, team: Team) -> None:
    tickets = session.exec(select(func.count()).where(Ticket.team_id == team.id)).one()
    if tickets:
        raise Conflict(f"The team has {tickets} tickets; move them to another team first", tickets=tickets)
    session.delete(team)
    session.commit()


# --- Tickets --------------------------------------------------------------------------------------

TICKET_NOT_FOUND = "Ticket not found"
# Fields recorded by the `created` events, i.e. what a ticket's history starts from.
CREATED_FIELDS = ("title", "description", "priority", "status", "reporter_id", "assignee_id", "team_id")


def _text(value: Any) -> str | None:
    """Event values are text: enums by value, ids as digits, None as NULL."""
    if value is None:
        return None
    return str(value.value if hasattr(value, "value") else value)


class _Change:
    """One accepted write: bumps the ticket's version once and collects the events that record it."""

    def __init__(self, ticket: Ticket, actor: User, *, now: datetime | None = None) -> None:
        self.ticket, self.actor, self.now = ticket, actor, now or utcnow()
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
                old_value=_text(old),
                new_value=_text(new),
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

    def save(self, session: Session) -> Ticket:
        """Commit the ticket and its events together; the ticket keeps the values written here."""
        session.add(self.ticket)
        session.add_all(self.events)
        session.commit()
        return self.ticket


def _check_assignee(session: Session, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    user = session.get(User, assignee_id)
    if user is None or not user.is_active or user.role == Role.reporter:
        raise Invalid("assignee_id", f"no active agent or admin with id {assignee_id}")


def _visible_ticket(session: Session, ticket_id: int, viewer: User, *, for_update: bool = False) -> Ticket:
    ticket = session.get(Ticket, ticket_id, with_for_update=for_update)
    if ticket is None or not can_see(viewer, ticket):
        raise NotFound(TICKET_NOT_FOUND)
    return ticket


def _check_version(ticket: Ticket, expected: set[int] | None) -> None:
    """`expected` comes from If-Match: None means no precondition."""
    if expected is not None and ticket.version not in expected:
        raise StaleVersion(
            "The ticket has changed since you read it; reload and retry", current_version=ticket.version
        )


def get_ticket(*, session: Session, ticket_id: int, viewer: User) -> Ticket:
    return _visible_ticket(session, ticket_id, viewer)


# Sort name -> the indexed column it orders by (app.ticket_query names them; models.py indexes them).
_SORT_COLUMNS: dict[str, Any] = {
    "created_at": Ticket.created_at,
    "updated_at": Ticket.updated_at,
    "priority": Ticket.priority_rank,
    "status": Ticket.status_rank,
}


def _ticket_filters(query: TicketQuery, viewer: User) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not has(viewer, P.ticket_read_all):
        conditions.append(col(Ticket.reporter_id) == viewer.id)
    if query.status:
        conditions.append(col(Ticket.status).in_(query.status))
    if query.priority:
        conditions.append(col(Ticket.priority).in_(query.priority))
    people: list[tuple[Any, str | None]] = [
        (Ticket.assignee_id, query.assignee),
        (Ticket.reporter_id, query.reporter),
        (Ticket.team_id, query.team),
    ]
    for ref, value in people:
        if value == "none":
            conditions.append(col(ref).is_(None))
        elif value is not None:
            conditions.append(col(ref) == (viewer.id if value == "me" else int(value)))
    ranges: list[tuple[Any, datetime | None, datetime | None]] = [
        (Ticket.created_at, query.created_after, query.created_before),
        (Ticket.updated_at, query.updated_after, query.updated_before),
    ]
    for moment, after, before in ranges:
        if after is not None:
            conditions.append(col(moment) > after)
        if before is not None:
            conditions.append(col(moment) < before)
    return conditions


class _Search(NamedTuple):
    own: ColumnElement[bool]  # the ticket's own title or description matches
    via_comments: ColumnElement[bool]  # only a comment the viewer may read matches
    relevance: ColumnElement[float]  # of the ticket's own text


def _search(session: Session, text: SearchQuery, viewer: User) -> _Search:
    """How `text` matches tickets. PostgreSQL: tsvector + GIN; SQLite: FTS5.

    The two ways to match are kept apart, so a page can rank the tickets whose own text matches as
    it reads them (one bitmap scan) and add the comment-only matches after them,
    instead of collecting every match's id first and reading each ticket again to rank it.
    """
    comment_visible = [] if sees_internal_notes(viewer) else [col(Comment.internal).is_(False)]
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.websearch_to_tsquery("english", text.websearch())
        ticket_vector: ColumnElement[Any] = literal_column("tickets.search_vector")
        comment_vector: ColumnElement[Any] = literal_column("comments.search_vector")
        own = ticket_vector.op("@@")(tsquery)
        in_comments = select(Comment.ticket_id).where(comment_vector.op("@@")(tsquery), *comment_visible)
        # float8, not ts_rank's real: a cursor's value must round-trip through JSON exactly.
        relevance: ColumnElement[float] = func.ts_rank(ticket_vector, tsquery).cast(Double)
    else:
        expression = text.fts5()
        tickets_fts, comments_fts = (
            table("tickets_fts", column("rowid")),
            table("comments_fts", column("rowid")),
        )
        ticket_match = literal_column("tickets_fts").op("MATCH")(expression)
        own = col(Ticket.id).in_(select(tickets_fts.c.rowid).where(ticket_match))
        in_comments = (
            select(Comment.ticket_id)
            .join(comments_fts, comments_fts.c.rowid == Comment.id)
            .where(literal_column("comments_fts").op("MATCH")(expression), *comment_visible)
        )
        bm25 = select(-func.bm25(literal_column("tickets_fts"))).where(
            ticket_match, tickets_fts.c.rowid == Ticket.id
        )
        relevance = bm25.scalar_subquery()
    return _Search(own, col(Ticket.id).in_(in_comments) & ~own, relevance)


# What a list page returns, read as plain columns: a page is read-only, and building ORM objects or
# models for 50 rows per request would cost more than the queries themselves. The select is built
# once; enum and (on PostgreSQL, whose sessions run in UTC) timestamp columns skip SQLAlchemy's
# result conversion, since the values only go on to JSON.
_PUBLIC_NAMES = tuple(TicketPublic.model_fields)
_PUBLIC_COLUMNS = [getattr(Ticket, name) for name in _PUBLIC_NAMES]
_TICKET_ID: ColumnElement[Any] = Ticket.id  # type: ignore[assignment]


def _page_select(*, raw_timestamps: bool) -> Select[*tuple[Any, ...]]:
    def plain(column: Any) -> Any:
        if isinstance(column.type, UTCDateTime) and not raw_timestamps:
            return column
        return type_coerce(column, NullType()).label(column.key)

    return sa_select(*(plain(c) for c in _PUBLIC_COLUMNS))


_PAGE_SELECT_RAW = _page_select(raw_timestamps=True)  # PostgreSQL
_PAGE_SELECT_TYPED = _page_select(raw_timestamps=False)  # SQLite stores naive text timestamps


@dataclass(frozen=True, slots=True)
class TicketPage:
    """A list page in the shape of TicketsPublic (its fields, in its order), ready for JSON."""

    data: list[dict[str, Any]]  # shaped as TicketPublic
    count: int | None  # None on a page fetched with a cursor
    count_exact: bool  # False: at least `count` match (counting stopped at the limit)
    next_cursor: str | None  # None on the last page


class _Arm(NamedTuple):
    """Part of a list query: its conditions and the key it sorts by."""

    where: list[ColumnElement[bool]]
    key: ColumnElement[Any]


# Searching by relevance, a ticket found only through a comment sorts below any ticket whose own
# text matches (their relevance is at least 0), newest first among themselves.
_COMMENT_ONLY: ColumnElement[float] = literal(-1.0, Double)


def _total(arms: list[_Arm], *, exact: bool, limit: int) -> ScalarSelect[int]:
    """How many tickets the arms match: all of them when `exact`, else at most `limit + 1`."""
    ids = [sa_select(col(Ticket.id)).where(*arm.where) for arm in arms]
    matching: GenerativeSelect = ids[0] if len(ids) == 1 else union_all(*ids)
    if not exact:  # a list shows "1,000+"; counting every match costs O(matches)
        matching = matching.limit(limit + 1)
    return sa_select(func.count()).select_from(matching.subquery()).scalar_subquery()


def _in_order(
    stmt: Select[*tuple[Any, ...]],
    key: ColumnElement[Any],
    row_id: ColumnElement[Any],
    *,
    descending: bool,
    after: tuple[Any, int] | None,
) -> Select[*tuple[Any, ...]]:
    """`stmt` ordered by (key, id), starting after the cursor's position when there is one."""
    if after is not None:
        value, last_id = after
        row, bound = (
            tuple_(key, row_id),
            tuple_(bindparam(None, value, type_=key.type), bindparam(None, last_id)),
        )
        stmt = stmt.where(row < bound if descending else row > bound)
    return stmt.order_by(*((key.desc(), row_id.desc()) if descending else (key.asc(), row_id.asc())))


def list_tickets(*, session: Session, viewer: User, query: TicketQuery, count_limit: int) -> TicketPage:
    """One page of the tickets the viewer may see that match `query`, how many match (exact up to
    `count_limit`, or always with `query.exact_count`), and the cursor of the next page."""
    connection = session.connection()  # Core: rows as tuples, no ORM loading
    conditions = _ticket_filters(query, viewer)
    key_name, descending = query.order()
    # With `q`, two arms: the tickets whose own text matches, and those found only through a comment.
    if (text := query.search()) is None:
        arms = [_Arm(conditions, _SORT_COLUMNS[key_name])]
    else:
        found = _search(session, text, viewer)
        own, by_comment = [*conditions, found.own], [*conditions, found.via_comments]
        if key_name == "relevance":
            arms = [_Arm(own, found.relevance), _Arm(by_comment, _COMMENT_ONLY)]
        else:
            key = _SORT_COLUMNS[key_name]
            arms = [_Arm(own, key), _Arm(by_comment, key)]

    # The total does not change with depth: it comes with the first page (in the page's statement,
    # so from the same snapshot), and pages fetched with a cursor skip it, so they cost the same at
    # any depth.
    total = None if query.cursor is not None else _total(arms, exact=query.exact_count, limit=count_limit)
    after = query.after()
    base = _PAGE_SELECT_RAW if connection.dialect.name == "postgresql" else _PAGE_SELECT_TYPED
    rows: list[ResultRow[Any]] = []
    if len(arms) == 1 or (key_name == "relevance" and not query.offset):
        # By relevance the arms come in order, so they are read one after the other, and the
        # comment-only matches only when the own-text ones run out on this page: ranking reads each
        # match once, in the bitmap scan that finds it.
        for arm in arms:
            if len(rows) > query.limit or (arm is not arms[-1] and after is not None and after[0] < 0):
                continue  # the page is full, or the cursor is already past this arm
            stmt = base.add_columns(arm.key.label("sort_key")).where(*arm.where)
            if total is not None and not rows:
                stmt = stmt.add_columns(total.label("total"))
            stmt = _in_order(stmt, arm.key, _TICKET_ID, descending=descending, after=after)
            rows += connection.execute(stmt.offset(query.offset).limit(query.limit + 1 - len(rows))).all()
    else:  # sorted by a column (or paged by offset): both arms in one statement
        hits = union_all(
            *(base.add_columns(a.key.label("sort_key")).where(*a.where) for a in arms)
        ).subquery()
        stmt = sa_select(hits)
        if total is not None:
            stmt = stmt.add_columns(total.label("total"))
        stmt = _in_order(stmt, hits.c.sort_key, hits.c.id, descending=descending, after=after)
        rows = list(connection.execute(stmt.offset(query.offset).limit(query.limit + 1)).all())

    page = [dict(zip(_PUBLIC_NAMES, r, strict=False)) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = ticket_query.encode_cursor(key_name, last.sort_key, last.id, query.fingerprint())

    count, exact = None, False
    if total is not None:
        if rows:
            count = rows[0].total
        else:  # no row to carry it: none match, or the offset is past the end
            count = 0 if query.offset == 0 else connection.execute(sa_select(total)).scalar_one()
        exact = query.exact_count or count <= count_limit
        count = count if exact else count_limit
    return TicketPage(page, count, exact, next_cursor)


def create_ticket(
    *,
    session: Session,
    ticket_in: TicketCreate,
    reporter: User,
    before_commit: Callable[[Ticket], None] | None = None,
) -> Ticket:
    """`before_commit(ticket)` may add rows to the same transaction (an idempotency key's response)."""
    require(reporter, P.ticket_create, "create tickets")
    if ticket_in.assignee_id is not None:
        require(reporter, P.ticket_assign, "assign tickets")
    _check_assignee(session, ticket_in.assignee_id)
    _check_team(session, ticket_in.team_id)
    now = utcnow()
    ticket = Ticket.model_validate(ticket_in, update={"reporter_id": reporter.id, "created_at": now})
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    change = _Change(ticket, reporter, now=now)
    for field in CREATED_FIELDS:
        if (value := getattr(ticket, field)) is not None:
            change.record(EventAction.created, field, None, value)
    if before_commit is not None:
        before_commit(ticket)
    return change.save(session)


def update_ticket(
    *, session: Session, ticket_id: int, ticket_in: TicketUpdate, actor: User, expected: set[int] | None
) -> Ticket:
    ticket = _visible_ticket(session, ticket_id, actor, for_update=True)
    require(actor, P.ticket_edit, "edit tickets")
    _check_version(ticket, expected)
    if ticket.status in lifecycle.FINAL:
        raise Conflict(
            f"The ticket is {ticket.status.value}; it can no longer be edited", status=ticket.status
        )
    data = ticket_in.model_dump(exclude_unset=True)
    if "assignee_id" in data:
        _check_assignee(session, data["assignee_id"])
    if "team_id" in data:
        _check_team(session, data["team_id"])
    if all(getattr(ticket, field) == value for field, value in data.items()):
        return ticket  # nothing changes: no new version, no event
    change = _Change(ticket, actor)
    change.bump()
    for field, value in data.items():
        change.set(field, value, EventAction.assigned if field == "assignee_id" else EventAction.updated)
    return change.save(session)


def _refuse_move(ticket: Ticket, target: TicketStatus, allowed: Sequence[TicketStatus]) -> Conflict:
    current = ticket.status
    if target == current:
        detail = f"Ticket is already {current.value}"
    else:
        detail = f"Ticket cannot move from {current.value} to {target.value}"
    return Conflict(detail, current=current, allowed=list(allowed))


def move_ticket(
    *, session: Session, ticket_id: int, move: StatusChange, actor: User, expected: set[int] | None
) -> Ticket:
    ticket = _visible_ticket(session, ticket_id, actor, for_update=True)
    transition = lifecycle.find(ticket.status, move.status)
    if transition is None:
        raise _refuse_move(ticket, move.status, [t.target for t in _moves_for(actor, ticket)])
    if not _may_move(actor, ticket, transition):
        raise Forbidden(f"{actor.role.value}s may not move this ticket to {move.status.value}")
    if move.assignee_id is not None:
        require(actor, P.ticket_assign, "assign tickets")
        _check_assignee(session, move.assignee_id)
    _check_version(ticket, expected)

    has_assignee = ticket.assignee_id is not None or move.assignee_id is not None
    for field in lifecycle.required_fields(transition, has_assignee=has_assignee):
        if getattr(move, field) is None:
            raise Invalid(
                field, f"required to move from {ticket.status.value} to {move.status.value}", "missing"
            )
    if move.resolution is not None and lifecycle.RESOLUTION not in transition.requires:
        raise Invalid("resolution", f"only given when moving to {TicketStatus.resolved.value}")

    change = _Change(ticket, actor)
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
    return change.save(session)


def _may_move(user: User, ticket: Ticket, transition: lifecycle.Transition) -> bool:
    if has(user, P.ticket_move):
        return True
    return transition.reporter_may and ticket.reporter_id == user.id


def _moves_for(user: User, ticket: Ticket) -> list[lifecycle.Transition]:
    return [t for t in lifecycle.moves_from(ticket.status) if _may_move(user, ticket, t)]


def list_transitions(*, session: Session, ticket_id: int, viewer: User) -> TransitionsPublic:
    ticket = _visible_ticket(session, ticket_id, viewer)
    has_assignee = ticket.assignee_id is not None
    options = [
        TransitionOption(status=t.target, requires=lifecycle.required_fields(t, has_assignee=has_assignee))
        for t in _moves_for(viewer, ticket)
    ]
    return TransitionsPublic(current=ticket.status, transitions=options)


def delete_ticket(*, session: Session, ticket_id: int, actor: User, expected: set[int] | None = None) -> None:
    ticket = _visible_ticket(session, ticket_id, actor, for_update=True)
    require(actor, P.ticket_delete, "delete tickets")
    _check_version(ticket, expected)
    session.delete(ticket)  # events and comments go with it (ON DELETE CASCADE)
    session.commit()


def list_events(
    *, session: Session, ticket_id: int, viewer: User, offset: int, limit: int
) -> tuple[list[TicketEvent], int]:
    _visible_ticket(session, ticket_id, viewer)
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    if not sees_internal_notes(viewer):
        stmt = stmt.where(TicketEvent.action != EventAction.noted)
    return _page(session, stmt.order_by(col(TicketEvent.id)), offset=offset, limit=limit)


# --- Comments -------------------------------------------------------------------------------------


def add_comment(
    *,
    session: Session,
    ticket_id: int,
    comment_in: CommentCreate,
    author: User,
    before_commit: Callable[[Comment], None] | None = None,
) -> Comment:
    """`before_commit(comment)` may add rows to the same transaction (an idempotency key's response)."""
    ticket = _visible_ticket(session, ticket_id, author)
    require(author, P.comment_create, "comment")
    if comment_in.internal:
        require(author, P.note_internal, "write internal notes")
    assert author.id is not None
    comment = Comment.model_validate(comment_in, update={"ticket_id": ticket_id, "author_id": author.id})
    session.add(comment)
    session.flush()
    # A comment does not change the ticket's fields, so the ticket keeps its version.
    change = _Change(ticket, author, now=comment.created_at)
    action = EventAction.noted if comment.internal else EventAction.commented
    change.record(action, None, None, comment.id)
    session.add_all(change.events)
    if before_commit is not None:
        before_commit(comment)
    session.commit()
    session.refresh(comment)
    return comment


def list_comments(
    *, session: Session, ticket_id: int, viewer: User, offset: int, limit: int
) -> tuple[list[Comment], int]:
    _visible_ticket(session, ticket_id, viewer)
    stmt = select(Comment).where(Comment.ticket_id == ticket_id)
    if not sees_internal_notes(viewer):
        stmt = stmt.where(col(Comment.internal).is_(False))
    return _page(session, stmt.order_by(col(Comment.id)), offset=offset, limit=limit)


# --- Bulk loading (db seed) -----------------------------------------------------------------------
# `db seed` (app.seed) fills a freshly reset schema through these. The rows carry their ids, so
# nothing needs RETURNING: binary COPY on PostgreSQL, batched executemany (Core insert()) elsewhere.
# The caller owns the transaction; nothing here commits.


Row = tuple[Any, ...]


def _table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def bulk_insert(
    *, session: Session, model: type[SQLModel], columns: Sequence[str], rows: Sequence[Row]
) -> int:
    """Insert `rows` (tuples in the order of `columns`, database-ready values) into model's table."""
    if not rows:
        return 0
    connection = session.connection()
    target = _table_of(model)
    if connection.dialect.name == "postgresql":
        _copy_rows(connection.connection.dbapi_connection, target.name, columns, rows)
    else:
        connection.execute(insert(target), [dict(zip(columns, row, strict=True)) for row in rows])
    return len(rows)


def _copy_rows(dbapi_connection: Any, table_name: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    """COPY ... FROM STDIN (FORMAT BINARY) on the session's own connection (same transaction)."""
    conn = cast(psycopg.Connection[Any], dbapi_connection)
    with conn.cursor() as cursor:
        types = dict(
            cursor.execute(
                "SELECT attname, atttypid::int FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (sql.Identifier(table_name).as_string(conn),),
            ).fetchall()
        )
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cursor.copy(statement) as copy:
            copy.set_types([types[name] for name in columns])
            for row in rows:
                copy.write_row(row)


def reset_id_sequences(*, session: Session, models: Iterable[type[SQLModel]]) -> None:
    """PostgreSQL: point each table's id sequence past its largest id, so the API's inserts follow
    the bulk-loaded rows. (SQLite picks max(id) + 1 by itself.)"""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    for model in models:
        target = _table_of(model)
        sequence = func.pg_get_serial_sequence(target.name, "id")
        next_id = func.coalesce(func.max(target.c.id), 0) + 1
        connection.execute(select(func.setval(sequence, next_id, False)).select_from(target))


def count_rows(*, session: Session, tables: Iterable[str]) -> dict[str, int]:
    return {name: session.exec(select(func.count()).select_from(table(name))).one() for name in tables}


def has_rows(*, session: Session, tables: Iterable[str]) -> bool:
    return any(session.exec(select(literal(1)).select_from(table(name)).limit(1)).first() for name in tables)


def insert_one_by_one(
    *, session: Session, model: type[SQLModel], columns: Sequence[str], rows: Sequence[Row]
) -> int:
    """The naive path, one ORM object and one INSERT per row: scripts/bench_seed.py compares with it."""
    for row in rows:
        session.add(model(**dict(zip(columns, row, strict=True))))
        session.flush()
    session.expunge_all()
    return len(rows)


# --- Metrics --------------------------------------------------------------------------------------


def count_tickets_by_status(*, session: Session) -> dict[TicketStatus, int]:
    """Tickets per status, for /metrics (statuses with no ticket are absent)."""
    stmt = select(Ticket.status, func.count()).group_by(col(Ticket.status))
    return {TicketStatus(status): count for status, count in session.exec(stmt).all()}


# --- Idempotency keys -----------------------------------------------------------------------------
# app.core.idempotency decides what a key means for a request; these only read and write the rows.


def purge_expired_idempotency_keys(*, session: Session, now: datetime) -> None:
    """Delete the keys whose time is up (in the caller's transaction)."""
    session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= now))


def claim_idempotency_key(
    *,
    session: Session,
    user_id: int,
    key: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
    abandoned_after: timedelta,
) -> tuple[IdempotencyKey, bool]:
    """Store (user_id, key) as in progress and commit at once: (row, True).

    When the user already has this key: (their row, False), unless it is an in-progress row older
    than `abandoned_after` (its request died), which this request takes over. Expired keys of every
    user are purged on the way, so an expired key is free again.
    """
    values = {
        "fingerprint": fingerprint,
        "state": IdempotencyState.in_progress,
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + ttl,
    }
    for _ in range(3):
        purge_expired_idempotency_keys(session=session, now=now)
        existing = session.get(IdempotencyKey, (user_id, key), populate_existing=True, with_for_update=True)
        if existing is None:
            try:  # a Core insert: a row this session saw before may linger in its identity map
                session.exec(insert(IdempotencyKey).values(user_id=user_id, key=key, **values))
                session.commit()
            except IntegrityError:  # another request stored it in between: look again
                session.rollback()
                continue
            row = session.get(IdempotencyKey, (user_id, key), populate_existing=True)
            assert row is not None
            return row, True
        if existing.state == IdempotencyState.in_progress and existing.created_at <= now - abandoned_after:
            existing.sqlmodel_update(values)
            session.add(existing)
            session.commit()
            return existing, True
        session.commit()
        return existing, False
    raise Conflict("This Idempotency-Key is busy; retry shortly")


def complete_idempotency_key(*, session: Session, row: IdempotencyKey, status: int, body: str) -> None:
    """Store the response on the key, in the caller's (the write's) transaction: no commit here."""
    row.state, row.response_status, row.response_body = IdempotencyState.completed, status, body
    session.add(row)


def release_idempotency_key(*, session: Session, user_id: int, key: str) -> None:
    """Forget a key whose write failed, so that a corrected retry can use it."""
    session.rollback()
    stmt = delete(IdempotencyKey).where(
        col(IdempotencyKey.user_id) == user_id,
        col(IdempotencyKey.key) == key,
        col(IdempotencyKey.state) == IdempotencyState.in_progress,
    )
    session.exec(stmt)
    session.commit()
