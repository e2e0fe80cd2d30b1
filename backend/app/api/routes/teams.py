from fastapi import APIRouter, Response, status

from app import crud
from app.api.deps import PageDep, PathId, SessionDep, TeamAdmin, TeamReader
from app.api.strict_json import StrictJSONRoute
from app.core.error_body import error_responses
from app.models import Team, TeamCreate, TeamPublic, TeamsPublic, TeamUpdate

router = APIRouter(prefix="/teams", tags=["teams"], route_class=StrictJSONRoute)


@router.get("/", response_model=TeamsPublic, responses=error_responses(403))
def list_teams(session: SessionDep, _: TeamReader, page: PageDep) -> TeamsPublic:
    teams, count = crud.list_teams(session=session, offset=page.offset, limit=page.limit)
    return TeamsPublic(data=[TeamPublic.model_validate(t) for t in teams], count=count)


@router.post(
    "/", response_model=TeamPublic, status_code=status.HTTP_201_CREATED, responses=error_responses(403, 409)
)
def create_team(session: SessionDep, _: TeamAdmin, team_in: TeamCreate) -> Team:
    return crud.create_team(session=session, team_in=team_in)


@router.get("/{team_id:id}", response_model=TeamPublic, responses=error_responses(403, 404))
def read_team(session: SessionDep, _: TeamReader, team_id: PathId) -> Team:
    return crud.get_team(session=session, team_id=team_id)


@router.patch("/{team_id:id}", response_model=TeamPublic, responses=error_responses(403, 404, 409))
def update_team(session: SessionDep, _: TeamAdmin, team_id: PathId, team_in: TeamUpdate) -> Team:
    team = crud.get_team(session=session, team_id=team_id)
    return crud.update_team(session=session, team=team, team_in=team_in)


@router.delete(
    "/{team_id:id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(403, 404, 409)
)
def delete_team(session: SessionDep, _: TeamAdmin, team_id: PathId) -> Response:
    team = crud.get_team(session=session, team_id=team_id)
    crud.delete_team(session=session, team=team)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
