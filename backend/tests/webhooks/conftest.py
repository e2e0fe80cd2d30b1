"""A real HTTP receiver (pytest-httpserver) on 127.0.0.1, allowed by WEBHOOKS_ALLOW_PRIVATE_NETWORKS,
and the worker's webhook job run in the test's loop."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer

from app.core.config import get_settings
from app.crud import webhook_delivery
from tests.conftest import RunDb
from tests.utils import API

Headers = dict[str, str]


@pytest.fixture
def receiver(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    monkeypatch.setattr(get_settings(), "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", True)
    yield httpserver
    httpserver.clear()


def url_of(server: HTTPServer, path: str = "/hook") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


@pytest.fixture
def deliver(run_db: RunDb) -> Callable[[], int]:
    """One pass of the worker's webhook job: how many attempts it made."""

    def run() -> int:
        done: int = run_db(lambda db: webhook_delivery.delivery_pass(db, batch=100))
        return done

    return run


def register(client: TestClient, headers: Headers, url: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/webhooks/", json={"url": url, **body}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())
