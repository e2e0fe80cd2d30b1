"""Login, tokens and their edge cases, and throttling of repeated failures."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import security
from app.core.config import get_settings
from app.factories import DEMO_PASSWORD
from app.models import User
from tests.utils import API, error_body

URL = f"{API}/login/access-token"


def login(client: TestClient, email: str, password: str) -> Any:
    return client.post(URL, data={"username": email, "password": password})


def test_login_returns_a_working_bearer_token(client: TestClient, agent: User) -> None:
    response = login(client, agent.email.upper(), DEMO_PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], get_settings().SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == str(agent.id)
    lifetime = claims["exp"] - claims["iat"]
    assert lifetime == get_settings().ACCESS_TOKEN_EXPIRE_MINUTES * 60
    me = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == agent.id


def test_unknown_email_and_wrong_password_look_the_same(
    client: TestClient, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifications: list[str] = []
    real = security._hasher.verify

    def counting(password: str, hashed: str) -> bool:
        verifications.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(security._hasher, "verify", counting)
    unknown = login(client, "nobody@example.com", "whatever-pass")
    wrong = login(client, agent.email, "whatever-pass")
    assert (unknown.status_code, error_body(unknown)) == (wrong.status_code, error_body(wrong))
    assert wrong.status_code == 400
    assert error_body(wrong) == {"detail": "Incorrect email or password"}
    assert len(verifications) == 2  # one argon2 verification each: the same work, the same time


def test_login_form_needs_both_fields(client: TestClient) -> None:
    assert client.post(URL, data={"username": "a@example.com"}).status_code == 422


def test_failures_per_account_are_throttled_and_success_resets(client: TestClient, agent: User) -> None:
    limit = get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT
    for _ in range(limit - 1):
        assert login(client, agent.email, "wrong-password").status_code == 400
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200  # resets the count
    for _ in range(limit):
        assert login(client, agent.email, "wrong-password").status_code == 400
    locked = login(client, agent.email, DEMO_PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert error_body(locked) == {"detail": "Too many failed logins; try again later"}
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= get_settings().LOGIN_WINDOW_SECONDS


def test_lock_ends_when_the_window_has_passed(
    client: TestClient, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import crud

    for _ in range(get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT):
        login(client, agent.email, "wrong-password")
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 429
    later = datetime.now(UTC) + timedelta(seconds=get_settings().LOGIN_WINDOW_SECONDS + 1)
    monkeypatch.setattr(crud, "utcnow", lambda: later)
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200


def test_failures_from_one_client_are_throttled(client: TestClient) -> None:
    limit = get_settings().LOGIN_MAX_FAILURES_PER_CLIENT
    for n in range(limit):
        assert login(client, f"guess{n}@example.com", "wrong-password").status_code == 400
    response = login(client, "another@example.com", "wrong-password")
    assert response.status_code == 429
    assert "retry-after" in response.headers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(
    user_id: int | str, *, secret: str | None = None, algorithm: str = "HS256", **claims: Any
) -> str:
    now = datetime.now(UTC)
    payload = {"sub": str(user_id), "iat": now, "exp": now + timedelta(minutes=5), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret or get_settings().SECRET_KEY, algorithm=algorithm)


def unsigned_token(user_id: int) -> str:
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(datetime.now(UTC).timestamp())
    return (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': str(user_id), 'iat': now, 'exp': now + 300})}."
    )


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda u: {}, id="missing"),
        pytest.param(lambda u: {"Authorization": "Bearer"}, id="empty"),
        pytest.param(lambda u: {"Authorization": "Basic YWRtaW46YWRtaW4="}, id="wrong-scheme"),
        pytest.param(lambda u: bearer("not.a.jwt"), id="malformed"),
        pytest.param(
            lambda u: bearer(token_for(u.id, exp=datetime.now(UTC) - timedelta(seconds=1))), id="expired"
        ),
        pytest.param(lambda u: bearer(token_for(u.id)[:-2] + "xx"), id="tampered"),
        pytest.param(lambda u: bearer(unsigned_token(u.id)), id="alg-none"),
        pytest.param(
            lambda u: bearer(token_for(u.id, secret="another-key-of-at-least-32-bytes!!")), id="other-key"
        ),
        pytest.param(lambda u: bearer(token_for(u.id, exp=None)), id="no-exp"),
        pytest.param(lambda u: bearer(token_for("admin")), id="non-integer-sub"),
        pytest.param(lambda u: bearer(token_for(987654321)), id="deleted-user"),
    ],
)
def test_bad_tokens_are_401_with_bearer_challenge(client: TestClient, agent: User, make_headers: Any) -> None:
    response = client.get(f"{API}/users/me", headers=make_headers(agent))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] in ("Not authenticated", "Could not validate credentials")


def test_token_of_a_deactivated_user_is_401(client: TestClient, session: Session, agent: User) -> None:
    headers = bearer(token_for(agent.id))
    assert client.get(f"{API}/users/me", headers=headers).status_code == 200
    agent.is_active = False
    session.add(agent)
    session.commit()
    response = client.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_swagger_authorize_points_at_the_login_form(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == URL
