"""The ticket list: typed filters, full-text search (tsvector on PostgreSQL, FTS5 on SQLite),
sorts and keyset paging, read as plain columns (app.ticket_query holds the sort and cursor rules)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Double,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    table,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.sql.selectable import GenerativeSelect, ScalarSelect, Select
from sqlalchemy.types import NullType
from sqlmodel import col, select

from app import ticket_query
from app.core.database import Database
from app.core.types import UTCDateTime
from app.models import Comment, Ticket, TicketPublic, TicketQuery, User
from app.permissions import Permission as P
from app.permissions import has, sees_internal_notes
from app.search import SearchQuery

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


def _search(dialect: str, text: SearchQuery, viewer: User) -> _Search:
    """How `text` matches tickets. PostgreSQL: tsvector + GIN; SQLite: FTS5.

    The two ways to match are kept apart, so a page can rank the tickets whose own text matches as
    it reads them (one bitmap scan) and add the comment-only matches after them,
    instead of collecting every match's id first and reading each ticket again to rank it.
    """
    comment_visible = [] if sees_internal_notes(viewer) else [col(Comment.internal).is_(False)]
    if dialect == "postgresql":
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


async def list_tickets(*, db: Database, viewer: User, query: TicketQuery, count_limit: int) -> TicketPage:
    """One page of the tickets the viewer may see that match `query`, how many match (exact up to
    `count_limit`, or always with `query.exact_count`), and the cursor of the next page."""
    connection = await db.reader().connection()  # Core: rows as tuples, no ORM loading
    conditions = _ticket_filters(query, viewer)
    key_name, descending = query.order()
    # With `q`, two arms: the tickets whose own text matches, and those found only through a comment.
    if (text := query.search()) is None:
        arms = [_Arm(conditions, _SORT_COLUMNS[key_name])]
    else:
        found = _search(connection.dialect.name, text, viewer)
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
            rows += (
                await connection.execute(stmt.offset(query.offset).limit(query.limit + 1 - len(rows)))
            ).all()
    else:  # sorted by a column (or paged by offset): both arms in one statement
        hits = union_all(
            *(base.add_columns(a.key.label("sort_key")).where(*a.where) for a in arms)
        ).subquery()
        stmt = sa_select(hits)
        if total is not None:
            stmt = stmt.add_columns(total.label("total"))
        stmt = _in_order(stmt, hits.c.sort_key, hits.c.id, descending=descending, after=after)
        rows = list((await connection.execute(stmt.offset(query.offset).limit(query.limit + 1))).all())

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
            count = 0 if query.offset == 0 else (await connection.execute(sa_select(total))).scalar_one()
        exact = query.exact_count or count <= count_limit
        count = count if exact else count_limit
    return TicketPage(page, count, exact, next_cursor)
