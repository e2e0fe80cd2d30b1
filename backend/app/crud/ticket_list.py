"""The ticket list: typed filters, full-text search (tsvector on PostgreSQL, FTS5 on SQLite),
sorts and keyset paging, read as plain columns. It runs a request's plan (app.ticket_query.ListPlan:
the search parsed, the sort, the cursor's position, all worked out once; the sort table too).

A page is one statement (its count included), prepared once per query shape (app.crud.prepared):
which filters are present, the sort, search, cursor and count mode, the database. The values
(filter values, search text, cursor position, limits) are parameters, so a busy list builds and
compiles nothing per request.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Double,
    any_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    null,
    or_,
    table,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlalchemy.sql.selectable import GenerativeSelect, ScalarSelect, Select
from sqlalchemy.types import NullType
from sqlmodel import col, select

from app.core.database import Database
from app.core.types import UTCDateTime
from app.crud.prepared import Prepared
from app.models import Comment, Ticket, TicketPublic, User
from app.permissions import Permission as P
from app.permissions import has, sees_internal_notes
from app.ticket_query import SORT_KEYS, ListPlan, encode_cursor

Person = Literal["none", "value"] | None  # a people filter: absent, "none", or an id


class _Shape(NamedTuple):
    """What the SQL text of a list statement depends on (the values are parameters)."""

    dialect: str
    own_only: bool  # the viewer sees only the tickets they reported
    status: bool
    priority: bool
    sla_state: bool
    assignee: Person
    reporter: Person
    team: Person
    ranges: tuple[bool, bool, bool, bool]  # created_after, created_before, updated_after, updated_before
    search: bool
    internal_notes: bool  # a search also matches internal notes
    sort: str
    descending: bool


def _person(value: str | None) -> Person:
    return None if value is None else "none" if value == "none" else "value"


def _shape(dialect: str, plan: ListPlan, viewer: User) -> _Shape:
    query = plan.query
    searching = plan.search is not None
    return _Shape(
        dialect=dialect,
        own_only=not has(viewer, P.ticket_read_all),
        status=bool(query.status),
        priority=bool(query.priority),
        sla_state=bool(query.sla_state),
        assignee=_person(query.assignee),
        reporter=_person(query.reporter),
        team=_person(query.team),
        ranges=(
            query.created_after is not None,
            query.created_before is not None,
            query.updated_after is not None,
            query.updated_before is not None,
        ),
        search=searching,
        internal_notes=searching and sees_internal_notes(viewer),
        sort=plan.sort,
        descending=plan.descending,
    )


def _values(dialect: str, plan: ListPlan, viewer: User) -> dict[str, Any]:
    """The parameters of the shape's statements for this plan (see _conditions for their names)."""
    query = plan.query
    values: dict[str, Any] = {"viewer_id": viewer.id}
    for name in ("status", "priority", "sla_state"):
        chosen = [member.value for member in getattr(query, name)]
        # One parameter whatever the number of values: an array, or a JSON array for SQLite.
        values[name] = chosen if dialect == "postgresql" else json.dumps(chosen)
    for name in ("assignee", "reporter", "team"):
        value = getattr(query, name)
        if value not in (None, "none"):
            values[name] = viewer.id if value == "me" else int(value)
    for name in ("created_after", "created_before", "updated_after", "updated_before"):
        values[name] = getattr(query, name)
    if plan.search is not None:
        values["search"] = plan.search.websearch() if dialect == "postgresql" else plan.search.fts5()
    return values


def _one_of(dialect: str, column_: Any, name: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return col(column_) == any_(bindparam(name))
    chosen: Select[Any] = sa_select(literal_column("value")).select_from(func.json_each(bindparam(name)))
    return col(column_).in_(chosen)


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if shape.own_only:
        conditions.append(col(Ticket.reporter_id) == bindparam("viewer_id"))
    if shape.status:
        conditions.append(_one_of(shape.dialect, Ticket.status, "status"))
    if shape.priority:
        conditions.append(_one_of(shape.dialect, Ticket.priority, "priority"))
    if shape.sla_state:
        conditions.append(_one_of(shape.dialect, Ticket.sla_state, "sla_state"))
    people: list[tuple[Any, Person, str]] = [
        (Ticket.assignee_id, shape.assignee, "assignee"),
        (Ticket.reporter_id, shape.reporter, "reporter"),
        (Ticket.team_id, shape.team, "team"),
    ]
    for ref, kind, name in people:
        if kind == "none":
            conditions.append(col(ref).is_(None))
        elif kind == "value":
            conditions.append(col(ref) == bindparam(name))
    bounds = [
        (Ticket.created_at, ">", "created_after"),
        (Ticket.created_at, "<", "created_before"),
        (Ticket.updated_at, ">", "updated_after"),
        (Ticket.updated_at, "<", "updated_before"),
    ]
    for present, (moment, operator, name) in zip(shape.ranges, bounds, strict=True):
        if present:
            bound = bindparam(name, type_=UTCDateTime())
            conditions.append(col(moment) > bound if operator == ">" else col(moment) < bound)
    return conditions


class _Search(NamedTuple):
    own: ColumnElement[bool]  # the ticket's own title or description matches
    via_comments: ColumnElement[bool]  # only a comment the viewer may read matches
    relevance: ColumnElement[float]  # of the ticket's own text


def _search(shape: _Shape) -> _Search:
    """How the `search` parameter matches tickets. PostgreSQL: tsvector + GIN; SQLite: FTS5.

    The two ways to match are kept apart, so a page can rank the tickets whose own text matches as
    it reads them (one bitmap scan) and add the comment-only matches after them,
    instead of collecting every match's id first and reading each ticket again to rank it.
    """
    comment_visible = [] if shape.internal_notes else [col(Comment.internal).is_(False)]
    if shape.dialect == "postgresql":
        tsquery = func.websearch_to_tsquery(literal_column("'english'"), bindparam("search"))
        ticket_vector: ColumnElement[Any] = literal_column("tickets.search_vector")
        comment_vector: ColumnElement[Any] = literal_column("comments.search_vector")
        own = ticket_vector.op("@@")(tsquery)
        in_comments = select(Comment.ticket_id).where(comment_vector.op("@@")(tsquery), *comment_visible)
        # float8, not ts_rank's real: a cursor's value must round-trip through JSON exactly.
        relevance: ColumnElement[float] = func.ts_rank(ticket_vector, tsquery).cast(Double)
    else:
        tickets_fts, comments_fts = (
            table("tickets_fts", column("rowid")),
            table("comments_fts", column("rowid")),
        )
        ticket_match = literal_column("tickets_fts").op("MATCH")(bindparam("search"))
        own = col(Ticket.id).in_(select(tickets_fts.c.rowid).where(ticket_match))
        in_comments = (
            select(Comment.ticket_id)
            .join(comments_fts, comments_fts.c.rowid == Comment.id)
            .where(literal_column("comments_fts").op("MATCH")(bindparam("search")), *comment_visible)
        )
        bm25 = select(-func.bm25(literal_column("tickets_fts"))).where(
            ticket_match, tickets_fts.c.rowid == Ticket.id
        )
        relevance = bm25.scalar_subquery()
    return _Search(own, col(Ticket.id).in_(in_comments) & ~own, relevance)


# What a list page returns, read as plain columns: a page is read-only, and building ORM objects or
# models for 50 rows per request would cost more than the queries themselves. Enum and (on
# PostgreSQL, whose sessions run in UTC) timestamp columns skip conversion, since the values only go
# on to JSON; SQLite stores naive text timestamps, which its columns convert.
_PUBLIC_NAMES = tuple(TicketPublic.model_fields)
_PUBLIC_COLUMNS = [getattr(Ticket, name) for name in _PUBLIC_NAMES]
_ID, _SORT_KEY, _TOTAL = _PUBLIC_NAMES.index("id"), len(_PUBLIC_NAMES), len(_PUBLIC_NAMES) + 1


def _page_select(dialect: str) -> Select[Any]:
    def plain(column_: Any) -> Any:
        if isinstance(column_.type, UTCDateTime) and dialect == "sqlite":
            return column_
        return type_coerce(column_, NullType()).label(column_.key)

    return sa_select(*(plain(c) for c in _PUBLIC_COLUMNS))


def _sort_key(shape: _Shape, key: ColumnElement[Any]) -> Any:
    """The sort key as a result column, for the next page's cursor (on PostgreSQL as the driver reads
    it: timestamps arrive in UTC)."""
    if shape.dialect == "postgresql":
        return type_coerce(key, NullType()).label("sort_key")
    return key.label("sort_key")


class _Arm(NamedTuple):
    """Part of a list query: its conditions and the key it sorts by (`by_key` False: a constant key,
    the arm is ordered by id alone)."""

    where: list[ColumnElement[bool]]
    key: ColumnElement[Any]
    by_key: bool = True


# A sort key that may be null (SortKey.nulls_last) is read as two arms, each in index order: the
# rows with a value, then those without (by id, in the same direction), in both directions.
_NO_KEY: ColumnElement[Any] = type_coerce(null(), UTCDateTime())


# Searching by relevance, a ticket found only through a comment sorts below any ticket whose own
# text matches (their relevance is at least 0), newest first among themselves.
_COMMENT_ONLY: ColumnElement[float] = literal(-1.0, Double)


def _arms(shape: _Shape) -> list[_Arm]:
    """With a search, two arms: the tickets whose own text matches, and those found only through a
    comment; else one (two for a sort key that may be null: the rows with a key, then the others)."""
    conditions = _conditions(shape)
    if not shape.search:
        sort_key = SORT_KEYS[shape.sort]
        if sort_key.nulls_last:
            nullable: Any = sort_key.column
            return [
                _Arm([*conditions, nullable.is_not(None)], nullable),
                _Arm([*conditions, nullable.is_(None)], _NO_KEY, False),
            ]
        return [_Arm(conditions, sort_key.column)]
    found = _search(shape)
    own, by_comment = [*conditions, found.own], [*conditions, found.via_comments]
    if shape.sort == "relevance":
        return [_Arm(own, found.relevance), _Arm(by_comment, _COMMENT_ONLY)]
    key = SORT_KEYS[shape.sort].column
    return [_Arm(own, key), _Arm(by_comment, key)]


def _counted(shape: _Shape, arms: list[_Arm]) -> list[_Arm]:
    """The arms a count reads (sharing their parameters): the two arms of a nullable sort key are
    counted as one, their common conditions."""
    if not shape.search and SORT_KEYS[shape.sort].nulls_last:
        return [_Arm(arms[0].where[:-1], _NO_KEY)]
    return arms


def _total(arms: list[_Arm], *, exact: bool) -> ScalarSelect[int]:
    """How many tickets the arms match: all of them when `exact`, else at most `count_limit`."""
    ids = [sa_select(col(Ticket.id)).where(*arm.where) for arm in arms]
    matching: GenerativeSelect = ids[0] if len(ids) == 1 else union_all(*ids)
    if not exact:  # a list shows "1,000+"; counting every match costs O(matches)
        matching = matching.limit(bindparam("count_limit"))
    return sa_select(func.count()).select_from(matching.subquery()).scalar_subquery()


# Where a statement starts: at the top, after the cursor's (`after_key`, `after_id`), after the
# cursor's id alone (an arm ordered by id), or (a nullable key in one statement) after a cursor whose
# key is null.
After = Literal["none", "key", "id", "null_key"]


def _in_order(
    stmt: Select[Any],
    key: ColumnElement[Any],
    row_id: Any,
    *,
    shape: _Shape,
    after: After,
    by_key: bool = True,
    nulls_last: bool = False,
) -> Any:
    """`stmt` ordered by (key, id) (by id alone unless `by_key`; with `nulls_last`, the rows with a
    null key after the others), from the position `after` says, then offset and limit (`offset`,
    `limit`)."""

    def before(a: Any, b: Any) -> ColumnElement[bool]:
        return a < b if shape.descending else a > b  # type: ignore[no-any-return]

    after_id: Any = bindparam("after_id")
    if after == "key":
        past = before(tuple_(key, row_id), tuple_(bindparam("after_key", type_=key.type), after_id))
        stmt = stmt.where(or_(key.is_(None), past) if nulls_last else past)
    elif after == "id":
        stmt = stmt.where(before(row_id, after_id))
    elif after == "null_key":
        stmt = stmt.where(key.is_(None), before(row_id, after_id))
    order = [row_id.desc() if shape.descending else row_id.asc()]
    if by_key:
        order.insert(0, key.desc() if shape.descending else key.asc())
    if nulls_last:
        order.insert(0, key.is_(None))
    return stmt.order_by(*order).offset(bindparam("offset")).limit(bindparam("limit"))


Count = Literal["none", "capped", "exact"]


@lru_cache(maxsize=512)
def _arm_statement(shape: _Shape, arm: int, *, after: After, count: Count) -> Prepared:
    """One arm on its own, in its order (relevance-ranked search pages, and lists without search)."""
    arms = _arms(shape)
    chosen: _Arm = arms[arm]
    stmt = _page_select(shape.dialect).add_columns(_sort_key(shape, chosen.key)).where(*chosen.where)
    if count != "none":
        stmt = stmt.add_columns(_total(_counted(shape, arms), exact=count == "exact").label("total"))
    return Prepared(_in_order(stmt, chosen.key, Ticket.id, shape=shape, after=after, by_key=chosen.by_key))


@lru_cache(maxsize=512)
def _union_statement(shape: _Shape, *, after: After, count: Count) -> Prepared:
    """The arms in one statement, sorted by a column (a search, or a page by offset)."""
    arms = _arms(shape)
    base = _page_select(shape.dialect)
    hits = union_all(*(base.add_columns(_sort_key(shape, a.key)).where(*a.where) for a in arms)).subquery()
    stmt = sa_select(hits)
    if count != "none":
        stmt = stmt.add_columns(_total(_counted(shape, arms), exact=count == "exact").label("total"))
    nulls_last = SORT_KEYS[shape.sort].nulls_last
    return Prepared(
        _in_order(stmt, hits.c.sort_key, hits.c.id, shape=shape, after=after, nulls_last=nulls_last)
    )


@lru_cache(maxsize=512)
def _count_statement(shape: _Shape, *, exact: bool) -> Prepared:
    return Prepared(sa_select(_total(_counted(shape, _arms(shape)), exact=exact)))


@dataclass(frozen=True, slots=True)
class TicketPage:
    """A list page in the shape of TicketsPublic (its fields, in its order), ready for JSON."""

    data: list[dict[str, Any]]  # shaped as TicketPublic
    count: int | None  # None on a page fetched with a cursor
    count_exact: bool  # False: at least `count` match (counting stopped at the limit)
    next_cursor: str | None  # None on the last page


async def list_tickets(*, db: Database, viewer: User, plan: ListPlan, count_limit: int) -> TicketPage:
    """One page of the tickets the viewer may see that match the plan's query, how many match (exact
    up to `count_limit`, or always with `exact_count`), and the cursor of the next page."""
    connection = await db.connection()
    dialect = connection.dialect.name
    query = plan.query
    shape = _shape(dialect, plan, viewer)
    values = _values(dialect, plan, viewer)
    # The total does not change with depth: it comes with the first page (in the page's statement,
    # so from the same snapshot), and pages fetched with a cursor skip it, so they cost the same at
    # any depth.
    position = plan.after
    count: Count = "none" if position is not None else "exact" if query.exact_count else "capped"
    values["count_limit"] = count_limit + 1
    if position is not None:
        values["after_key"], values["after_id"] = position
    values["offset"] = query.offset
    rows: list[Any] = []
    nulls_last = SORT_KEYS[shape.sort].nulls_last
    if (not shape.search and not (nulls_last and query.offset)) or (
        shape.sort == "relevance" and not query.offset
    ):
        # By relevance the arms come in order, so they are read one after the other, and the
        # comment-only matches only when the own-text ones run out on this page: ranking reads each
        # match once, in the bitmap scan that finds it. So do the two arms of a nullable sort key
        # (the rows with a due time, then those without), each in its index's order.
        arms = 2 if shape.search or nulls_last else 1
        # The arm the cursor is in: the comment-only matches rank below 0; the rows without a key
        # have a null one.
        at = 0
        if position is not None and (nulls_last or shape.search):
            at = int(position[0] is None) if nulls_last else int(position[0] < 0)
        for arm in range(arms):
            if len(rows) > query.limit or arm < at:
                continue  # the page is full, or the cursor is already past this arm
            after: After = "none"
            if position is not None and arm == at:
                after = "id" if nulls_last and arm == 1 else "key"
            elif position is not None and not nulls_last:
                after = "key"  # a comment-only match's key (-1) is below the cursor's anyway
            statement = _arm_statement(shape, arm, after=after, count="none" if rows else count)
            values["limit"] = query.limit + 1 - len(rows)
            rows += await statement.rows(connection, values)
    else:  # sorted by a column (or paged by offset): the arms in one statement
        values["limit"] = query.limit + 1
        after = "none" if position is None else "null_key" if position[0] is None else "key"
        statement = _union_statement(shape, after=after, count=count)
        rows = await statement.rows(connection, values)

    page = [dict(zip(_PUBLIC_NAMES, row, strict=False)) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(shape.sort, last[_SORT_KEY], last[_ID], plan.fingerprint)

    total, exact = None, False
    if count != "none":
        if rows:
            total = rows[0][_TOTAL]
        elif query.offset == 0:  # no row to carry it: none match, or the offset is past the end
            total = 0
        else:
            counted = await _count_statement(shape, exact=count == "exact").rows(connection, values)
            total = counted[0][0]
        exact = query.exact_count or total <= count_limit
        total = total if exact else count_limit
    return TicketPage(page, total, exact, next_cursor)
