"""What several crud modules share: paging a select, turning a unique-constraint clash into a
Conflict, the checks on the rows a body refers to, and the clock (one `utcnow` the tests can move)."""

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.core.clock import utcnow
from app.core.errors import Conflict, Invalid
from app.models import Role, Team, User

__all__ = ["utcnow"]

T = TypeVar("T", bound=SQLModel)


async def page(
    session: AsyncSession, stmt: SelectOfScalar[T], *, offset: int, limit: int
) -> tuple[list[T], int]:
    """One page of `stmt` and the number of rows it matches in all."""
    count = (await session.exec(select(func.count()).select_from(stmt.order_by(None).subquery()))).one()
    rows = (await session.exec(stmt.offset(offset).limit(limit))).all()
    return list(rows), count


async def flush(session: AsyncSession, *, conflict: str) -> None:
    """Write what is pending; a unique-constraint clash becomes Conflict(conflict)."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None


async def check_team(session: AsyncSession, team_id: int | None) -> None:
    if team_id is not None and await session.get(Team, team_id) is None:
        raise Invalid("team_id", f"no team with id {team_id}")


async def check_assignee(session: AsyncSession, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    user = await session.get(User, assignee_id)
    if user is None or not user.is_active or user.role == Role.reporter:
        raise Invalid("assignee_id", f"no active agent or admin with id {assignee_id}")
