"""Test wiring: a migrated test database, one rolled-back transaction per test."""

import os
from collections.abc import Iterator

# Point the app at the test database before anything reads the settings.
from tests.databases import test_database_url

TEST_URL = test_database_url()
os.environ["DATABASE_URL"] = TEST_URL
os.environ["ENVIRONMENT"] = "local"

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.core import db, migrations  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.main import app  # noqa: E402

get_settings.cache_clear()


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
    test_session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield test_session
    finally:
        test_session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    """The API, with its session dependency joined to the test's transaction."""

    def same_session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[db.get_session] = same_session
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()
