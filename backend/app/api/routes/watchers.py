"""A ticket's watchers: list, watch (yourself, or others for agents and admins), unwatch."""

from fastapi import Response, status

from app import crud
from app.api.deps import CurrentUser, DbDep, PathId
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import WatcherAdd, WatchersPublic

router = api_router("/tickets", "watchers")


@router.get("/{ticket_id:id}/watchers", response_model=WatchersPublic, responses=answers(404, 422))
async def list_watchers(db: DbDep, user: CurrentUser, ticket_id: PathId) -> WatchersPublic:
    """Who is told about the ticket and why: its reporter, its assignee, its commenters and the
    explicit watchers, minus those who unwatched it (and anyone inactive or who can no longer see
    it). E-mail addresses are shown to agents and admins only."""
    watchers = await crud.list_watchers(db=db, ticket_id=ticket_id, viewer=user)
    return WatchersPublic(data=watchers, count=len(watchers))


@router.post("/{ticket_id:id}/watchers", response_model=WatchersPublic, responses=answers(403, 404, 422))
async def add_watcher(
    db: DbDep, user: CurrentUser, ticket_id: PathId, body: WatcherAdd | None = None
) -> WatchersPublic:
    """Watch the ticket (no body: yourself). Agents and admins may add another user who is active
    and can see the ticket. Idempotent; answers the watchers afterwards."""
    watchers = await crud.watch(
        db=db, ticket_id=ticket_id, actor=user, user_id=None if body is None else body.user_id
    )
    return WatchersPublic(data=watchers, count=len(watchers))


@router.delete(
    "/{ticket_id:id}/watchers/{user_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, 422),
)
async def remove_watcher(db: DbDep, user: CurrentUser, ticket_id: PathId, user_id: PathId) -> Response:
    """Stop watching (yourself; agents and admins: anyone). It beats the automatic reasons (reporter,
    assignee, commenter) until the user watches again. Idempotent."""
    await crud.unwatch(db=db, ticket_id=ticket_id, actor=user, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
