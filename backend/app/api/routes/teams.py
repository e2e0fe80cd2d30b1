from fastapi import Response, status

from app import crud
from app.api.deps import DbDep, PageDep, PathId, TeamAdmin, TeamReader
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import Team, TeamCreate, TeamInUseError, TeamPublic, TeamsPublic, TeamUpdate

router = api_router("/teams", "teams")


@router.get("/", response_model=TeamsPublic, responses=answers(403, 422))
async def list_teams(db: DbDep, _: TeamReader, page: PageDep) -> TeamsPublic:
    teams, count = await crud.list_teams(db=db, offset=page.offset, limit=page.limit)
    return TeamsPublic(data=[TeamPublic.model_validate(t) for t in teams], count=count)


@router.post(
    "/", response_model=TeamPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
async def create_team(db: DbDep, _: TeamAdmin, team_in: TeamCreate) -> Team:
    return await crud.create_team(db=db, team_in=team_in)


@router.get("/{team_id:id}", response_model=TeamPublic, responses=answers(403, 404, 422))
async def read_team(db: DbDep, _: TeamReader, team_id: PathId) -> Team:
    return await crud.get_team(db=db, team_id=team_id)


@router.patch("/{team_id:id}", response_model=TeamPublic, responses=answers(403, 404, 409, 422))
async def update_team(db: DbDep, _: TeamAdmin, team_id: PathId, team_in: TeamUpdate) -> Team:
    return await crud.update_team(db=db, team_id=team_id, team_in=team_in)


@router.delete(
    "/{team_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, (409, TeamInUseError), 422, status=204),
)
async def delete_team(db: DbDep, _: TeamAdmin, team_id: PathId) -> Response:
    await crud.delete_team(db=db, team_id=team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
