"""Request size limit (413) and CORS from the settings."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app.core.config import get_settings
from app.main import create_app
from app.models import Ticket
from tests.utils import API, error_body

Headers = dict[str, str]
LIMIT = get_settings().MAX_BODY_BYTES
TOO_LARGE = {"detail": f"Request body too large (limit {LIMIT} bytes)"}


def tickets(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Ticket)).one()


def test_the_default_limit_is_one_mebibyte() -> None:
    assert LIMIT == 1024 * 1024


def test_a_declared_length_over_the_limit_is_refused_unread(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    before = tickets(session)
    body = b'{"title": "' + b"x" * LIMIT + b'"}'
    response = client.post(
        f"{API}/tickets/", content=body, headers={**as_agent, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_body(response) == TOO_LARGE
    assert tickets(session) == before


def test_a_streamed_body_is_counted_and_refused_past_the_limit(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        yield b'{"title": "'
        while sent <= LIMIT:
            sent += 64 * 1024
            yield b"x" * 64 * 1024
        yield b'"}'

    before = tickets(session)
    response = client.post(
        f"{API}/tickets/", content=chunks(), headers={**as_agent, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_body(response) == TOO_LARGE
    assert tickets(session) == before


def test_a_body_under_the_limit_is_served(client: TestClient, as_agent: Headers) -> None:
    description = "y" * 9_000
    response = client.post(
        f"{API}/tickets/", json={"title": "Long", "description": description}, headers=as_agent
    )
    assert response.status_code == 201


def test_the_limit_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    get_settings.cache_clear()
    try:
        small = TestClient(create_app())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    response = small.post(f"{API}/tickets/", json={"title": "x" * 3000})
    assert response.status_code == 413
    assert error_body(response) == {"detail": "Request body too large (limit 2048 bytes)"}
    assert small.post(f"{API}/tickets/", json={"title": "x" * 1000}).status_code == 401  # under: served


# --- CORS -------------------------------------------------------------------------------------------


def test_an_allowed_origin_gets_the_cors_headers(client: TestClient) -> None:
    origin = get_settings().FRONTEND_HOST
    response = client.get("/ping", headers={"Origin": origin})
    assert response.headers["access-control-allow-origin"] == origin
    exposed = response.headers["access-control-expose-headers"]
    assert {"X-Request-ID", "ETag", "Location", "Retry-After"} <= {h.strip() for h in exposed.split(",")}
    preflight = client.options(
        f"{API}/tickets/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "X-Request-ID" in preflight.headers


def test_a_disallowed_origin_gets_none(client: TestClient) -> None:
    response = client.get("/ping", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        f"{API}/tickets/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


def test_errors_raised_inside_carry_cors_headers_too(client: TestClient) -> None:
    origin = get_settings().FRONTEND_HOST
    response = client.get(f"{API}/tickets/", headers={"Origin": origin})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == origin
