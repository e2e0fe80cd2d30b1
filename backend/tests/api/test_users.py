from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.factories import DEMO_PASSWORD
from app.models import Role, User
from tests.utils import API, auth, create_ticket, error_body

Headers = dict[str, str]


def login(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{API}/login/access-token", data={"username": email, "password": password})


def test_me(client: TestClient, agent: User, as_agent: Headers) -> None:
    body = client.get(f"{API}/users/me", headers=as_agent).json()
    assert body == {
        "id": agent.id,
        "email": agent.email,
        "full_name": "Alex Agent",
        "role": "agent",
        "is_active": True,
        "is_service_account": False,
        "team_id": None,
        "created_at": body["created_at"],
    }
    assert "hashed_password" not in body and "password" not in body


def test_update_me(client: TestClient, as_agent: Headers, reporter: User) -> None:
    response = client.patch(
        f"{API}/users/me", json={"full_name": "Alexandra", "email": "Alex@Example.COM"}, headers=as_agent
    )
    assert response.status_code == 200
    assert (response.json()["full_name"], response.json()["email"]) == ("Alexandra", "alex@example.com")
    taken = client.patch(f"{API}/users/me", json={"email": reporter.email.upper()}, headers=as_agent)
    assert taken.status_code == 409
    assert error_body(taken) == {"detail": "A user with this email already exists"}
    for body in ({"role": "admin"}, {"is_active": False}, {"email": "not-an-email"}, {"email": None}):
        assert client.patch(f"{API}/users/me", json=body, headers=as_agent).status_code == 422


def test_change_password(client: TestClient, agent: User, as_agent: Headers) -> None:
    url = f"{API}/users/me/password"
    wrong = client.patch(
        url,
        json={"current_password": "nope-nope", "new_password": "a new passphrase of mine"},
        headers=as_agent,
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "current_password"]
    short = client.patch(
        url, json={"current_password": DEMO_PASSWORD, "new_password": "short"}, headers=as_agent
    )
    assert short.status_code == 422
    same = client.patch(
        url, json={"current_password": DEMO_PASSWORD, "new_password": DEMO_PASSWORD}, headers=as_agent
    )
    assert same.status_code == 422
    ok = client.patch(
        url,
        json={"current_password": DEMO_PASSWORD, "new_password": "a new passphrase of mine"},
        headers=as_agent,
    )
    assert ok.json() == {"message": "Password updated"}
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 400
    assert login(client, agent.email, "a new passphrase of mine").status_code == 200


def test_admin_manages_users(client: TestClient, as_admin: Headers, make_team: Any) -> None:
    team = make_team()
    created = client.post(
        f"{API}/users/",
        json={
            "email": "New.Agent@Example.com",
            "password": "s3cret-pass",
            "role": "agent",
            "team_id": team.id,
        },
        headers=as_admin,
    )
    assert created.status_code == 201
    user = created.json()
    assert (user["email"], user["role"], user["team_id"], user["is_active"]) == (
        "new.agent@example.com",
        "agent",
        team.id,
        True,
    )
    assert login(client, "NEW.AGENT@example.com", "s3cret-pass").status_code == 200
    url = f"{API}/users/{user['id']}"
    assert client.get(url, headers=as_admin).json() == user
    patched = client.patch(
        url, json={"role": "reporter", "is_active": False, "team_id": None}, headers=as_admin
    )
    assert (patched.json()["role"], patched.json()["is_active"], patched.json()["team_id"]) == (
        "reporter",
        False,
        None,
    )
    # A deactivated account answers like a wrong password (it never confirms the password).
    inactive = login(client, "new.agent@example.com", "s3cret-pass")
    assert error_body(inactive) == {"detail": "Incorrect email or password"}
    listing = client.get(f"{API}/users/?limit=100", headers=as_admin).json()
    assert user["id"] in [u["id"] for u in listing["data"]]
    assert client.delete(url, headers=as_admin).status_code == 204
    assert error_body(client.get(url, headers=as_admin)) == {"detail": "User not found"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "nope", "password": "long-enough"},
        {"email": "a@example.com", "password": "long-enough", "role": "root"},
        {"email": "a@example.com", "password": "long-enough", "hashed_password": "x"},
        {"email": "a@example.com", "password": "long-enough", "team_id": 999999},
    ],
)
def test_bad_user_bodies_are_422(client: TestClient, as_admin: Headers, body: dict[str, Any]) -> None:
    assert client.post(f"{API}/users/", json=body, headers=as_admin).status_code == 422


def test_duplicate_email_ignores_case(client: TestClient, as_admin: Headers, agent: User) -> None:
    response = client.post(
        f"{API}/users/", json={"email": agent.email.upper(), "password": "long-enough"}, headers=as_admin
    )
    assert response.status_code == 409


def test_the_last_active_admin_stays(client: TestClient, admin: User, as_admin: Headers) -> None:
    url = f"{API}/users/{admin.id}"
    for attempt in (
        lambda: client.patch(url, json={"role": "agent"}, headers=as_admin),
        lambda: client.patch(url, json={"is_active": False}, headers=as_admin),
        lambda: client.delete(url, headers=as_admin),
    ):
        response = attempt()
        assert response.status_code == 409
        assert error_body(response) == {"detail": "This is the last active admin; make another admin first"}
    assert client.get(f"{API}/users/me", headers=as_admin).json()["role"] == "admin"


def test_an_admin_may_step_down_when_another_remains(
    client: TestClient, admin: User, as_admin: Headers, make_user: Any
) -> None:
    make_user(Role.admin)
    response = client.patch(f"{API}/users/{admin.id}", json={"role": "agent"}, headers=as_admin)
    assert response.status_code == 200
    assert response.json()["role"] == "agent"


def test_users_with_activity_are_deactivated_not_deleted(
    client: TestClient, as_admin: Headers, reporter: User
) -> None:
    create_ticket(client, auth(reporter))
    response = client.delete(f"{API}/users/{reporter.id}", headers=as_admin)
    assert response.status_code == 409
    assert error_body(response) == {
        "detail": "This user has tickets, comments or audit events; deactivate them instead"
    }
