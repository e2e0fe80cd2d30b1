"""The audit trail: complete enough to rebuild a ticket, append-only, written with its change."""

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app.crud import ticket_writes
from app.models import EventAction, TicketEvent, User
from tests.api.test_tickets import counts
from tests.utils import API, MAX_PAGES, create_ticket, move

Headers = dict[str, str]
INT_FIELDS = {"reporter_id", "assignee_id", "team_id"}


def replay(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A ticket rebuilt from its events alone."""
    state: dict[str, Any] = {"reopen_count": 0, "resolved_at": None, "closed_at": None, "resolution": None}
    for event in events:
        field, value = event["field"], event["new_value"]
        if field is not None:
            state[field] = int(value) if field in INT_FIELDS and value is not None else value
        if event["action"] == "created" and field == "title":
            state["created_at"] = event["created_at"]
        if event["action"] == "status_changed":
            if (event["old_value"], value) == ("resolved", "in_progress"):
                state["reopen_count"] += 1
                state["resolved_at"] = None
            if value == "resolved":
                state["resolved_at"] = event["created_at"]
            if value in ("closed", "cancelled"):
                state["closed_at"] = event["created_at"]
        state["version"] = event["ticket_version"]
        if field is not None or event["action"] == "status_changed":
            state["updated_at"] = event["created_at"]
    return state


def all_events(client: TestClient, headers: Headers, ticket_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = client.get(
            f"{API}/tickets/{ticket_id}/events?offset={len(events)}&limit=7", headers=headers
        ).json()
        events += page["data"]
        if len(events) >= page["count"]:
            return events
    pytest.fail(f"the events of ticket {ticket_id} did not end within {MAX_PAGES} pages")


def same_instant(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


def test_a_ticket_can_be_rebuilt_from_its_events(
    client: TestClient, as_agent: Headers, agent: User, agent2: User, make_team: Any
) -> None:
    team = make_team()
    ticket = create_ticket(client, as_agent, title="DNS resolver is slow", description="Lookups take 5 s")
    tid = ticket["id"]
    url = f"{API}/tickets/{tid}"
    assert (
        client.patch(url, json={"priority": "high", "team_id": team.id}, headers=as_agent).status_code == 200
    )
    assert move(client, as_agent, tid, "in_progress", assignee_id=agent.id).status_code == 200
    assert move(client, as_agent, tid, "on_hold", reason="Vendor ticket opened").status_code == 200
    client.post(f"{url}/comments", json={"body": "Vendor says Friday"}, headers=as_agent)
    assert move(client, as_agent, tid, "in_progress").status_code == 200
    assert (
        client.patch(url, json={"assignee_id": agent2.id, "description": None}, headers=as_agent).status_code
        == 200
    )
    assert move(client, as_agent, tid, "resolved", resolution="Replaced the resolver").status_code == 200
    assert move(client, as_agent, tid, "in_progress", reason="Slow again").status_code == 200
    assert move(client, as_agent, tid, "resolved", resolution="Tuned the cache").status_code == 200
    assert move(client, as_agent, tid, "closed").status_code == 200

    stored = client.get(url, headers=as_agent).json()
    events = all_events(client, as_agent, tid)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    rebuilt = replay(events)
    for field in ("title", "description", "priority", "status", "reporter_id", "assignee_id", "team_id",
                  "resolution", "reopen_count", "version"):  # fmt: skip
        assert rebuilt[field] == stored[field], field
    for field in ("created_at", "updated_at", "resolved_at", "closed_at"):
        assert same_instant(rebuilt[field], stored[field]), field
    assert stored["reopen_count"] == 1 and stored["version"] == 10


def test_events_are_paginated_oldest_first(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent, description="d")
    for n in range(3):
        client.patch(f"{API}/tickets/{ticket['id']}", json={"title": f"t{n}"}, headers=as_agent)
    page = client.get(f"{API}/tickets/{ticket['id']}/events?limit=2&offset=1", headers=as_agent).json()
    everything = all_events(client, as_agent, ticket["id"])
    assert (
        page["count"] == len(everything) == 8
    )  # 5 created (title, description, priority, status, reporter) + 3
    assert page["data"] == everything[1:3]
    assert client.get(f"{API}/tickets/{ticket['id']}/events?limit=101", headers=as_agent).status_code == 422


def test_events_are_listed_by_id_whatever_order_they_are_stored_in(
    session: Session, client: TestClient, as_agent: Headers, agent: User
) -> None:
    ticket = create_ticket(client, as_agent)
    created = [e["id"] for e in all_events(client, as_agent, ticket["id"])]
    high = 1_900_000_000  # explicit ids, stored newest first
    for event_id in (high + 1, high):
        session.add(
            TicketEvent(
                id=event_id,
                ticket_id=ticket["id"],
                actor_id=agent.id,
                action=EventAction.noted,
                ticket_version=1,
            )
        )
        session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # Rows in storage order unless the query orders them (SQLite's plan reads its (ticket_id, id)
        # index, so there the order is the index's either way).
        session.execute(text("SET LOCAL enable_indexscan = off"))
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
    listed = client.get(f"{API}/tickets/{ticket['id']}/events?limit=100", headers=as_agent).json()
    assert [e["id"] for e in listed["data"]] == [*created, high, high + 1]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ticket_events SET new_value = 'forged'", "DELETE FROM ticket_events"],
)
def test_the_database_refuses_to_edit_or_delete_events(
    client: TestClient, session: Session, as_agent: Headers, statement: str
) -> None:
    create_ticket(client, as_agent)
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.exec(text(statement))


def test_a_change_is_never_stored_without_its_events(
    client: TestClient, session: Session, as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = create_ticket(client, as_agent, title="Before")
    before = counts(session)
    real_record = ticket_writes.Change.record

    def broken_record(self: ticket_writes.Change, *args: Any, **kwargs: Any) -> None:
        real_record(self, *args, **kwargs)
        self.events[-1].ticket_id = 2_000_000_000  # no such ticket: the event insert must fail

    monkeypatch.setattr(ticket_writes.Change, "record", broken_record)
    failing = TestClient(client.app, raise_server_exceptions=False)
    response = failing.patch(f"{API}/tickets/{ticket['id']}", json={"title": "After"}, headers=as_agent)
    assert response.status_code == 500
    monkeypatch.undo()
    assert counts(session) == before
    assert client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent).json() == ticket


def test_events_name_the_acting_user(
    client: TestClient, as_agent: Headers, agent: User, as_admin: Headers, admin: User
) -> None:
    ticket = create_ticket(client, as_agent)
    client.patch(f"{API}/tickets/{ticket['id']}", json={"title": "By the admin"}, headers=as_admin)
    events = all_events(client, as_agent, ticket["id"])
    assert {e["actor_id"] for e in events if e["action"] == "created"} == {agent.id}
    assert [e["actor_id"] for e in events if e["action"] == "updated"] == [admin.id]


def test_event_rows_are_typed(session: Session, client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    event = session.get(TicketEvent, all_events(client, as_agent, ticket["id"])[0]["id"])
    assert event is not None and event.created_at.tzinfo is not None


def test_filing_with_an_assignee_and_a_team_records_one_created_event_per_field(
    client: TestClient, as_agent: Headers, agent: User, agent2: User, make_team: Any
) -> None:
    team = make_team()
    body = {
        "title": "Badge readers offline",
        "description": "Building B, all doors",
        "priority": "urgent",
        "assignee_id": agent2.id,
        "team_id": team.id,
    }
    filed = client.post(f"{API}/tickets/", json=body, headers=as_agent)
    assert filed.status_code == 201, filed.text
    ticket = filed.json()
    events = all_events(client, as_agent, ticket["id"])
    assert [(e["action"], e["field"], e["old_value"], e["new_value"]) for e in events] == [
        ("created", "title", None, "Badge readers offline"),
        ("created", "description", None, "Building B, all doors"),
        ("created", "priority", None, "urgent"),
        ("created", "status", None, "open"),
        ("created", "reporter_id", None, str(agent.id)),
        ("created", "assignee_id", None, str(agent2.id)),
        ("created", "team_id", None, str(team.id)),
    ]
    assert {
        (e["actor_id"], e["ticket_version"], e["ticket_id"], e["reason"], e["request_id"]) for e in events
    } == {(agent.id, 1, ticket["id"], None, filed.headers["X-Request-ID"])}
    assert all(same_instant(e["created_at"], ticket["created_at"]) for e in events)


def test_filing_without_optional_fields_records_no_event_for_them(
    client: TestClient, as_reporter: Headers, reporter: User
) -> None:
    ticket = create_ticket(client, as_reporter, title="Monitor flickers")
    events = all_events(client, as_reporter, ticket["id"])
    assert [(e["field"], e["new_value"]) for e in events] == [
        ("title", "Monitor flickers"),
        ("priority", "medium"),
        ("status", "open"),
        ("reporter_id", str(reporter.id)),
    ]
