"""Logs: JSON lines outside local, one access line per request, no secrets."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.logging import ConsoleFormatter, JsonFormatter, configure_logging, log_format
from app.core.request_context import request_context, set_user_id
from app.models import User
from tests.utils import API

Headers = dict[str, str]


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("app.test")
    return logger.makeRecord(
        "app.test", logging.WARNING, __file__, 1, message, args or ("world",), None, extra=extra
    )


def test_json_lines_have_the_documented_fields() -> None:
    with request_context("req-9", "GET", "/x"):
        set_user_id(7)
        line = JsonFormatter().format(record(status=201, duration_ms=1.5))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "hello world"
    assert (entry["level"], entry["logger"], entry["request_id"], entry["user_id"]) == (
        "WARNING",
        "app.test",
        "req-9",
        7,
    )
    assert (entry["status"], entry["duration_ms"]) == (201, 1.5)
    assert entry["timestamp"].endswith("+00:00") and "T" in entry["timestamp"]


def test_json_lines_carry_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.getLogger("app.test").makeRecord(
            "app.test", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    entry = json.loads(JsonFormatter().format(rec))
    assert "Traceback" in entry["exception"] and "ValueError: boom" in entry["exception"]


def test_console_lines_are_readable_and_cannot_be_forged() -> None:
    line = ConsoleFormatter().format(record("GET %s", "/a\nFAKE LINE"))
    assert line.count("\n") == 0 and "GET /a\\nFAKE LINE" in line


@pytest.mark.parametrize(
    ("environment", "setting", "expected"),
    [
        ("local", "auto", "console"),
        ("staging", "auto", "json"),
        ("production", "auto", "json"),
        ("local", "json", "json"),
    ],
)
def test_log_format_follows_the_environment(environment: str, setting: str, expected: str) -> None:
    settings = Settings(
        ENVIRONMENT=environment,  # type: ignore[arg-type]
        LOG_FORMAT=setting,  # type: ignore[arg-type]
        SECRET_KEY="x" * 40,
        FIRST_SUPERUSER_PASSWORD="a-real-password",
    )
    assert log_format(settings) == expected


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the app's handler writes, as JSON lines (restored to the test configuration after)."""
    configure_logging("INFO", "json")
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "incident_desk", False)]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
    configure_logging("INFO", "console")


def test_one_access_line_per_request_with_the_request_fields(
    client: TestClient, json_log: io.StringIO, as_agent: Headers, agent: User
) -> None:
    response = client.get(f"{API}/tickets/424242", headers={**as_agent, "X-Request-ID": "one-line"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "app.access"]
    assert len(access) == 1
    [entry] = access
    assert entry["request_id"] == "one-line" == response.headers["X-Request-ID"]
    assert (entry["method"], entry["path"], entry["route"]) == (
        "GET",
        "/api/v1/tickets/424242",
        "/api/v1/tickets/{ticket_id}",
    )
    assert entry["status"] == 404 and entry["user_id"] == agent.id
    assert isinstance(entry["duration_ms"], float)
    assert not [e for e in lines if e["logger"].startswith("uvicorn")]


def test_no_secret_reaches_the_logs(client: TestClient, json_log: io.StringIO, as_agent: Headers) -> None:
    token = as_agent["Authorization"].removeprefix("Bearer ")
    client.post(
        f"{API}/login/access-token", data={"username": "who@example.com", "password": "hunter2-secret"}
    )
    client.post(f"{API}/tickets/", json={"title": "body text stays out"}, headers=as_agent)
    client.get(f"{API}/tickets/?q=private-query", headers=as_agent)
    # Only the server's lines: the test client (httpx) logs the URLs it requests itself.
    server = [line for line in json_log.getvalue().splitlines() if '"logger": "httpx' not in line]
    text = "\n".join(server)
    assert text.count('"logger": "app.access"') == 3
    for secret in (token, "hunter2-secret", "who@example.com", "body text stays out", "private-query"):
        assert secret not in text


def test_configuring_twice_keeps_one_handler_and_silences_uvicorns_access_log() -> None:
    configure_logging("INFO", "console")
    configure_logging("INFO", "console")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "incident_desk", False)]
    assert len(ours) == 1
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("uvicorn.error").propagate and not logging.getLogger("uvicorn").handlers
