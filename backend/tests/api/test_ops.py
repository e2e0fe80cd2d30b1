import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.deps import request_database
from app.core import database, migrations
from app.core.config import get_settings
from app.core.database import Database
from app.main import app
from tests.databases import scratch_database


def test_ping(client: TestClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_needs_no_database(client: TestClient) -> None:
    async def no_database() -> AsyncIterator[Database]:
        raise AssertionError("/health must not open a session")
        yield  # pragma: no cover

    app.dependency_overrides[request_database] = no_database
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_db_health_at_head(client: TestClient) -> None:
    response = client.get("/db-health")
    head = migrations.head_revision()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "current_revision": head,
        "head_revision": head,
        "up_to_date": True,
    }


@pytest.fixture
def client_on(client: TestClient, portal: BlockingPortal) -> Iterator[object]:
    """Point the API's database at another one."""
    engines: list[AsyncEngine] = []

    def use(url: str) -> None:
        engine = database.create_async_db_engine(url)
        engines.append(engine)

        async def other_database() -> AsyncIterator[Database]:
            other = Database(engine)
            try:
                yield other
            finally:
                await other.close()

        app.dependency_overrides[request_database] = other_database

    yield use
    for engine in engines:
        portal.call(engine.dispose)


def test_db_health_unreachable_is_503(client: TestClient, client_on) -> None:  # type: ignore[no-untyped-def]
    client_on("postgresql+psycopg://nobody@127.0.0.1:9/nowhere")
    response = client.get("/db-health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unreachable"
    assert body["up_to_date"] is False
    assert body["current_revision"] is None
    assert body["head_revision"] == migrations.head_revision()


def test_db_health_unmigrated_is_503(client: TestClient, client_on) -> None:  # type: ignore[no-untyped-def]
    with scratch_database() as url:
        client_on(url)
        response = client.get("/db-health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "behind",
        "current_revision": None,
        "head_revision": migrations.head_revision(),
        "up_to_date": False,
    }


def test_swagger_and_schema_are_served(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Incident Desk"
    assert "/db-health" in schema["paths"]


class FrozenDatabase(Database):
    """A server that stops answering without closing its connections: nothing ever returns."""

    async def connection(self):  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()


class SlowToCancelDatabase(Database):
    """Frozen, and slow to give up: psycopg's cancel request to a frozen server takes seconds itself."""

    async def connection(self):  # type: ignore[no-untyped-def]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(3)  # the unwinding the probe must not wait for
            raise


def probe_db_health(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, kind: type[Database]
) -> tuple[Any, float]:
    """/db-health on a database of `kind`, with DB_POOL_TIMEOUT_SECONDS=1: (response, seconds)."""

    async def frozen() -> AsyncIterator[Database]:
        yield kind(database.create_async_db_engine("sqlite://"))

    app.dependency_overrides[request_database] = frozen
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    try:
        started = time.monotonic()
        response = client.get("/db-health")
        return response, time.monotonic() - started
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_db_health_on_a_frozen_database_is_503_within_the_pool_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response, waited = probe_db_health(client, monkeypatch, FrozenDatabase)
    assert response.status_code == 503
    assert response.json()["status"] == "unreachable"
    assert 1 <= waited < 5


def test_db_health_does_not_wait_for_a_frozen_check_to_unwind(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response, waited = probe_db_health(client, monkeypatch, SlowToCancelDatabase)
    assert response.status_code == 503
    assert response.json()["status"] == "unreachable"
    assert 1 <= waited < 2.5
