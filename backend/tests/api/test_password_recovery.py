"""POST /password-recovery and POST /reset-password: one answer whatever the address, a token
stored only hashed, single use, 1 hour, voided by any password change, and throttled."""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from app.core import account_tokens
from app.core.config import get_settings
from app.crud import common
from app.factories import DEMO_PASSWORD, UserFactory
from app.models import AccountToken, AccountTokenPurpose, LoginThrottle, Notification, Role, User
from tests.conftest import MakeUser
from tests.utils import API, auth, error_body

Headers = dict[str, str]
RECOVER, RESET = f"{API}/password-recovery", f"{API}/reset-password"
SENT = {"message": "If this address has an active account, a password recovery e-mail is on its way"}
BAD_TOKEN = {"detail": "Invalid or expired token"}
NEW_PASSWORD = "a brand new passphrase 42"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The crud clock, set to clock[0] (move it by assigning)."""
    now = [NOW]
    monkeypatch.setattr(common, "utcnow", lambda: now[0])
    return now


def tokens(session: Session, user: User) -> list[AccountToken]:
    return list(
        session.exec(
            select(AccountToken).where(AccountToken.user_id == user.id).order_by(col(AccountToken.id))
        ).all()
    )


def outbox(session: Session) -> list[tuple[str, int, int | None, dict[str, Any]]]:
    rows = session.exec(select(Notification).order_by(col(Notification.id))).all()
    return [(row.kind.value, row.recipient_id, row.ticket_id, json.loads(row.payload)) for row in rows]


def link_token(row: AccountToken) -> str:
    """What the e-mail's link carries (the worker derives it the same way)."""
    return account_tokens.derive(get_settings().SECRET_KEY, row.purpose.value, row.nonce)


def recover(client: TestClient, email: str) -> Any:
    return client.post(RECOVER, json={"email": email})


def reset(client: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(RESET, json={"token": token, "new_password": password})


def logs_in(client: TestClient, user: User, password: str) -> bool:
    response = client.post(f"{API}/login/access-token", data={"username": user.email, "password": password})
    return response.status_code == 200


def test_every_address_gets_the_same_answer_and_only_an_active_account_a_token(
    client: TestClient, session: Session, make_user: MakeUser, clock: list[datetime]
) -> None:
    user, inactive = make_user(Role.reporter), make_user(Role.agent, is_active=False)
    answers = [recover(client, email) for email in (user.email, "nobody@example.com", inactive.email)]
    assert [(r.status_code, r.json()) for r in answers] == [(202, SENT)] * 3
    assert tokens(session, inactive) == []
    (row,) = tokens(session, user)
    assert row.purpose.value == "password_reset"
    assert row.token_hash == account_tokens.digest(link_token(row))  # only the hash is stored
    assert link_token(row) not in (row.nonce, row.token_hash)
    assert row.auth_stamp == user.auth_stamp
    assert row.expires_at == NOW + timedelta(minutes=60) and row.used_at is None
    assert outbox(session) == [("password_reset", user.id, None, {"token_id": row.id})]


def test_the_address_is_matched_whatever_its_case_and_spaces(
    client: TestClient, session: Session, reporter: User
) -> None:
    assert recover(client, f"  {reporter.email.upper()} ").status_code == 202
    assert len(tokens(session, reporter)) == 1


def test_a_reset_sets_the_password_once_and_revokes_every_session(
    client: TestClient, session: Session, reporter: User, clock: list[datetime]
) -> None:
    old_session = auth(reporter)
    recover(client, reporter.email)
    (row,) = tokens(session, reporter)
    response = reset(client, link_token(row))
    assert (response.status_code, response.json()) == (200, {"message": "Password updated"})
    assert logs_in(client, reporter, NEW_PASSWORD) and not logs_in(client, reporter, DEMO_PASSWORD)
    assert client.get(f"{API}/users/me", headers=old_session).status_code == 401
    again = reset(client, link_token(row), "yet another passphrase 7")
    assert (again.status_code, error_body(again)) == (400, BAD_TOKEN)
    session.refresh(row)
    assert row.used_at == NOW


def test_a_token_lasts_one_hour(
    client: TestClient, session: Session, reporter: User, clock: list[datetime]
) -> None:
    recover(client, reporter.email)
    recover(client, reporter.email)
    first, second = tokens(session, reporter)
    clock[0] = NOW + timedelta(minutes=60)
    expired = reset(client, link_token(first))
    assert (expired.status_code, error_body(expired)) == (400, BAD_TOKEN)
    clock[0] = NOW + timedelta(minutes=59, seconds=59)
    assert reset(client, link_token(second)).status_code == 200


def test_any_password_change_voids_the_outstanding_tokens(
    client: TestClient, session: Session, reporter: User, as_reporter: Headers
) -> None:
    recover(client, reporter.email)
    changed = client.patch(
        f"{API}/users/me/password",
        json={"current_password": DEMO_PASSWORD, "new_password": "changed by hand 1234"},
        headers=as_reporter,
    )
    assert changed.status_code == 200
    recover(client, reporter.email)
    recover(client, reporter.email)
    voided, first, second = tokens(session, reporter)
    assert error_body(reset(client, link_token(voided))) == BAD_TOKEN
    assert reset(client, link_token(first)).status_code == 200
    # the first reset is a password change too: the second link is void now
    assert error_body(reset(client, link_token(second), "and one more passphrase")) == BAD_TOKEN


def test_unknown_tokens_and_deactivated_users_are_refused_alike(
    client: TestClient, session: Session, reporter: User, as_admin: Headers
) -> None:
    for token in ("x", "A" * 43, account_tokens.derive("another-secret-key", "password_reset", "n")):
        response = reset(client, token)
        assert (response.status_code, error_body(response)) == (400, BAD_TOKEN)
    recover(client, reporter.email)
    (row,) = tokens(session, reporter)
    client.patch(f"{API}/users/{reporter.id}", json={"is_active": False}, headers=as_admin)
    assert error_body(reset(client, link_token(row))) == BAD_TOKEN


def test_a_weak_password_is_a_422_and_keeps_the_token(
    client: TestClient, session: Session, reporter: User
) -> None:
    recover(client, reporter.email)
    (row,) = tokens(session, reporter)
    weak = reset(client, link_token(row), "password")
    assert weak.status_code == 422
    (error,) = error_body(weak)["detail"]
    assert error["loc"] == ["body", "new_password"] and "input" not in error
    too_short = reset(client, link_token(row), "Qz7#x")
    assert too_short.status_code == 422 and "Qz7#x" not in too_short.text  # a password is never echoed
    assert reset(client, link_token(row)).status_code == 200


def test_recovery_counts_against_the_login_throttle_whatever_the_address(
    client: TestClient, reporter: User
) -> None:
    limit = get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT
    for email in (reporter.email, "nobody@example.com"):
        assert [recover(client, email).status_code for _ in range(limit)] == [202] * limit
        throttled = recover(client, email)
        assert throttled.status_code == 429
        assert error_body(throttled) == {"detail": "Too many failed logins; try again later"}
        assert int(throttled.headers["Retry-After"]) > 0
    # and the login of that account is throttled too: they share the account's count
    response = client.post(f"{API}/login/access-token", data={"username": reporter.email, "password": "x"})
    assert response.status_code == 429


def test_bad_tokens_are_throttled_per_client_good_ones_are_not_counted(
    client: TestClient, session: Session, reporter: User
) -> None:
    limit = get_settings().LOGIN_MAX_FAILURES_PER_CLIENT
    recover(client, reporter.email)  # an attempt of this client too
    (row,) = tokens(session, reporter)
    for _ in range(limit - 2):
        assert reset(client, "not-a-token").status_code == 400
    for _ in range(3):  # a good token with a weak password is no bad token: not counted either
        assert reset(client, link_token(row), "password").status_code == 422
    assert reset(client, link_token(row)).status_code == 200  # taken back: still one attempt left
    assert reset(client, "not-a-token").status_code == 400
    throttled = reset(client, "not-a-token")
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers


def test_bad_bodies_are_422(client: TestClient) -> None:
    for url, body in (
        (RECOVER, {}),
        (RECOVER, {"email": ""}),
        (RECOVER, {"email": "a" * 400}),
        (RESET, {"token": "t"}),
        (RESET, {"token": "", "new_password": NEW_PASSWORD}),
        (RESET, {"token": "t", "new_password": NEW_PASSWORD, "extra": 1}),
    ):
        assert client.post(url, json=body).status_code == 422, body


@pytest.fixture
def committed_token(engine: Engine) -> Iterator[tuple[int, str, str]]:
    """A user's id, auth stamp and a recovery token of theirs, committed for real (for a live
    server); removed afterwards."""
    with Session(engine) as session:
        user = UserFactory.build(role=Role.reporter)
        session.add(user)
        session.commit()
        user_id, stamp = user.id, user.auth_stamp
        assert user_id is not None
        nonce = account_tokens.new_nonce()
        token = account_tokens.derive(get_settings().SECRET_KEY, "password_reset", nonce)
        session.add(
            AccountToken(
                user_id=user_id,
                purpose=AccountTokenPurpose.password_reset,
                nonce=nonce,
                token_hash=account_tokens.digest(token),
                auth_stamp=stamp,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        session.commit()
    yield user_id, stamp, token
    with Session(engine) as session:
        session.delete(session.get(User, user_id))  # its token goes with it (ON DELETE CASCADE)
        session.exec(delete(LoginThrottle))  # type: ignore[call-overload]
        session.commit()


def test_a_token_sent_many_times_at_once_resets_once(
    live_api: str, engine: Engine, committed_token: tuple[int, str, str]
) -> None:
    user_id, stamp, token = committed_token
    with httpx.Client(base_url=live_api, timeout=60) as http:

        def attempt(number: int) -> int:
            body = {"token": token, "new_password": f"racing passphrase number {number}"}
            return http.post("/reset-password", json=body).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [400] * 7, statuses
    with Session(engine) as session:
        user = session.get(User, user_id)
        assert user is not None and user.auth_stamp != stamp
        row = session.exec(select(AccountToken).where(AccountToken.user_id == user_id)).one()
        assert row.used_at is not None
