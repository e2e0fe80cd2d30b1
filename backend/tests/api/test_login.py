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
    from app.crud import common

    for _ in range(get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT):
        login(client, agent.email, "wrong-password")
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 429
    later = datetime.now(UTC) + timedelta(seconds=get_settings().LOGIN_WINDOW_SECONDS + 1)
    monkeypatch.setattr(common, "utcnow", lambda: later)
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200


@pytest.mark.parametrize("kind", ["account", "client"])
def test_a_new_window_counts_from_zero_and_throttles_again(
    client: TestClient, agent: User, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Each window restarts the count: the limit applies in the second window as in the first
    (a window that never restarted would count 1 forever and throttle no more)."""
    from app.crud import common

    settings = get_settings()
    window = timedelta(seconds=settings.LOGIN_WINDOW_SECONDS)
    if kind == "account":
        limit = settings.LOGIN_MAX_FAILURES_PER_ACCOUNT

        def fail(n: int) -> Any:
            return login(client, agent.email, "wrong-password")
    else:
        limit = settings.LOGIN_MAX_FAILURES_PER_CLIENT

        def fail(n: int) -> Any:
            return login(client, f"guess{n}@example.com", "wrong-password")

    start = datetime.now(UTC)
    for window_number in range(3):
        now = start + window_number * (window + timedelta(seconds=1))
        monkeypatch.setattr(common, "utcnow", lambda now=now: now)
        for n in range(limit):
            assert fail(n).status_code == 400, (window_number, n)
        refused = fail(limit)
        assert refused.status_code == 429, window_number
        assert int(refused.headers["retry-after"]) == settings.LOGIN_WINDOW_SECONDS
        # Still the same window a moment before it ends.
        monkeypatch.setattr(common, "utcnow", lambda now=now: now + window - timedelta(seconds=1))
        assert fail(limit + 1).status_code == 429, window_number


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
    user: User | int | str, *, secret: str | None = None, algorithm: str = "HS256", **claims: Any
) -> str:
    """A token for `user` with its current auth stamp (a well-formed stranger's for a bare id)."""
    now = datetime.now(UTC)
    sub, stamp = (user.id, user.auth_stamp) if isinstance(user, User) else (user, "0" * 32)
    payload = {"sub": str(sub), "stamp": stamp, "iat": now, "exp": now + timedelta(minutes=5), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret or get_settings().SECRET_KEY, algorithm=algorithm)


def unsigned_token(user: User) -> str:
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(datetime.now(UTC).timestamp())
    return (
        f"{part({'alg': 'none', 'typ': 'JWT'})}."
        f"{part({'sub': str(user.id), 'stamp': user.auth_stamp, 'iat': now, 'exp': now + 300})}."
    )


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda u: {}, id="missing"),
        pytest.param(lambda u: {"Authorization": "Bearer"}, id="empty"),
        pytest.param(lambda u: {"Authorization": "Basic YWRtaW46YWRtaW4="}, id="wrong-scheme"),
        pytest.param(lambda u: bearer("not.a.jwt"), id="malformed"),
        pytest.param(
            lambda u: bearer(token_for(u, exp=datetime.now(UTC) - timedelta(seconds=1))), id="expired"
        ),
        pytest.param(lambda u: bearer(token_for(u)[:-2] + "xx"), id="tampered"),
        pytest.param(lambda u: bearer(unsigned_token(u)), id="alg-none"),
        pytest.param(
            lambda u: bearer(token_for(u, secret="another-key-of-at-least-32-bytes!!")), id="other-key"
        ),
        pytest.param(lambda u: bearer(token_for(u, exp=None)), id="no-exp"),
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
    headers = bearer(token_for(agent))
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


# --- What the outside attack found ([1/8]) ---------------------------------------------------------


def test_a_success_does_not_reset_the_per_address_limit(client: TestClient, agent: User) -> None:
    # An attacker logging into an account of their own must not wipe the address's failures.
    limit = get_settings().LOGIN_MAX_FAILURES_PER_CLIENT
    for n in range(limit - 1):
        assert login(client, f"victim{n}@example.com", "guess-1234").status_code == 400
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200
    assert login(client, "victim-last@example.com", "guess-1234").status_code == 400  # the limit-th
    blocked = login(client, "victim-next@example.com", "guess-1234")
    assert blocked.status_code == 429
    assert error_body(blocked) == {"detail": "Too many failed logins; try again later"}


def test_a_success_clears_the_accounts_own_failures(client: TestClient, agent: User) -> None:
    limit = get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT
    for _ in range(limit - 1):
        assert login(client, agent.email, "wrong-password").status_code == 400
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200
    for _ in range(limit - 1):
        assert login(client, agent.email, "wrong-password").status_code == 400
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 200


def test_an_inactive_account_answers_like_a_wrong_password(
    client: TestClient, session: Session, agent: User
) -> None:
    agent.is_active = False
    session.add(agent)
    session.commit()
    right = login(client, agent.email, DEMO_PASSWORD)
    wrong = login(client, agent.email, "wrong-password")
    assert (right.status_code, error_body(right)) == (400, {"detail": "Incorrect email or password"})
    assert (wrong.status_code, error_body(wrong)) == (400, {"detail": "Incorrect email or password"})
    # ... and counts as a failure: guessing a deactivated account's password is throttled too.
    for _ in range(get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT - 2):
        login(client, agent.email, DEMO_PASSWORD)
    assert login(client, agent.email, DEMO_PASSWORD).status_code == 429


def test_an_over_long_username_is_refused_cleanly_and_counted(client: TestClient) -> None:
    name = "x" * 300 + "@example.com"
    for _ in range(get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT):
        response = login(client, name, "wrong-password")
        assert response.status_code == 400, response.text
    assert login(client, name, "wrong-password").status_code == 429
    too_long = login(client, "y" * 5000, "wrong-password")
    assert too_long.status_code == 422
    assert error_body(too_long)["detail"][0]["loc"] == ["body", "username"]


def test_a_refused_password_is_never_echoed(client: TestClient, as_admin: dict[str, str]) -> None:
    secret = "letmein123"
    responses = [
        client.post(URL, data={"username": "a@example.com", "password": "p" * 500}),
        client.post(
            f"{API}/users/",
            json={"email": "weak@example.com", "password": secret, "role": "agent"},
            headers=as_admin,
        ),
        client.patch(
            f"{API}/users/me/password",
            json={"current_password": "x" * 200, "new_password": "short"},
            headers=as_admin,
        ),
    ]
    for response in responses:
        assert response.status_code == 422, response.text
        for error in response.json()["detail"]:
            assert "input" not in error, error
        assert "p" * 500 not in response.text and '"short"' not in response.text
        assert f'"{secret}"' not in response.text


@pytest.mark.parametrize(
    "password",
    ["password", "12345678", " " * 8, "qwertyuiop", "incident", "aaaaaaaaaa", "weak@example.com"],
)
def test_common_and_trivial_passwords_are_refused(
    client: TestClient, as_admin: dict[str, str], password: str
) -> None:
    response = client.post(
        f"{API}/users/",
        json={"email": "weak@example.com", "password": password, "role": "agent"},
        headers=as_admin,
    )
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "password"]
    assert "password" in error["msg"].lower() or "guess" in error["msg"].lower(), error


def test_a_passphrase_is_accepted(client: TestClient, as_admin: dict[str, str]) -> None:
    response = client.post(
        f"{API}/users/",
        json={"email": "strong@example.com", "password": "correct horse battery staple", "role": "agent"},
        headers=as_admin,
    )
    assert response.status_code == 201, response.text
