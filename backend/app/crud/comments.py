"""Comments and internal notes on tickets."""

from collections.abc import Awaitable, Callable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.database import Database
from app.crud import common, ticket_writes
from app.crud.common import page
from app.crud.ticket_writes import WriteKind
from app.crud.tickets import visible_ticket
from app.models import Comment, CommentCreate, EventAction, User
from app.permissions import Permission as P
from app.permissions import require, sees_internal_notes


async def add_comment(
    *,
    db: Database,
    ticket_id: int,
    comment_in: CommentCreate,
    author: User,
    before_commit: Callable[[AsyncSession, Comment], Awaitable[None]] | None = None,
) -> Comment:
    """`before_commit(session, comment)` may add rows to the same transaction (an idempotency key's
    response)."""
    async with ticket_writes.transaction(db) as tx:
        session = tx.session
        # Locked: the write may bring its SLA timers up to date (app.crud.sla_timers).
        ticket = await visible_ticket(session, ticket_id, author, for_update=True)
        require(author, P.comment_create, "comment")
        if comment_in.internal:
            require(author, P.note_internal, "write internal notes")
        assert author.id is not None
        comment = Comment.model_validate(
            comment_in, update={"ticket_id": ticket_id, "author_id": author.id, "created_at": common.utcnow()}
        )
        session.add(comment)
        await session.flush()
        # A comment does not change the ticket's fields, so the ticket keeps its version (unless it
        # meets a service-level target: app.crud.sla_timers then moves the version on).
        change = tx.change(WriteKind.commented, ticket, author, now=comment.created_at)
        action = EventAction.noted if comment.internal else EventAction.commented
        change.record(action, None, None, comment.id)
        if before_commit is not None:
            await before_commit(session, comment)
    return comment


async def list_comments(
    *, db: Database, ticket_id: int, viewer: User, offset: int, limit: int
) -> tuple[list[Comment], int]:
    session = await db.reader()
    await visible_ticket(session, ticket_id, viewer)
    stmt = select(Comment).where(Comment.ticket_id == ticket_id)
    if not sees_internal_notes(viewer):
        stmt = stmt.where(col(Comment.internal).is_(False))
    return await page(session, stmt.order_by(col(Comment.id)), offset=offset, limit=limit)
