from fastapi import APIRouter, Response, status

from app import crud
from app.api.deps import PageDep, PathId, SessionDep, TeamAdmin, TeamReader
from app.api.openapi import answers
from app.api.strict_json import StrictJSONRoute
from app.models import Team, TeamCreate, TeamInUseError, TeamPublic, TeamsPublic, TeamUpdate

router = APIRouter(prefix="/teams", tags=["teams"], route_class=StrictJSONRoute)


@router.get("/", response_model=TeamsPublic, responses=answers(403, 422))
def list_teams(session: SessionDep, _: TeamReader, page: PageDep) -> TeamsPublic:
    teams, count = crud.list_teams(session=session, offset=page.offset, limit=page.limit)
    return TeamsPublic(data=[TeamPublic.model_validate(t) for t in teams], count=count)


@router.post(
    "/", response_model=TeamPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
def create_team(session: SessionDep, _: TeamAdmin, team_in: TeamCreate) -> Team:
    return crud.create_team(session=session, team_in=team_in)


@router.get("/{team_id:id}", response_model=TeamPublic, responses=answers(403, 404, 422))
def read_team(session: SessionDep, _: TeamReader, team_id: PathId) -> Team:
    return crud.get_team(session=session, team_id=team_id)


@router.patch("/{team_id:id}", response_model=TeamPublic, responses=answers(403, 404, 409, 422))
def update_team(session: SessionDep, _: TeamAdmin, team_id: PathId, team_in: TeamUpdate) -> Team:
    team = crud.get_team(session=session, team_id=team_id)
    return crud.update_team(session=session, team=team, team_in=team_in)


@router.delete(
    "/{team_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, (409, TeamInUseError), 422, status=204),
)
def delete_team(session: SessionDep, _: TeamAdmin, team_id: PathId) -> Response:
    team = crud.get_team(session=session, team_id=team_id)
    crud.delete_team(session=session, team=team)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
