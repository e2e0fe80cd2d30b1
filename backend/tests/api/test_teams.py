from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import User
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]


def test_team_crud(client: TestClient, as_admin: Headers) -> None:
    created = client.post(
        f"{API}/teams/", json={"name": " Network Ops ", "description": "Routers"}, headers=as_admin
    )
    assert created.status_code == 201
    team = created.json()
    assert (team["name"], team["description"]) == ("Network Ops", "Routers")
    url = f"{API}/teams/{team['id']}"
    assert client.get(url, headers=as_admin).json() == team
    updated = client.patch(url, json={"description": "Routers and switches"}, headers=as_admin)
    assert updated.json() == {**team, "description": "Routers and switches"}
    listing = client.get(f"{API}/teams/", headers=as_admin).json()
    assert listing["count"] == 1 and listing["data"][0]["name"] == "Network Ops"
    assert client.delete(url, headers=as_admin).status_code == 204
    assert client.get(url, headers=as_admin).status_code == 404
    assert error_body(client.get(url, headers=as_admin)) == {"detail": "Team not found"}


def test_duplicate_team_name_is_409(client: TestClient, as_admin: Headers) -> None:
    client.post(f"{API}/teams/", json={"name": "Service Desk"}, headers=as_admin)
    response = client.post(f"{API}/teams/", json={"name": "Service Desk"}, headers=as_admin)
    assert response.status_code == 409
    assert error_body(response) == {"detail": "A team with this name already exists"}
    other = client.post(f"{API}/teams/", json={"name": "Other"}, headers=as_admin).json()
    rename = client.patch(f"{API}/teams/{other['id']}", json={"name": "Service Desk"}, headers=as_admin)
    assert rename.status_code == 409


def test_team_with_tickets_cannot_be_deleted(client: TestClient, as_admin: Headers, make_team: Any) -> None:
    team = make_team()
    create_ticket(client, as_admin, team_id=team.id)
    response = client.delete(f"{API}/teams/{team.id}", headers=as_admin)
    assert response.status_code == 409
    assert error_body(response) == {
        "detail": "The team has 1 tickets; move them to another team first",
        "tickets": 1,
    }
    assert client.get(f"{API}/teams/{team.id}", headers=as_admin).status_code == 200


def test_deleting_a_team_unsets_its_members(
    client: TestClient, session: Session, as_admin: Headers, make_team: Any, make_user: Any
) -> None:
    team = make_team()
    member: User = make_user(team_id=team.id)
    assert client.delete(f"{API}/teams/{team.id}", headers=as_admin).status_code == 204
    assert client.get(f"{API}/users/{member.id}", headers=as_admin).json()["team_id"] is None


def test_bad_team_bodies(client: TestClient, as_admin: Headers) -> None:
    for body in ({"name": ""}, {"name": "x" * 101}, {"name": "ok", "id": 3}, {"name": "a\x00"}):
        assert client.post(f"{API}/teams/", json=body, headers=as_admin).status_code == 422
    team = client.post(f"{API}/teams/", json={"name": "T"}, headers=as_admin).json()
    assert client.patch(f"{API}/teams/{team['id']}", json={"name": None}, headers=as_admin).status_code == 422
