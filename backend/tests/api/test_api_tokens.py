"""API tokens and service accounts: made once, kept as a hash, narrowed by scopes, revoked and
rate-limited through the database (so every worker and replica agrees)."""

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import get_settings
from app.crud import common
from app.factories import DEMO_PASSWORD
from app.main import create_app
from app.models import ApiToken, Role, User
from tests.conftest import MakeUser, stored
from tests.utils import API, auth, create_ticket, error_body

Headers = dict[str, str]


def make_token(client: TestClient, headers: Headers, *scopes: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/tokens/",
        json={"name": "monitoring", "scopes": list(scopes) or ["admin"], **body},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def bearer(token: dict[str, Any]) -> Headers:
    return {"Authorization": f"Bearer {token['token']}"}


def test_the_secret_is_shown_once_and_only_its_hash_is_kept(
    client: TestClient, session: Session, agent: User, as_agent: Headers
) -> None:
    made = make_token(client, as_agent, "tickets:read", "tickets:write", "tickets:read")
    secret = made["token"]
    assert secret.startswith("idt_") and len(secret) == 4 + 43
    assert made["scopes"] == ["tickets:read", "tickets:write"]
    assert made["user_id"] == agent.id and made["created_by_id"] == agent.id
    assert made["prefix"] == secret[:12] and made["last_used_at"] is None and made["revoked_at"] is None
    row = session.exec(select(ApiToken).where(ApiToken.id == made["id"])).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row.model_dump())
    listed = client.get(f"{API}/tokens/", headers=as_agent).json()
    assert listed["count"] == 1
    assert "token" not in listed["data"][0] and listed["data"][0]["prefix"] == secret[:12]


def test_a_token_acts_as_its_owner(client: TestClient, agent: User, as_agent: Headers) -> None:
    token = make_token(client, as_agent, "tickets:read")
    response = client.get(f"{API}/users/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == agent.id
    assert response.headers["RateLimit-Limit"] == "1000"
    assert response.headers["RateLimit-Remaining"] == "999"
    assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
    jwt_answer = client.get(f"{API}/users/me", headers=as_agent)
    assert "RateLimit-Limit" not in jwt_answer.headers


def test_expiry_defaults_to_90_days_and_is_at_most_a_year(client: TestClient, as_agent: Headers) -> None:
    token = make_token(client, as_agent)
    from datetime import datetime

    lasts = datetime.fromisoformat(token["expires_at"]) - datetime.fromisoformat(token["created_at"])
    assert lasts == timedelta(days=90)
    for days in (0, 366, "30"):
        response = client.post(
            f"{API}/tokens/",
            json={"name": "x", "scopes": ["admin"], "expires_in_days": days},
            headers=as_agent,
        )
        assert response.status_code == 422, (days, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "expires_in_days"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["tickets:delete"]}, "scopes"),
        ({"name": " ", "scopes": ["admin"]}, "name"),
        ({"scopes": ["admin"]}, "name"),
    ],
)
def test_bad_token_requests_are_422(client: TestClient, as_agent: Headers, body: Any, where: str) -> None:
    response = client.post(f"{API}/tokens/", json=body, headers=as_agent)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", where]


def test_an_expired_token_stops_working(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token(client, as_agent, "tickets:read", expires_in_days=1)
    later = common.utcnow() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(common, "utcnow", lambda: later)
    response = client.get(f"{API}/users/me", headers=bearer(token))
    assert response.status_code == 401
    assert error_body(response) == {"detail": "Could not validate credentials"}


def test_scopes_narrow_what_a_token_may_do(client: TestClient, as_agent: Headers) -> None:
    reader = make_token(client, as_agent, "tickets:read")
    assert client.get(f"{API}/tickets/", headers=bearer(reader)).status_code == 200
    refused = client.post(f"{API}/tickets/", json={"title": "Disk full"}, headers=bearer(reader))
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "this API token lacks the scope tickets:write"}
    writer = make_token(client, as_agent, "tickets:write")
    created = client.post(f"{API}/tickets/", json={"title": "Disk full"}, headers=bearer(writer))
    assert created.status_code == 201, created.text
    comment = client.post(
        f"{API}/tickets/{created.json()['id']}/comments", json={"body": "hi"}, headers=bearer(writer)
    )
    assert error_body(comment) == {"detail": "this API token lacks the scope comments:write"}


def test_a_reporters_token_never_sees_other_tickets_whatever_its_scopes(
    client: TestClient, as_reporter: Headers, other_reporter: User
) -> None:
    theirs = create_ticket(client, auth(other_reporter), title="Their laptop")
    token = make_token(client, as_reporter, "admin")
    hidden = client.get(f"{API}/tickets/{theirs['id']}", headers=bearer(token))
    assert hidden.status_code == 404
    assert client.get(f"{API}/tickets/", headers=bearer(token)).json()["count"] == 0
    users = client.get(f"{API}/users/", headers=bearer(token))
    assert error_body(users) == {"detail": "reporters may not read users"}


def test_revoking_stops_a_token_at_once(
    client: TestClient, as_agent: Headers, as_admin: Headers, as_reporter: Headers
) -> None:
    token = make_token(client, as_agent, "tickets:read")
    assert client.get(f"{API}/users/me", headers=bearer(token)).status_code == 200
    # someone else's token does not exist for a non-admin
    assert client.delete(f"{API}/tokens/{token['id']}", headers=as_reporter).status_code == 404
    revoked = client.delete(f"{API}/tokens/{token['id']}", headers=as_agent)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get(f"{API}/users/me", headers=bearer(token)).status_code == 401
    again = client.delete(f"{API}/tokens/{token['id']}", headers=as_admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert client.delete(f"{API}/tokens/999999", headers=as_admin).status_code == 404


def test_a_deactivated_users_tokens_stop_working(
    client: TestClient, agent: User, as_agent: Headers, as_admin: Headers
) -> None:
    token = make_token(client, as_agent, "tickets:read")
    deactivated = client.patch(f"{API}/users/{agent.id}", json={"is_active": False}, headers=as_admin)
    assert deactivated.status_code == 200
    assert client.get(f"{API}/users/me", headers=bearer(token)).status_code == 401


def test_a_service_accounts_tokens_outlive_the_admin_who_made_them(
    client: TestClient, make_user: MakeUser, as_admin: Headers
) -> None:
    maker = make_user(Role.admin)
    made = client.post(
        f"{API}/service-accounts/",
        json={"email": "prometheus@ops.example.com", "full_name": "Prometheus", "role": "agent"},
        headers=auth(maker),
    )
    assert made.status_code == 201, made.text
    account = made.json()
    assert account["is_service_account"] is True and account["role"] == "agent"
    token = make_token(client, auth(maker), "tickets:write", user_id=account["id"])
    assert token["user_id"] == account["id"] and token["created_by_id"] == maker.id
    assert (
        client.patch(f"{API}/users/{maker.id}", json={"is_active": False}, headers=as_admin).status_code
        == 200
    )
    created = client.post(f"{API}/tickets/", json={"title": "CPU high on db1"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["reporter_id"] == account["id"]
    listed = client.get(f"{API}/service-accounts/", headers=as_admin).json()
    assert [a["email"] for a in listed["data"]] == ["prometheus@ops.example.com"]


def test_a_service_account_cannot_log_in_even_with_a_password(client: TestClient, as_admin: Headers) -> None:
    account = client.post(
        f"{API}/service-accounts/", json={"email": "bot@ops.example.com"}, headers=as_admin
    ).json()
    set_password = client.patch(
        f"{API}/users/{account['id']}", json={"password": DEMO_PASSWORD}, headers=as_admin
    )
    assert set_password.status_code == 200
    login = client.post(
        f"{API}/login/access-token", data={"username": "bot@ops.example.com", "password": DEMO_PASSWORD}
    )
    assert login.status_code == 400
    assert error_body(login) == {"detail": "Incorrect email or password"}


def test_only_admins_make_tokens_for_others(
    client: TestClient, session: Session, as_agent: Headers, as_admin: Headers, reporter: User
) -> None:
    refused = client.post(
        f"{API}/tokens/", json={"name": "x", "scopes": ["admin"], "user_id": reporter.id}, headers=as_agent
    )
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "only admins may make tokens for someone else"}
    reporter.is_active = False
    stored(session, reporter)
    inactive = client.post(
        f"{API}/tokens/", json={"name": "x", "scopes": ["admin"], "user_id": reporter.id}, headers=as_admin
    )
    assert inactive.status_code == 422
    assert inactive.json()["detail"][0]["msg"] == "no active user with this id"
    mine = client.get(f"{API}/tokens/", params={"user_id": reporter.id}, headers=as_agent)
    assert error_body(mine) == {"detail": "only admins may list someone else's tokens"}


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, session: Session, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token(client, as_agent, "tickets:read")
    start = common.utcnow()

    def used_at(at: Any) -> Any:
        monkeypatch.setattr(common, "utcnow", lambda: at)
        assert client.get(f"{API}/users/me", headers=bearer(token)).status_code == 200
        session.expire_all()
        return session.exec(select(ApiToken.last_used_at).where(ApiToken.id == token["id"])).one()

    assert used_at(start) == start
    assert used_at(start + timedelta(seconds=59)) == start
    assert used_at(start + timedelta(seconds=61)) == start + timedelta(seconds=61)


def test_the_rate_limit_is_per_token_and_shared_by_every_server(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "API_TOKEN_RATE_LIMIT_PER_MINUTE", 3)
    start = common.utcnow()
    monkeypatch.setattr(common, "utcnow", lambda: start)
    token, other = make_token(client, as_agent, "tickets:read"), make_token(client, as_agent, "tickets:read")
    remaining = [
        client.get(f"{API}/users/me", headers=bearer(token)).headers["RateLimit-Remaining"] for _ in range(2)
    ]
    assert remaining == ["2", "1"]
    # A second application (another worker or replica) on the same database counts on.
    second = TestClient(create_app())
    second.portal = client.portal  # type: ignore[attr-defined]
    from app.api.deps import request_database
    from app.main import app

    second.app.dependency_overrides[request_database] = app.dependency_overrides[request_database]  # type: ignore[attr-defined]
    third = second.get(f"{API}/users/me", headers=bearer(token))
    assert third.status_code == 200 and third.headers["RateLimit-Remaining"] == "0"
    over = client.get(f"{API}/users/me", headers=bearer(token))
    assert over.status_code == 429
    assert error_body(over) == {"detail": "Rate limit of 3 requests a minute reached"}
    assert over.headers["RateLimit-Remaining"] == "0" and over.headers["Retry-After"] == "60"
    assert client.get(f"{API}/users/me", headers=bearer(other)).status_code == 200  # its own window
    monkeypatch.setattr(common, "utcnow", lambda: start + timedelta(seconds=60))
    again = client.get(f"{API}/users/me", headers=bearer(token))
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "2"


def test_swagger_offers_both_ways_to_authorize(client: TestClient) -> None:
    schemes = client.get(f"{API}/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["type"] == "oauth2"
    assert schemes["APIToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`idt_...`) from POST /tokens.",
    }


def test_an_unknown_or_malformed_api_token_is_401(client: TestClient) -> None:
    for secret in ("idt_", "idt_" + "A" * 43, "idt_%"):
        response = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 401, secret
        assert response.headers["WWW-Authenticate"] == "Bearer"
