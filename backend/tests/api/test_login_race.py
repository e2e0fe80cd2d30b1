"""Login throttling holds under concurrency: the limit is counted atomically in the database.

30 wrong passwords for one account sent at once through a real server may cause at most
LOGIN_MAX_FAILURES_PER_ACCOUNT password checks; the rest are refused with 429 before any check.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session

from app.core import security
from app.core.config import get_settings
from app.factories import UserFactory
from app.models import LoginThrottle, Role, User


@pytest.fixture
def committed_user(engine: Engine) -> Iterator[User]:
    with Session(engine) as session:
        user = UserFactory.build(role=Role.agent)
        session.add(user)
        session.commit()
        session.refresh(user)
        session.expunge(user)
    yield user
    with Session(engine) as session:
        session.delete(session.get(User, user.id))
        session.exec(delete(LoginThrottle))  # type: ignore[call-overload]
        session.commit()


def test_concurrent_wrong_passwords_get_at_most_the_limit_of_checks(
    live_api: str, committed_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_verify = security._hasher.verify

    def counting(password: str, hashed: str) -> bool:
        checks.append(password)
        return real_verify(password, hashed)

    monkeypatch.setattr(security._hasher, "verify", counting)
    form = {"username": committed_user.email, "password": "not-the-password"}
    with httpx.Client(base_url=live_api, timeout=60) as http:

        def attempt(_: int) -> int:
            return http.post("/login/access-token", data=form).status_code

        with ThreadPoolExecutor(max_workers=30) as pool:
            statuses = list(pool.map(attempt, range(30)))
    limit = get_settings().LOGIN_MAX_FAILURES_PER_ACCOUNT
    assert sorted(set(statuses)) == [400, 429], statuses
    assert statuses.count(400) == limit, statuses
    assert len(checks) == limit, f"{len(checks)} password checks for a limit of {limit}"
