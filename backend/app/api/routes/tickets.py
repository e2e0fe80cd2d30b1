from typing import Annotated

from fastapi import Depends, Request, Response, status
from pydantic_core import to_json

from app import crud
from app.api import idempotency
from app.api.deps import CurrentUser, DbDep, IdempotencyKeyHeader, IfMatch, PageDep, PathId, etag
from app.api.openapi import answers
from app.api.query_params import query_model, query_parameters
from app.api.routing import api_router
from app.core.config import get_settings
from app.models import (
    ApiError,
    Comment,
    CommentCreate,
    CommentPublic,
    CommentsPublic,
    MoveRefusedError,
    StatusChange,
    Ticket,
    TicketClosedError,
    TicketCreate,
    TicketEventPublic,
    TicketEventsPublic,
    TicketPublic,
    TicketQuery,
    TicketSlaPublic,
    TicketsPublic,
    TicketUpdate,
    TransitionsPublic,
)
from app.ticket_query import ListPlan

router = api_router("/tickets", "tickets")

# What each operation can answer besides its success (app.api.openapi). A 409 on a create: the same
# Idempotency-Key is still being processed (see Retry-After).
BUSY_KEY = (409, ApiError, ["Retry-After"])


def _with_etag(response: Response, ticket: Ticket) -> Ticket:
    response.headers["ETag"] = etag(ticket.version)
    return ticket


@router.post(
    "/",
    response_model=TicketPublic,
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, BUSY_KEY, 422, status=201, headers=["ETag", "Location", "Idempotent-Replayed"]),
)
async def create_ticket(
    db: DbDep,
    user: CurrentUser,
    ticket_in: TicketCreate,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader,
) -> Ticket | Response:
    """File a ticket. With `Idempotency-Key`, a retry returns the first response instead of filing again."""

    def location(ticket_id: int) -> str:
        return str(request.url_for("read_ticket", ticket_id=ticket_id))

    created = await idempotency.create_once(
        db=db,
        user=user,
        key=idempotency_key,
        request=request,
        body=ticket_in,
        public=TicketPublic,
        write=lambda hook: crud.create_ticket(db=db, ticket_in=ticket_in, reporter=user, before_commit=hook),
        replay_headers=lambda stored: {"Location": location(stored["id"]), "ETag": etag(stored["version"])},
    )
    if isinstance(created, Response):  # a replay
        return created
    response.headers["Location"] = location(created.id or 0)
    return _with_etag(response, created)


@router.get(
    "/",
    response_model=TicketsPublic,
    # The query is validated by its own dependency (app.api.query_params), so FastAPI documents
    # neither its parameters nor its 422.
    responses=answers(422),
    openapi_extra={"parameters": query_parameters(TicketQuery)},
)
async def list_tickets(
    db: DbDep, user: CurrentUser, plan: Annotated[ListPlan, Depends(query_model(TicketQuery, ListPlan))]
) -> Response:
    """Filter, search, sort and page the tickets you may see (reporters: only their own).

    Newest first by default; ranked by relevance with `q` unless `sort` is given. Page with
    `offset`, or pass the `next_cursor` of a page as `cursor` for the next one (constant time at
    any depth). `count` is exact up to 1,000 matches (`count_exact`); `exact_count=true` counts all.
    """
    page = await crud.list_tickets(
        db=db, viewer=user, plan=plan, count_limit=get_settings().TICKET_COUNT_LIMIT
    )
    # The page is already in the shape of TicketsPublic (which documents the response) and is
    # serialised once; validating its rows again would cost more than the queries.
    return Response(to_json(page), media_type="application/json")


@router.get("/{ticket_id:id}", response_model=TicketPublic, responses=answers(404, 422, headers=["ETag"]))
async def read_ticket(db: DbDep, user: CurrentUser, ticket_id: PathId, response: Response) -> Ticket:
    return _with_etag(response, await crud.get_ticket(db=db, ticket_id=ticket_id, viewer=user))


@router.get("/{ticket_id:id}/sla", response_model=TicketSlaPublic, responses=answers(404, 422))
async def read_ticket_sla(db: DbDep, user: CurrentUser, ticket_id: PathId) -> TicketSlaPublic:
    """The ticket's service level: its policy and calendar, and each timer with the numbers that
    explain its due time (`pauses`: what moved it out, and by how much business time;
    `late_seconds`: how late a breached or late-met target is). Visible to whoever sees the ticket."""
    return await crud.get_ticket_sla(db=db, ticket_id=ticket_id, viewer=user)


@router.patch(
    "/{ticket_id:id}",
    response_model=TicketPublic,
    responses=answers(403, 404, (409, TicketClosedError), 412, 422, headers=["ETag"]),
)
async def update_ticket(
    db: DbDep,
    user: CurrentUser,
    ticket_id: PathId,
    ticket_in: TicketUpdate,
    expected: IfMatch,
    response: Response,
) -> Ticket:
    """Edit title, description, priority, assignee or team. Status moves use `/status`."""
    ticket = await crud.update_ticket(
        db=db, ticket_id=ticket_id, ticket_in=ticket_in, actor=user, expected=expected
    )
    return _with_etag(response, ticket)


@router.patch(
    "/{ticket_id:id}/status",
    response_model=TicketPublic,
    responses=answers(403, 404, (409, MoveRefusedError), 412, 422, headers=["ETag"]),
)
async def move_ticket(
    db: DbDep,
    user: CurrentUser,
    ticket_id: PathId,
    move: StatusChange,
    expected: IfMatch,
    response: Response,
) -> Ticket:
    """A lifecycle move; `GET /tickets/{id}/transitions` lists the moves open to you."""
    ticket = await crud.move_ticket(db=db, ticket_id=ticket_id, move=move, actor=user, expected=expected)
    return _with_etag(response, ticket)


@router.get("/{ticket_id:id}/transitions", response_model=TransitionsPublic, responses=answers(404, 422))
async def list_transitions(db: DbDep, user: CurrentUser, ticket_id: PathId) -> TransitionsPublic:
    """The states you may move this ticket to now, each with the fields the move requires."""
    return await crud.list_transitions(db=db, ticket_id=ticket_id, viewer=user)


@router.get("/{ticket_id:id}/events", response_model=TicketEventsPublic, responses=answers(404, 422))
async def list_events(db: DbDep, user: CurrentUser, ticket_id: PathId, page: PageDep) -> TicketEventsPublic:
    """The audit trail, oldest first."""
    events, count = await crud.list_events(
        db=db, ticket_id=ticket_id, viewer=user, offset=page.offset, limit=page.limit
    )
    return TicketEventsPublic(data=[TicketEventPublic.model_validate(e) for e in events], count=count)


@router.post(
    "/{ticket_id:id}/comments",
    response_model=CommentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, 404, BUSY_KEY, 422, status=201, headers=["Idempotent-Replayed"]),
)
async def add_comment(
    db: DbDep,
    user: CurrentUser,
    ticket_id: PathId,
    comment_in: CommentCreate,
    request: Request,
    idempotency_key: IdempotencyKeyHeader,
) -> Comment | Response:
    """With `Idempotency-Key`, a retry returns the first response instead of commenting again."""
    return await idempotency.create_once(
        db=db,
        user=user,
        key=idempotency_key,
        request=request,
        body=comment_in,
        public=CommentPublic,
        write=lambda hook: crud.add_comment(
            db=db, ticket_id=ticket_id, comment_in=comment_in, author=user, before_commit=hook
        ),
    )


@router.get("/{ticket_id:id}/comments", response_model=CommentsPublic, responses=answers(404, 422))
async def list_comments(db: DbDep, user: CurrentUser, ticket_id: PathId, page: PageDep) -> CommentsPublic:
    """Oldest first. Internal notes are listed only for agents and admins."""
    comments, count = await crud.list_comments(
        db=db, ticket_id=ticket_id, viewer=user, offset=page.offset, limit=page.limit
    )
    return CommentsPublic(data=[CommentPublic.model_validate(c) for c in comments], count=count)


@router.delete(
    "/{ticket_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, 412, 422, status=204),
)
async def delete_ticket(db: DbDep, user: CurrentUser, ticket_id: PathId, expected: IfMatch) -> Response:
    """Admins only. The ticket's events and comments are deleted with it. Honours `If-Match`: a
    delete based on an outdated read is refused (412)."""
    await crud.delete_ticket(db=db, ticket_id=ticket_id, actor=user, expected=expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
