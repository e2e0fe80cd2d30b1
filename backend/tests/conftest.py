"""Test wiring: a migrated test database, one rolled-back transaction per test."""

import os
from collections.abc import Iterator

# Point the app at the test database before anything reads the settings.
from tests import databases
from tests.databases import test_database_url

TEST_URL = test_database_url()
os.environ["DATABASE_URL"] = TEST_URL
os.environ["DATA_DIR"] = str(databases._tmp / "data")  # never the checkout's .data/ (dev secret, SQLite)
os.environ["ENVIRONMENT"] = "local"
os.environ["SECRET_KEY"] = "test-secret-key-of-at-least-32-bytes-for-hs256"
os.environ["METRICS_TOKEN"] = METRICS_TOKEN = "test-metrics-scrape-token"

import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.api.deps import request_session  # noqa: E402
from app.core import db, migrations  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.main import app  # noqa: E402
from tests import contract  # noqa: E402

get_settings.cache_clear()

# Speed: argon2 at its production cost (about 0.1 s a check) would have the login, user and fuzzing
# tests spend most of their time hashing. In this process, passwords are hashed with argon2id's
# cheapest parameters; the production ones are checked in tests/unit/test_security.py, and every
# subprocess the tests start (the server, prestart, the CLI) uses them.
from functools import cache  # noqa: E402

from polyfactory import Use  # noqa: E402
from pwdlib import PasswordHash  # noqa: E402
from pwdlib.hashers.argon2 import Argon2Hasher  # noqa: E402

from app import factories  # noqa: E402
from app.core import security  # noqa: E402

CHEAP_ARGON2 = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
security._hasher = PasswordHash((CHEAP_ARGON2,))
factories.demo_password_hash = cache(  # type: ignore[method-assign]
    lambda: CHEAP_ARGON2.hash(factories.DEMO_PASSWORD, salt=factories.DEMO_PASSWORD_SALT)
)
factories.UserFactory.hashed_password = Use(factories.demo_password_hash)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The test database, migrated to head once per run (never create_all)."""
    migrations.upgrade(TEST_URL, "head")
    test_engine = db.create_db_engine(TEST_URL)
    previous = db.use_engine(test_engine)
    yield test_engine
    db.use_engine(previous)
    test_engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back when the test ends.

    Code under test may commit: with `create_savepoint` its commits release savepoints and the
    outer transaction still undoes everything.
    """
    connection = engine.connect()
    outer = connection.begin()
    test_session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield test_session
    finally:
        test_session.close()
        outer.rollback()
        connection.close()


class ContractCheckingClient(TestClient):
    """A TestClient that checks every response against the OpenAPI schema (tests/contract.py)."""

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        contract.check(method, url, response)
        return response


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    """The API, with its session dependency joined to the test's transaction; every response is
    checked against the OpenAPI schema."""

    def same_session() -> Iterator[Session]:
        session.expire_all()  # as if each request had a session of its own
        yield session

    app.dependency_overrides[request_session] = same_session
    with ContractCheckingClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()


# --- People and tickets ---------------------------------------------------------------------------

from collections.abc import Callable  # noqa: E402

from app.factories import TeamFactory, UserFactory  # noqa: E402
from app.models import Role, Team, User  # noqa: E402
from scripts.benchkit import free_port  # noqa: E402
from tests.utils import API, auth  # noqa: E402

MakeUser = Callable[..., User]


@pytest.fixture
def make_user(session: Session) -> MakeUser:
    """Store a user built by the factory (password: app.factories.DEMO_PASSWORD)."""

    def make(role: Role = Role.agent, **fields: Any) -> User:
        user = UserFactory.build(role=role, **fields)
        session.add(user)
        session.commit()
        session.refresh(user)
        return user

    return make


@pytest.fixture
def make_team(session: Session) -> Callable[..., Team]:
    def make(**fields: Any) -> Team:
        team = TeamFactory.build(**fields)
        session.add(team)
        session.commit()
        session.refresh(team)
        return team

    return make


@pytest.fixture
def admin(make_user: MakeUser) -> User:
    return make_user(Role.admin, full_name="Ada Admin")


@pytest.fixture
def agent(make_user: MakeUser) -> User:
    return make_user(Role.agent, full_name="Alex Agent")


@pytest.fixture
def agent2(make_user: MakeUser) -> User:
    return make_user(Role.agent, full_name="Blair Agent")


@pytest.fixture
def reporter(make_user: MakeUser) -> User:
    return make_user(Role.reporter, full_name="Riley Reporter")


@pytest.fixture
def other_reporter(make_user: MakeUser) -> User:
    return make_user(Role.reporter, full_name="Sam Reporter")


@pytest.fixture
def as_admin(admin: User) -> dict[str, str]:
    return auth(admin)


@pytest.fixture
def as_agent(agent: User) -> dict[str, str]:
    return auth(agent)


@pytest.fixture
def as_reporter(reporter: User) -> dict[str, str]:
    return auth(reporter)


@pytest.fixture
def live_api(engine: Engine) -> Iterator[str]:
    """The app served by uvicorn in a thread against the test database, with real commits (it does
    not share the test transaction): for tests that need concurrent requests. Yields the API base."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}{API}"
    server.should_exit = True
    thread.join(timeout=10)
