"""Teams."""

from sqlmodel import col, func, select

from app.core.database import Database
from app.core.errors import Conflict, NotFound
from app.crud.common import flush, page
from app.models import SlaPolicy, Team, TeamCreate, TeamUpdate, Ticket

TEAM_TAKEN = "A team with this name already exists"


async def get_team(*, db: Database, team_id: int) -> Team:
    session = await db.reader()
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("Team not found")
    return team


async def list_teams(*, db: Database, offset: int, limit: int) -> tuple[list[Team], int]:
    return await page(await db.reader(), select(Team).order_by(col(Team.name)), offset=offset, limit=limit)


async def create_team(*, db: Database, team_in: TeamCreate) -> Team:
    async with db.write() as session:
        team = Team.model_validate(team_in)
        session.add(team)
        await flush(session, conflict=TEAM_TAKEN)
    return team


async def update_team(*, db: Database, team_id: int, team_in: TeamUpdate) -> Team:
    async with db.write() as session:
        team = await session.get(Team, team_id, with_for_update=True)
        if team is None:
            raise NotFound("Team not found")
        team.sqlmodel_update(team_in.model_dump(exclude_unset=True))
        session.add(team)
        await flush(session, conflict=TEAM_TAKEN)
    return team


async def delete_team(*, db: Database, team_id: int) -> None:
    async with db.write() as session:
        team = await session.get(Team, team_id, with_for_update=True)
        if team is None:
            raise NotFound("Team not found")
        tickets = (await session.exec(select(func.count()).where(Ticket.team_id == team.id))).one()
        if tickets:
            raise Conflict(
                f"The team has {tickets} tickets; move them to another team first", tickets=tickets
            )
        policies = (
            await session.exec(
                select(SlaPolicy.name).where(SlaPolicy.team_id == team.id).order_by(col(SlaPolicy.position))
            )
        ).all()
        if policies:  # the foreign key refuses it too (RESTRICT): say why instead
            names = ", ".join(f"'{name}'" for name in policies)
            raise Conflict(
                f"The team is matched by SLA policies {names}; change or delete them first", tickets=0
            )
        await session.delete(team)
