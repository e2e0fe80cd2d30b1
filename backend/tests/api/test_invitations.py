"""POST /users without a password invites: an unusable password, a 72-hour link to set one (through
POST /reset-password), queued with its e-mail in the same transaction; never a password by e-mail."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.crud import common
from app.factories import DEMO_PASSWORD
from app.models import AccountToken, Notification, User
from tests.api.test_password_recovery import BAD_TOKEN, NEW_PASSWORD, link_token, logs_in, reset
from tests.utils import API, error_body

Headers = dict[str, str]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    now = [NOW]
    monkeypatch.setattr(common, "utcnow", lambda: now[0])
    return now


def invite(client: TestClient, headers: Headers, email: str = "new.agent@example.com") -> dict[str, object]:
    response = client.post(
        f"{API}/users/", json={"email": email, "full_name": "New Agent", "role": "agent"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_invited_user_cannot_log_in_until_they_set_a_password(
    client: TestClient, session: Session, as_admin: Headers, clock: list[datetime]
) -> None:
    created = invite(client, as_admin)
    assert created["email"] == "new.agent@example.com" and created["role"] == "agent"
    user = session.get(User, created["id"])
    assert user is not None
    row = session.exec(select(AccountToken).where(AccountToken.user_id == user.id)).one()
    assert row.purpose.value == "invitation" and row.expires_at == NOW + timedelta(hours=72)
    (queued,) = session.exec(select(Notification)).all()
    assert (queued.kind.value, queued.recipient_id, queued.ticket_id) == ("invitation", user.id, None)
    assert json.loads(queued.payload) == {"token_id": row.id}  # no password, no token
    for guess in ("password", DEMO_PASSWORD, user.hashed_password):  # refused like any wrong one
        assert not logs_in(client, user, guess)

    clock[0] = NOW + timedelta(hours=71)
    assert reset(client, link_token(row)).status_code == 200
    assert logs_in(client, user, NEW_PASSWORD)
    assert error_body(reset(client, link_token(row), "another long passphrase")) == BAD_TOKEN


def test_an_invitation_expires_after_72_hours(
    client: TestClient, session: Session, as_admin: Headers, clock: list[datetime]
) -> None:
    created = invite(client, as_admin)
    row = session.exec(select(AccountToken).where(AccountToken.user_id == created["id"])).one()
    clock[0] = NOW + timedelta(hours=72)
    assert error_body(reset(client, link_token(row))) == BAD_TOKEN


def test_with_a_password_there_is_no_invitation(
    client: TestClient, session: Session, as_admin: Headers
) -> None:
    response = client.post(
        f"{API}/users/",
        json={"email": "direct@example.com", "password": "a long enough one"},
        headers=as_admin,
    )
    assert response.status_code == 201
    assert session.exec(select(AccountToken)).all() == []
    assert session.exec(select(Notification)).all() == []


def test_a_refused_invitation_writes_nothing(
    client: TestClient, session: Session, as_admin: Headers, admin: User
) -> None:
    taken = client.post(f"{API}/users/", json={"email": admin.email}, headers=as_admin)
    assert taken.status_code == 409
    no_team = client.post(
        f"{API}/users/", json={"email": "x@example.com", "team_id": 10**6}, headers=as_admin
    )
    assert no_team.status_code == 422
    null = client.post(f"{API}/users/", json={"email": "y@example.com", "password": None}, headers=as_admin)
    assert null.status_code == 422
    assert session.exec(select(AccountToken)).all() == []
    assert session.exec(select(Notification)).all() == []
    count = session.exec(select(User).where(col(User.email).in_(["x@example.com", "y@example.com"]))).all()
    assert count == []
