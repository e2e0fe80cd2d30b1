"""Access tokens belong to one account and die with the credentials they were issued for.

A token names the user's id and the account's current auth stamp (a random value stored on the
user). Changing or resetting the password, deactivating the account or changing its role gives the
account a new stamp, so every token issued before is refused at once, by every worker and replica
(the stamp is read from the database on every request). Ids are never reused, on SQLite too.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import get_settings
from app.factories import DEMO_PASSWORD
from app.models import Role, User
from tests.conftest import MakeUser
from tests.utils import API, auth

Headers = dict[str, str]


def login(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{API}/login/access-token", data={"username": email, "password": password})


def token_of(client: TestClient, email: str, password: str = DEMO_PASSWORD) -> Headers:
    response = login(client, email, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def me(client: TestClient, headers: Headers) -> Any:
    return client.get(f"{API}/users/me", headers=headers)


def test_a_deleted_users_token_never_acts_as_the_next_user(
    client: TestClient, as_admin: Headers, make_user: MakeUser
) -> None:
    victim = make_user(Role.reporter)
    old_token = token_of(client, victim.email)
    assert client.delete(f"{API}/users/{victim.id}", headers=as_admin).status_code == 204
    created = client.post(
        f"{API}/users/",
        json={"email": "next.admin@example.com", "password": "a fresh admin passphrase", "role": "admin"},
        headers=as_admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] > victim.id  # ids are never handed out twice
    response = me(client, old_token)
    assert response.status_code == 401
    assert response.json()["detail"] == "Could not validate credentials"


def test_a_token_names_the_account_not_only_its_id(client: TestClient, agent: User) -> None:
    # A token with the right id and signature but without the account's stamp is refused.
    now = datetime.now(UTC)
    claims = {"sub": str(agent.id), "iat": now, "exp": now + timedelta(minutes=5)}
    bare = jwt.encode(claims, get_settings().SECRET_KEY, algorithm="HS256")
    assert me(client, {"Authorization": f"Bearer {bare}"}).status_code == 401
    stale = jwt.encode({**claims, "stamp": "0" * 32}, get_settings().SECRET_KEY, algorithm="HS256")
    assert me(client, {"Authorization": f"Bearer {stale}"}).status_code == 401
    assert me(client, auth(agent)).json()["id"] == agent.id


def test_changing_my_password_revokes_my_earlier_tokens(client: TestClient, agent: User) -> None:
    first, second = token_of(client, agent.email), token_of(client, agent.email)
    changed = client.patch(
        f"{API}/users/me/password",
        json={"current_password": DEMO_PASSWORD, "new_password": "a brand new passphrase"},
        headers=first,
    )
    assert changed.status_code == 200, changed.text
    assert me(client, first).status_code == 401
    assert me(client, second).status_code == 401
    fresh = token_of(client, agent.email, "a brand new passphrase")
    assert me(client, fresh).json()["id"] == agent.id


def test_an_admin_password_reset_revokes_the_users_tokens(
    client: TestClient, as_admin: Headers, agent: User
) -> None:
    before = token_of(client, agent.email)
    reset = client.patch(
        f"{API}/users/{agent.id}", json={"password": "reset by the admin desk"}, headers=as_admin
    )
    assert reset.status_code == 200, reset.text
    assert me(client, before).status_code == 401
    assert me(client, token_of(client, agent.email, "reset by the admin desk")).status_code == 200


def test_deactivation_revokes_and_reactivation_does_not_revive_old_tokens(
    client: TestClient, as_admin: Headers, agent: User
) -> None:
    before = token_of(client, agent.email)
    assert (
        client.patch(f"{API}/users/{agent.id}", json={"is_active": False}, headers=as_admin).status_code
        == 200
    )
    assert me(client, before).status_code == 401
    assert (
        client.patch(f"{API}/users/{agent.id}", json={"is_active": True}, headers=as_admin).status_code == 200
    )
    assert me(client, before).status_code == 401  # a new stamp came with the deactivation
    assert me(client, token_of(client, agent.email)).status_code == 200


def test_a_role_change_revokes_the_users_tokens(client: TestClient, as_admin: Headers, agent: User) -> None:
    before = token_of(client, agent.email)
    demoted = client.patch(f"{API}/users/{agent.id}", json={"role": "reporter"}, headers=as_admin)
    assert demoted.status_code == 200
    assert me(client, before).status_code == 401
    assert me(client, token_of(client, agent.email)).json()["role"] == "reporter"


def test_edits_that_are_not_about_credentials_keep_tokens(
    client: TestClient, as_admin: Headers, agent: User
) -> None:
    before = token_of(client, agent.email)
    same = {"role": "agent", "is_active": True, "full_name": "Renamed Agent"}
    assert client.patch(f"{API}/users/{agent.id}", json=same, headers=as_admin).status_code == 200
    assert client.patch(f"{API}/users/me", json={"full_name": "Me Again"}, headers=before).status_code == 200
    assert me(client, before).json()["full_name"] == "Me Again"


def test_a_revocation_is_seen_by_a_token_verified_earlier(
    client: TestClient, session: Session, agent: User
) -> None:
    # The signature check is cached per process; the stamp comparison is not.
    headers = token_of(client, agent.email)
    assert me(client, headers).status_code == 200
    agent.auth_stamp = "f" * 32
    session.add(agent)
    session.commit()
    assert me(client, headers).status_code == 401


def test_a_sub_outside_the_id_range_is_401_not_500(client: TestClient) -> None:
    now = datetime.now(UTC)
    for sub in (str(2**63), str(2**31), "-1", "0", "1e3", " 1", "٣"):
        claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=5), "stamp": "0" * 32}
        token = jwt.encode(claims, get_settings().SECRET_KEY, algorithm="HS256")
        response = me(client, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (sub, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_token_response_is_never_cached(client: TestClient, agent: User) -> None:
    response = login(client, agent.email, DEMO_PASSWORD)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
