from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import User
from tests.api.test_tickets import counts
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]


def test_comment_is_stored_with_author_and_event(
    client: TestClient, as_reporter: Headers, reporter: User
) -> None:
    ticket = create_ticket(client, as_reporter)
    response = client.post(
        f"{API}/tickets/{ticket['id']}/comments", json={"body": "  Still broken  "}, headers=as_reporter
    )
    assert response.status_code == 201
    comment = response.json()
    assert comment["body"] == "Still broken"
    assert (comment["ticket_id"], comment["author_id"], comment["internal"]) == (
        ticket["id"],
        reporter.id,
        False,
    )
    listing = client.get(f"{API}/tickets/{ticket['id']}/comments", headers=as_reporter).json()
    assert listing == {"data": [comment], "count": 1}
    events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_reporter).json()["data"]
    assert (events[-1]["action"], events[-1]["new_value"], events[-1]["actor_id"]) == (
        "commented",
        str(comment["id"]),
        reporter.id,
    )
    after = client.get(f"{API}/tickets/{ticket['id']}", headers=as_reporter).json()
    assert after["version"] == ticket["version"]  # comments do not change the ticket


def test_internal_notes_are_hidden_from_reporters(
    client: TestClient, as_reporter: Headers, as_agent: Headers
) -> None:
    ticket = create_ticket(client, as_reporter)
    url = f"{API}/tickets/{ticket['id']}/comments"
    public = client.post(url, json={"body": "We are on it"}, headers=as_agent).json()
    note = client.post(url, json={"body": "Probably the firewall", "internal": True}, headers=as_agent).json()
    assert note["internal"] is True
    agent_view = client.get(url, headers=as_agent).json()
    assert [c["id"] for c in agent_view["data"]] == [public["id"], note["id"]]
    reporter_view = client.get(url, headers=as_reporter).json()
    assert reporter_view == {"data": [public], "count": 1}
    reporter_events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_reporter).json()
    agent_events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()
    assert "noted" not in {e["action"] for e in reporter_events["data"]}
    assert agent_events["count"] == reporter_events["count"] + 1


def test_reporters_cannot_write_internal_notes(
    client: TestClient, session: Session, as_reporter: Headers
) -> None:
    ticket = create_ticket(client, as_reporter)
    before = counts(session)
    response = client.post(
        f"{API}/tickets/{ticket['id']}/comments", json={"body": "psst", "internal": True}, headers=as_reporter
    )
    assert response.status_code == 403
    assert error_body(response) == {"detail": "reporters may not write internal notes"}
    assert counts(session) == before


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 10_001},
        {"body": "a\x00"},
        {},
        {"body": "ok", "author_id": 1},
    ],
)
def test_bad_comments_are_422(
    client: TestClient, session: Session, as_agent: Headers, body: dict[str, Any]
) -> None:
    ticket = create_ticket(client, as_agent)
    before = counts(session)
    response = client.post(f"{API}/tickets/{ticket['id']}/comments", json=body, headers=as_agent)
    assert response.status_code == 422
    assert counts(session) == before


def test_comment_on_missing_ticket_is_404(client: TestClient, as_agent: Headers) -> None:
    response = client.post(f"{API}/tickets/777777/comments", json={"body": "hello"}, headers=as_agent)
    assert response.status_code == 404
    assert error_body(response) == {"detail": "Ticket not found"}


def test_comments_paginate(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    url = f"{API}/tickets/{ticket['id']}/comments"
    ids = [client.post(url, json={"body": f"c{n}"}, headers=as_agent).json()["id"] for n in range(5)]
    page = client.get(f"{url}?offset=2&limit=2", headers=as_agent).json()
    assert [c["id"] for c in page["data"]] == ids[2:4]
    assert page["count"] == 5
