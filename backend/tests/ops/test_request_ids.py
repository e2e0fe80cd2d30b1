"""X-Request-ID: taken or made, returned on every response, in every error body, log line and event."""

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from app import crud
from app.core.config import get_settings
from app.core.errors import NotFound
from app.core.request_context import request_context
from app.crud import users
from app.main import create_app
from app.models import Team, TicketCreate, TicketEvent, TicketUpdate, User
from tests.conftest import RunDb
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]
GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_well_formed_request_id_is_returned_as_is(client: TestClient) -> None:
    for value in ("abc-123", "a" * 128, "trace:0af7651916cd43dd.b7ad6b7169203331_1"):
        response = client.get("/ping", headers={"X-Request-ID": value})
        assert response.headers["X-Request-ID"] == value


@pytest.mark.parametrize("value", ["", "a" * 129, "has space", "semi;colon", "newline\\n", "é"])
def test_a_malformed_request_id_is_replaced(client: TestClient, value: str) -> None:
    response = client.get("/ping", headers={"X-Request-ID": value.encode()})  # type: ignore[dict-item]
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_every_response_gets_a_fresh_id(client: TestClient) -> None:
    ids = {client.get(path).headers["X-Request-ID"] for path in ("/ping", "/ping", "/nowhere", "/metrics")}
    assert len(ids) == 4 and all(GENERATED.fullmatch(i) for i in ids)


# --- Every kind of error carries the request id -----------------------------------------------------


def raising(exc: Exception) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return fail


def unauthorized(client: TestClient, **_: Any) -> Any:
    return client.get(f"{API}/tickets/")


def forbidden(client: TestClient, as_reporter: Headers, **_: Any) -> Any:
    return client.get(f"{API}/users/", headers=as_reporter)


def not_found(client: TestClient, as_agent: Headers, **_: Any) -> Any:
    return client.get(f"{API}/tickets/999999", headers=as_agent)


def no_such_route(client: TestClient, **_: Any) -> Any:
    return client.get("/no/such/route")


def method_not_allowed(client: TestClient, **_: Any) -> Any:
    return client.put("/ping")


def conflict(client: TestClient, as_admin: Headers, session: Session, **_: Any) -> Any:
    session.add(Team(name="Network"))
    session.commit()
    return client.post(f"{API}/teams/", json={"name": "Network"}, headers=as_admin)


def stale(client: TestClient, as_agent: Headers, **_: Any) -> Any:
    ticket = create_ticket(client, as_agent)
    url = f"{API}/tickets/{ticket['id']}"
    client.patch(url, json={"title": "Moved on"}, headers=as_agent)
    return client.patch(url, json={"title": "Late"}, headers={**as_agent, "If-Match": '"1"'})


def too_large(client: TestClient, as_agent: Headers, **_: Any) -> Any:
    return client.post(f"{API}/tickets/", json={"title": "x" * 2_000_000}, headers=as_agent)


def invalid(client: TestClient, as_agent: Headers, **_: Any) -> Any:
    return client.post(f"{API}/tickets/", json={"title": ""}, headers=as_agent)


def throttled(client: TestClient, monkeypatch: pytest.MonkeyPatch, **_: Any) -> Any:
    async def flooded(**kw: Any) -> dict[str, tuple[int, datetime]]:
        return dict.fromkeys(kw["keys"], (10**6, kw["now"]))

    async def settled(**_: Any) -> None:
        return None

    monkeypatch.setattr(users, "count_login_attempts", flooded)
    monkeypatch.setattr(users, "settle_login_attempts", settled)
    return client.post(f"{API}/login/access-token", data={"username": "a@example.com", "password": "x"})


def crashed(client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch, **_: Any) -> Any:
    monkeypatch.setattr(crud, "get_ticket", raising(RuntimeError("secret internals")))
    return client.get(f"{API}/tickets/1", headers=as_agent)


def database_down(client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch, **_: Any) -> Any:
    monkeypatch.setattr(crud, "get_ticket", raising(OperationalError("SELECT", {}, Exception("refused"))))
    return client.get(f"{API}/tickets/1", headers=as_agent)


ERRORS = {
    401: unauthorized,
    403: forbidden,
    404: not_found,
    405: method_not_allowed,
    409: conflict,
    412: stale,
    413: too_large,
    422: invalid,
    429: throttled,
    500: crashed,
    503: database_down,
}


@pytest.mark.parametrize("status", ERRORS)
@pytest.mark.parametrize("sent", [None, "client-chosen-id-42"])
def test_every_error_body_has_detail_and_the_request_id(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    as_agent: Headers,
    as_reporter: Headers,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    sent: str | None,
) -> None:
    if sent is not None:
        client.headers["X-Request-ID"] = sent
    response = ERRORS[status](
        client=client,
        session=session,
        as_admin=as_admin,
        as_agent=as_agent,
        as_reporter=as_reporter,
        monkeypatch=monkeypatch,
    )
    assert response.status_code == status
    body = response.json()
    assert set(body) >= {"detail", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    if sent is not None:
        assert body["request_id"] == sent


def test_no_such_route_is_404_with_the_error_shape(client: TestClient) -> None:
    response = no_such_route(client)
    assert (response.status_code, error_body(response)) == (404, {"detail": "Not Found"})


def test_an_unhandled_error_is_logged_with_its_traceback_and_answers_only_the_id(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.errors"):
        response = crashed(client=client, as_agent=as_agent, monkeypatch=monkeypatch)
    assert response.status_code == 500
    assert error_body(response) == {"detail": "Internal server error"}
    assert "secret internals" not in response.text
    [record] = [r for r in caplog.records if r.name == "app.errors"]
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])
    assert getattr(record, "request_id", None) == response.headers["X-Request-ID"]


def test_a_database_outage_is_503_with_retry_after(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = database_down(client=client, as_agent=as_agent, monkeypatch=monkeypatch)
    assert error_body(response) == {"detail": "Database unavailable, try again shortly"}
    assert response.headers["Retry-After"] == "2"


class LockTimeout(Exception):
    sqlstate = "55P03"


def test_the_503_log_line_names_the_drivers_sqlstate_and_message(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator tells a lock timeout from a deadlock or a lost server from the log alone."""
    error = OperationalError(
        "UPDATE", {}, LockTimeout("canceling statement due to lock timeout\nCONTEXT: ...")
    )
    monkeypatch.setattr(crud, "get_ticket", raising(error))
    with caplog.at_level(logging.WARNING, logger="app.errors"):
        response = client.get(f"{API}/tickets/1", headers=as_agent)
    assert response.status_code == 503
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.errors"]
    assert (
        line
        == "database unavailable: OperationalError: SQLSTATE 55P03: canceling statement due to lock timeout"
    )


def test_validation_errors_keep_fastapis_list_shape(client: TestClient, as_agent: Headers) -> None:
    body = error_body(invalid(client=client, as_agent=as_agent))
    assert body["detail"][0]["loc"] == ["body", "title"]


# --- Audit events and log lines -------------------------------------------------------------------


def test_audit_events_record_the_request_id_that_made_them(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    created = client.post(
        f"{API}/tickets/", json={"title": "Traced"}, headers={**as_agent, "X-Request-ID": "req-1"}
    )
    ticket_id = created.json()["id"]
    client.patch(
        f"{API}/tickets/{ticket_id}", json={"title": "Edited"}, headers={**as_agent, "X-Request-ID": "req-2"}
    )
    client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"body": "Hi"},
        headers={**as_agent, "X-Request-ID": "req-3"},
    )
    events = client.get(f"{API}/tickets/{ticket_id}/events", headers=as_agent).json()["data"]
    assert {(e["action"], e["request_id"]) for e in events} == {
        ("created", "req-1"),
        ("updated", "req-2"),
        ("commented", "req-3"),
    }


def test_events_written_outside_a_request_have_no_request_id(
    session: Session, agent: User, run_db: RunDb
) -> None:
    ticket = run_db(
        lambda db: crud.create_ticket(db=db, ticket_in=TicketCreate(title="From the CLI"), reporter=agent)
    )
    assert ticket.id is not None
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    assert {e.request_id for e in session.exec(stmt).all()} == {None}
    with request_context("script-7"):
        edit = TicketUpdate(title="Edited by a script")
        run_db(
            lambda db: crud.update_ticket(
                db=db, ticket_id=ticket.id, ticket_in=edit, actor=agent, expected=None
            )
        )
    updated = session.exec(stmt.where(TicketEvent.action == "updated")).one()
    assert updated.request_id == "script-7"


def test_every_log_line_of_a_request_names_it(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def noisy(**kwargs: Any) -> Any:
        logging.getLogger("app.crud").warning("looking for ticket %s", kwargs["ticket_id"])
        raise NotFound("Ticket not found")

    monkeypatch.setattr(crud, "get_ticket", noisy)
    with caplog.at_level(logging.INFO):
        response = client.get(f"{API}/tickets/5", headers={**as_agent, "X-Request-ID": "trace-me"})
    mine = [r for r in caplog.records if r.name.startswith("app.")]
    assert {r.name for r in mine} == {"app.crud", "app.access"}
    assert (
        {getattr(r, "request_id", None) for r in mine} == {"trace-me"} == {response.headers["X-Request-ID"]}
    )


def test_the_schema_documents_the_error_body(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    assert set(schema["components"]["schemas"]["ApiError"]["required"]) == {"detail", "request_id"}
    read = schema["paths"]["/api/v1/tickets/{ticket_id}"]["get"]["responses"]
    assert {"401", "404", "500", "503"} <= set(read)
    assert read["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
    create = schema["paths"]["/api/v1/tickets/"]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "422", "500", "503"} <= set(create)
    assert "503" not in schema["paths"]["/health"]["get"]["responses"]  # touches no database


def test_a_request_past_the_deadline_answers_503_and_its_work_is_cancelled(
    client: TestClient, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that stops answering without closing its connections: no timeout of its own fires,
    so API_REQUEST_TIMEOUT_SECONDS answers, and the request's work is cancelled, not left waiting."""
    cancelled = threading.Event()

    async def hangs(**_: Any) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    monkeypatch.setattr(crud, "get_ticket", hangs)
    monkeypatch.setenv("API_REQUEST_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    try:
        impatient = TestClient(create_app())
    finally:
        monkeypatch.delenv("API_REQUEST_TIMEOUT_SECONDS")
        get_settings.cache_clear()
    started = time.monotonic()
    response = impatient.get(f"{API}/tickets/1", headers=as_agent)
    waited = time.monotonic() - started
    assert response.status_code == 503
    assert error_body(response) == {"detail": "Database unavailable, try again shortly"}
    assert response.headers["Retry-After"] == "5"
    assert response.headers["X-Request-ID"] == response.json()["request_id"]
    assert 1 <= waited < 4
    assert cancelled.wait(timeout=5)
    assert impatient.get(f"{API}/users/me", headers=as_agent).json()["id"] > 0  # still serving
