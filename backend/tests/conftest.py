"""Test wiring: a migrated test database, one rolled-back transaction per test."""

import os
from collections.abc import Awaitable, Callable, Iterator

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
from contextlib import contextmanager  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import anyio.from_thread  # noqa: E402
import pytest  # noqa: E402
import uvicorn  # noqa: E402
from anyio.from_thread import BlockingPortal  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.api.deps import request_database  # noqa: E402
from app.core import database, db, migrations  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.core.database import ConnectionDatabase, Database  # noqa: E402
from app.main import app  # noqa: E402
from tests import contract  # noqa: E402
from tests.asgi_transport import OneCallTransport  # noqa: E402
from tests.async_bridge import GreenletSession  # noqa: E402

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


@pytest.fixture(scope="session")
def async_engine(engine: Engine) -> AsyncEngine:
    """The test database for async access. No pool: a connection is opened where it is asked for."""
    # PostgreSQL: not the app's autocommit, so that the test's transaction is a real one.
    isolation = {"isolation_level": "READ COMMITTED"} if databases.is_postgres(TEST_URL) else {}
    return database.create_async_db_engine(TEST_URL, poolclass=NullPool, **isolation)


# One event loop and one connection per test process, each test in a transaction of its own on it:
# opening and closing them for every test cost 7 ms of CPU a test (a thread for the loop, another
# for aiosqlite's connection), about as much as the rest of a short API test.


@pytest.fixture(scope="session")
def portal() -> Iterator[BlockingPortal]:
    """The tests' event loop, in a thread (tests/async_bridge.py)."""
    with anyio.from_thread.start_blocking_portal("asyncio") as loop:
        yield loop


@pytest.fixture(scope="session")
def process_connection(portal: BlockingPortal, async_engine: AsyncEngine) -> Iterator[AsyncConnection]:
    """The test process's connection to the test database, in the tests' loop."""
    conn = portal.call(async_engine.connect)
    try:
        yield conn
    finally:
        portal.call(conn.close)


@pytest.fixture
def connection(portal: BlockingPortal, process_connection: AsyncConnection) -> Iterator[AsyncConnection]:
    """The test's connection, inside a transaction that is rolled back when the test ends."""
    transaction = portal.call(process_connection.begin)
    try:
        yield process_connection
    finally:
        portal.call(transaction.rollback)


@contextmanager
def session_on(portal: BlockingPortal, connection: AsyncConnection) -> Iterator[Session]:
    """A session inside `connection`'s transaction (what the `session` fixture yields)."""
    sync_session = Session(
        bind=connection.sync_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    proxy = GreenletSession(portal, sync_session)
    try:
        yield proxy  # type: ignore[misc]
    finally:
        proxy.close()


@pytest.fixture
def session(portal: BlockingPortal, connection: AsyncConnection) -> Iterator[Session]:
    """A session inside the test's transaction (rolled back when the test ends).

    Code under test may commit: with `create_savepoint` its commits release savepoints and the
    outer transaction still undoes everything.
    """
    with session_on(portal, connection) as test_session:
        yield test_session


RunDb = Callable[[Callable[[Database], Awaitable[Any]]], Any]


@pytest.fixture
def run_db(portal: BlockingPortal, connection: AsyncConnection) -> RunDb:
    """Run `work(db)` (async crud calls, as a CLI or the worker makes them) in the test's loop, with
    a Database on the test's connection: `run_db(lambda db: crud.get_user(db=db, user_id=1))`."""

    def run(work: Callable[[Database], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            shared = ConnectionDatabase(connection)
            try:
                return await work(shared)
            finally:
                await shared.close()

        return portal.call(main)

    return run


class ContractCheckingClient(TestClient):
    """A TestClient that checks every response against the OpenAPI schema (tests/contract.py), each
    request one call into the test's loop (tests/asgi_transport.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = OneCallTransport(self)

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        contract.check(method, url, response)
        return response


@contextmanager
def client_on(portal: BlockingPortal, connection: AsyncConnection) -> Iterator[TestClient]:
    """The API with its database on `connection`, in `portal`'s loop (what the `client` fixture yields)."""

    async def same_connection() -> Any:
        shared = ConnectionDatabase(connection)
        try:
            yield shared
        finally:
            await shared.close()

    app.dependency_overrides[request_database] = same_connection
    test_client = ContractCheckingClient(app)
    test_client.portal = portal  # requests run in the loop that owns the connection
    try:
        yield test_client
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def client(portal: BlockingPortal, connection: AsyncConnection, session: Session) -> Iterator[TestClient]:
    """The API, its database joined to the test's transaction (each request a Database on the test's
    connection, in the test's loop); every response is checked against the OpenAPI schema."""
    with client_on(portal, connection) as test_client:
        yield test_client


# --- People and tickets ---------------------------------------------------------------------------

from app.factories import TeamFactory, UserFactory  # noqa: E402
from app.models import Role, Team, User  # noqa: E402
from scripts.benchkit import free_port  # noqa: E402
from tests.utils import API, auth  # noqa: E402

MakeUser = Callable[..., User]
T = TypeVar("T")


def stored(session: Session, row: T) -> T:
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


@pytest.fixture
def make_user(session: Session) -> MakeUser:
    """Store a user built by the factory (password: app.factories.DEMO_PASSWORD)."""

    def make(role: Role = Role.agent, **fields: Any) -> User:
        return stored(session, UserFactory.build(role=role, **fields))

    return make


@pytest.fixture
def make_team(session: Session) -> Callable[..., Team]:
    def make(**fields: Any) -> Team:
        return stored(session, TeamFactory.build(**fields))

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
    database.use_async_engine(None)  # a fresh engine for the server's own event loop
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
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
    database.use_async_engine(None)  # disposed by the app's shutdown, in the server's loop
