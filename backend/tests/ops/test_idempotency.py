"""Idempotency-Key on POST /tickets/ and POST /tickets/{id}/comments: retries never write twice."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from app import crud
from app.api import idempotency
from app.core.clock import utcnow
from app.core.config import get_settings
from app.crud import ticket_writes
from app.models import (
    Comment,
    IdempotencyKey,
    IdempotencyState,
    Ticket,
    TicketCreate,
    TicketEvent,
    User,
)
from tests.conftest import RunDb
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]
TICKETS = f"{API}/tickets/"


def with_key(headers: Headers, key: str = "6c1f5a0e-retry-me") -> Headers:
    return {**headers, "Idempotency-Key": key}


def count(session: Session, model: Any, *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def key_row(session: Session, user: User, key: str = "6c1f5a0e-retry-me") -> IdempotencyKey | None:
    return session.get(IdempotencyKey, (user.id, key))


def test_a_retry_gets_the_first_response_and_writes_nothing(
    client: TestClient, session: Session, as_agent: Headers, agent: User
) -> None:
    body = {"title": "Printer on fire", "priority": "urgent"}
    first = client.post(TICKETS, json=body, headers=with_key(as_agent))
    tickets, events = count(session, Ticket), count(session, TicketEvent)
    again = client.post(TICKETS, json=body, headers=with_key(as_agent))

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert (count(session, Ticket), count(session, TicketEvent)) == (tickets, events)
    row = key_row(session, agent)
    assert row is not None and row.state == IdempotencyState.completed and row.response_status == 201


def test_a_key_is_completed_in_the_transaction_of_the_write(
    client: TestClient, session: Session, as_agent: Headers, agent: User
) -> None:
    response = client.post(TICKETS, json={"title": "Atomic"}, headers=with_key(as_agent))
    row = key_row(session, agent)
    assert row is not None and row.response_body is not None
    assert row.fingerprint == idempotency.fingerprint("POST", TICKETS, TicketCreate(title="Atomic"))
    assert Ticket.model_validate_json(row.response_body).id == response.json()["id"]
    ttl = timedelta(hours=get_settings().IDEMPOTENCY_TTL_HOURS)
    assert row.expires_at - row.created_at == ttl == timedelta(hours=24)


def test_the_same_key_on_another_request_is_422(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    client.post(TICKETS, json={"title": "First"}, headers=with_key(as_agent))
    tickets = count(session, Ticket)
    response = client.post(TICKETS, json={"title": "Second"}, headers=with_key(as_agent))
    assert response.status_code == 422
    body = error_body(response)
    assert body["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert body["detail"][0]["type"] == "idempotency_key_reused"
    ticket = create_ticket(client, as_agent)
    on_a_comment = client.post(
        f"{TICKETS}{ticket['id']}/comments", json={"body": "First"}, headers=with_key(as_agent)
    )
    assert on_a_comment.status_code == 422  # same key, other path
    assert count(session, Ticket) == tickets + 1


def test_the_same_key_and_body_on_another_path_is_422_not_a_replay(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    # USAGE.md, "Safe retries": a key is scoped by method and path as well as by user and body.
    first_ticket, other_ticket = create_ticket(client, as_agent), create_ticket(client, as_agent)
    body = {"body": "Rebooted the switch"}
    first = client.post(f"{TICKETS}{first_ticket['id']}/comments", json=body, headers=with_key(as_agent))
    assert first.status_code == 201
    comments = count(session, Comment)
    elsewhere = client.post(f"{TICKETS}{other_ticket['id']}/comments", json=body, headers=with_key(as_agent))
    assert elsewhere.status_code == 422, elsewhere.text
    assert "Idempotent-Replayed" not in elsewhere.headers
    assert error_body(elsewhere)["detail"] == [
        {
            "type": "idempotency_key_reused",
            "loc": ["header", "Idempotency-Key"],
            "msg": idempotency.REUSED,
            "input": "6c1f5a0e-retry-me",
        }
    ]
    assert count(session, Comment) == comments
    assert count(session, Comment, col(Comment.ticket_id) == other_ticket["id"]) == 0


def test_a_fingerprint_names_method_path_and_body() -> None:
    body = TicketCreate(title="Same")
    prints = {
        idempotency.fingerprint("POST", TICKETS, body),
        idempotency.fingerprint("PUT", TICKETS, body),
        idempotency.fingerprint("POST", f"{TICKETS}1/comments", body),
        idempotency.fingerprint("POST", TICKETS, TicketCreate(title="Other")),
    }
    assert len(prints) == 4
    # The body as canonical JSON: the order its keys were sent in does not matter.
    one = TicketCreate.model_validate({"title": "x", "description": "d"})
    other = TicketCreate.model_validate({"description": "d", "title": "x"})
    assert idempotency.fingerprint("POST", TICKETS, one) == idempotency.fingerprint("POST", TICKETS, other)


def test_keys_belong_to_their_user(
    client: TestClient, session: Session, as_agent: Headers, as_admin: Headers
) -> None:
    body = {"title": "Same key, two people"}
    mine = client.post(TICKETS, json=body, headers=with_key(as_agent))
    theirs = client.post(TICKETS, json=body, headers=with_key(as_admin))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


def claim(run_db: RunDb, user: User, body: TicketCreate, *, age: timedelta = timedelta(0)) -> None:
    assert user.id is not None
    run_db(
        lambda db: crud.claim_idempotency_key(
            db=db,
            user_id=user.id,
            key="6c1f5a0e-retry-me",
            fingerprint=idempotency.fingerprint("POST", TICKETS, body),
            now=utcnow() - age,
            ttl=timedelta(hours=24),
            abandoned_after=idempotency.ABANDONED_AFTER,
        )
    )


def test_a_key_whose_request_is_still_running_is_409(
    client: TestClient, session: Session, as_agent: Headers, agent: User, run_db: RunDb
) -> None:
    claim(run_db, agent, TicketCreate(title="Slow"))  # as if another request held it right now
    tickets = count(session, Ticket)
    response = client.post(TICKETS, json={"title": "Slow"}, headers=with_key(as_agent))
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert error_body(response) == {"detail": idempotency.IN_PROGRESS}
    assert count(session, Ticket) == tickets


def test_a_key_left_by_a_dead_request_is_taken_over(
    client: TestClient, session: Session, as_agent: Headers, agent: User, run_db: RunDb
) -> None:
    claim(
        run_db, agent, TicketCreate(title="Crashed"), age=idempotency.ABANDONED_AFTER + timedelta(seconds=1)
    )
    response = client.post(TICKETS, json={"title": "Crashed"}, headers=with_key(as_agent))
    assert response.status_code == 201
    row = key_row(session, agent)
    assert row is not None and row.state == IdempotencyState.completed


def test_an_expired_key_is_free_again_and_expired_keys_are_purged(
    client: TestClient, session: Session, as_agent: Headers, agent: User, as_admin: Headers, admin: User
) -> None:
    first = client.post(TICKETS, json={"title": "Old"}, headers=with_key(as_agent))
    client.post(TICKETS, json={"title": "Someone else's"}, headers=with_key(as_admin, "admin-key"))
    for row in session.exec(select(IdempotencyKey)).all():
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    session.commit()
    again = client.post(TICKETS, json={"title": "Old"}, headers=with_key(as_agent))
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in again.headers
    assert key_row(session, admin, "admin-key") is None  # purged on the way


def test_a_failed_write_releases_the_key(
    client: TestClient, session: Session, as_reporter: Headers, reporter: User, agent: User
) -> None:
    refused = client.post(
        TICKETS, json={"title": "Mine", "assignee_id": agent.id}, headers=with_key(as_reporter)
    )
    assert refused.status_code == 403
    assert key_row(session, reporter) is None
    corrected = client.post(TICKETS, json={"title": "Mine"}, headers=with_key(as_reporter))
    assert corrected.status_code == 201


def test_a_write_lost_to_the_database_releases_the_key(
    client: TestClient, session: Session, as_agent: Headers, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outage(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        patch.setattr(ticket_writes.TicketTransaction, "flush", outage)
        lost = client.post(TICKETS, json={"title": "During the outage"}, headers=with_key(as_agent))
    assert lost.status_code == 503
    assert key_row(session, agent) is None
    retried = client.post(TICKETS, json={"title": "During the outage"}, headers=with_key(as_agent))
    assert retried.status_code == 201
    assert count(session, Ticket, col(Ticket.title) == "During the outage") == 1


def test_comment_retries_are_replayed(
    client: TestClient, session: Session, as_reporter: Headers, reporter: User
) -> None:
    ticket = create_ticket(client, as_reporter)
    url = f"{TICKETS}{ticket['id']}/comments"
    first = client.post(url, json={"body": "Any news?"}, headers=with_key(as_reporter))
    again = client.post(url, json={"body": "Any news?"}, headers=with_key(as_reporter))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(session, Comment, col(Comment.ticket_id) == ticket["id"]) == 1
    commented = col(TicketEvent.action) == "commented"
    assert count(session, TicketEvent, col(TicketEvent.ticket_id) == ticket["id"], commented) == 1
    refused = client.post(
        f"{TICKETS}999999/comments", json={"body": "x"}, headers=with_key(as_reporter, "k2")
    )
    assert refused.status_code == 404
    assert key_row(session, reporter, "k2") is None


def test_no_key_means_no_row(client: TestClient, session: Session, as_agent: Headers) -> None:
    create_ticket(client, as_agent)
    create_ticket(client, as_agent)
    assert count(session, IdempotencyKey) == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "naïve"])
def test_malformed_keys_are_422(client: TestClient, session: Session, as_agent: Headers, key: str) -> None:
    tickets = count(session, Ticket)
    headers: dict[str, Any] = {**as_agent, "Idempotency-Key": key.encode()}  # bytes: sent as UTF-8
    response = client.post(TICKETS, json={"title": "x"}, headers=headers)
    assert response.status_code == 422
    assert error_body(response)["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert count(session, Ticket) == tickets


def test_a_255_character_key_is_fine(client: TestClient, as_agent: Headers) -> None:
    response = client.post(TICKETS, json={"title": "x"}, headers=with_key(as_agent, "k" * 255))
    assert response.status_code == 201


def test_the_header_is_documented(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    for path in ("/api/v1/tickets/", "/api/v1/tickets/{ticket_id}/comments"):
        operation = schema["paths"][path]["post"]
        names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert "Idempotency-Key" in names
        assert {"409", "422"} <= set(operation["responses"])
