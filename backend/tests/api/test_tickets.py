"""Ticket CRUD through HTTP: bodies, headers, validation, and nothing written on rejection."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import Comment, Ticket, TicketEvent, User
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]


def counts(session: Session) -> tuple[int, int, int]:
    return (
        session.exec(select(func.count()).select_from(Ticket)).one(),
        session.exec(select(func.count()).select_from(TicketEvent)).one(),
        session.exec(select(func.count()).select_from(Comment)).one(),
    )


def test_create_returns_the_stored_ticket_with_location(
    client: TestClient, as_reporter: Headers, reporter: User
) -> None:
    response = client.post(
        f"{API}/tickets/",
        json={"title": "  Payroll service is down  ", "description": "Since 9:00", "priority": "high"},
        headers=as_reporter,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Payroll service is down"
    assert body["description"] == "Since 9:00"
    assert body["priority"] == "high"
    assert body["status"] == "open"
    assert body["reporter_id"] == reporter.id
    assert body["assignee_id"] is None and body["team_id"] is None
    assert body["version"] == 1 and body["reopen_count"] == 0
    assert body["resolved_at"] is None and body["closed_at"] is None and body["resolution"] is None
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert response.headers["location"] == f"http://testserver{API}/tickets/{body['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = client.get(response.headers["location"], headers=as_reporter)
    assert fetched.json() == body


def test_defaults_priority_medium(client: TestClient, as_agent: Headers) -> None:
    assert create_ticket(client, as_agent)["priority"] == "medium"


def test_create_with_assignee_and_team(
    client: TestClient, as_agent: Headers, agent2: User, make_team: Any
) -> None:
    team = make_team()
    body = create_ticket(client, as_agent, assignee_id=agent2.id, team_id=team.id)
    assert (body["assignee_id"], body["team_id"]) == (agent2.id, team.id)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "description": "x" * 10_001}, "description"),
        ({"title": "bad\x00byte"}, "title"),
        ({"title": "ok", "description": "nul \x00 inside"}, "description"),
        ({"title": "ok", "priority": "whenever"}, "priority"),
        ({"title": "ok", "status": "closed"}, "status"),
        ({"title": "ok", "version": 7}, "version"),
        ({"title": "ok", "reporter_id": 1}, "reporter_id"),
        ({"title": "ok", "id": 5}, "id"),
        ({"title": "ok", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"title": "ok", "assignee_id": -3}, "assignee_id"),
        ({"title": "ok", "team_id": 2**40}, "team_id"),
        ({}, "title"),
    ],
)
def test_create_rejects_bad_bodies_and_writes_nothing(
    client: TestClient, session: Session, as_agent: Headers, body: dict[str, Any], field: str
) -> None:
    before = counts(session)
    response = client.post(f"{API}/tickets/", json=body, headers=as_agent)
    assert response.status_code == 422
    assert field in [error["loc"][-1] for error in response.json()["detail"]]
    assert counts(session) == before


def test_title_of_200_characters_is_accepted(client: TestClient, as_agent: Headers) -> None:
    assert create_ticket(client, as_agent, title="t" * 200)["title"] == "t" * 200


def test_malformed_json_is_422(client: TestClient, session: Session, as_agent: Headers) -> None:
    before = counts(session)
    response = client.post(
        f"{API}/tickets/",
        content=b'{"title": "unterminated',
        headers={**as_agent, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert counts(session) == before


@pytest.mark.parametrize("field", ["assignee_id", "team_id"])
def test_unknown_assignee_or_team_is_422(
    client: TestClient, session: Session, as_agent: Headers, field: str
) -> None:
    before = counts(session)
    response = client.post(f"{API}/tickets/", json={"title": "x", field: 424242}, headers=as_agent)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert counts(session) == before


def test_reporters_and_inactive_users_cannot_be_assignees(
    client: TestClient, as_agent: Headers, reporter: User, make_user: Any
) -> None:
    inactive = make_user(is_active=False)
    for user in (reporter, inactive):
        response = client.post(
            f"{API}/tickets/", json={"title": "x", "assignee_id": user.id}, headers=as_agent
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["msg"] == f"no active agent or admin with id {user.id}"


def test_list_is_newest_first_with_count_and_pages(client: TestClient, as_agent: Headers) -> None:
    ids = [create_ticket(client, as_agent, title=f"ticket {n}")["id"] for n in range(25)]
    first = client.get(f"{API}/tickets/", headers=as_agent).json()
    assert first["count"] == 25
    assert [t["id"] for t in first["data"]] == ids[::-1][:20]
    second = client.get(f"{API}/tickets/?offset=20&limit=10", headers=as_agent).json()
    assert [t["id"] for t in second["data"]] == ids[::-1][20:]
    assert second["count"] == 25


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "offset=-1", "limit=abc"])
def test_list_rejects_bad_paging(client: TestClient, as_agent: Headers, query: str) -> None:
    response = client.get(f"{API}/tickets/?{query}", headers=as_agent)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_limit_100_is_allowed(client: TestClient, as_agent: Headers) -> None:
    create_ticket(client, as_agent)
    response = client.get(f"{API}/tickets/?limit=100", headers=as_agent)
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_get_has_etag_and_404_body(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    response = client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent)
    assert response.headers["etag"] == '"1"'
    missing = client.get(f"{API}/tickets/999999", headers=as_agent)
    assert missing.status_code == 404
    assert error_body(missing) == {"detail": "Ticket not found"}


@pytest.mark.parametrize("ticket_id", ["abc", "-1", "0", "1.5", str(2**31), str(2**70)])
def test_bad_ids_are_422(client: TestClient, as_agent: Headers, ticket_id: str) -> None:
    response = client.get(f"{API}/tickets/{ticket_id}", headers=as_agent)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "ticket_id"]


def test_patch_edits_fields_bumps_version_and_records_events(
    client: TestClient, as_agent: Headers, agent: User, agent2: User, make_team: Any
) -> None:
    ticket = create_ticket(client, as_agent, title="Old title")
    team = make_team()
    response = client.patch(
        f"{API}/tickets/{ticket['id']}",
        json={"title": "New title", "priority": "urgent", "assignee_id": agent2.id, "team_id": team.id},
        headers=as_agent,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["priority"], body["assignee_id"], body["team_id"]) == (
        "New title",
        "urgent",
        agent2.id,
        team.id,
    )
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert body["updated_at"] > ticket["updated_at"]
    events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()["data"]
    changes = [
        (e["action"], e["field"], e["old_value"], e["new_value"]) for e in events if e["ticket_version"] == 2
    ]
    assert changes == [
        ("updated", "title", "Old title", "New title"),
        ("updated", "priority", "medium", "urgent"),
        ("assigned", "assignee_id", None, str(agent2.id)),
        ("updated", "team_id", None, str(team.id)),
    ]
    assert {e["actor_id"] for e in events} == {agent.id}


def test_patch_can_clear_optional_fields(client: TestClient, as_agent: Headers, agent2: User) -> None:
    ticket = create_ticket(client, as_agent, description="text", assignee_id=agent2.id)
    body = client.patch(
        f"{API}/tickets/{ticket['id']}", json={"description": None, "assignee_id": None}, headers=as_agent
    ).json()
    assert body["description"] is None and body["assignee_id"] is None


def test_patch_without_changes_keeps_the_version(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent, title="Same")
    body = client.patch(f"{API}/tickets/{ticket['id']}", json={"title": "Same"}, headers=as_agent).json()
    assert body["version"] == 1
    events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()
    assert {e["action"] for e in events["data"]} == {"created"}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "resolved"},
        {"version": 9},
        {"reporter_id": 1},
        {"resolution": "done"},
        {"title": None},
        {"priority": None},
        {"title": "a\x00b"},
        {"assignee_id": 987654},
        {"team_id": 987654},
    ],
)
def test_patch_rejections_write_nothing(
    client: TestClient, session: Session, as_agent: Headers, body: dict[str, Any]
) -> None:
    ticket = create_ticket(client, as_agent)
    before = counts(session)
    response = client.patch(f"{API}/tickets/{ticket['id']}", json=body, headers=as_agent)
    assert response.status_code == 422
    assert counts(session) == before
    assert client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent).json() == ticket


def test_if_match_guards_against_lost_updates(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    url = f"{API}/tickets/{ticket['id']}"
    first = client.patch(url, json={"title": "First"}, headers={**as_agent, "If-Match": '"1"'})
    assert first.status_code == 200
    stale = client.patch(url, json={"title": "Second"}, headers={**as_agent, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert error_body(stale) == {
        "detail": "The ticket has changed since you read it; reload and retry",
        "current_version": 2,
    }
    assert client.get(url, headers=as_agent).json()["title"] == "First"
    fresh = client.patch(
        url, json={"title": "Second"}, headers={**as_agent, "If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200
    assert fresh.json()["version"] == 3


@pytest.mark.parametrize(("value", "status"), [("*", 200), ('W/"1"', 200), ('"7", "1"', 200), ("junk", 412)])
def test_if_match_forms(client: TestClient, as_agent: Headers, value: str, status: int) -> None:
    ticket = create_ticket(client, as_agent)
    response = client.patch(
        f"{API}/tickets/{ticket['id']}", json={"title": "New"}, headers={**as_agent, "If-Match": value}
    )
    assert response.status_code == status


def test_final_tickets_cannot_be_edited(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    client.patch(
        f"{API}/tickets/{ticket['id']}/status",
        json={"status": "cancelled", "reason": "dup"},
        headers=as_agent,
    )
    response = client.patch(f"{API}/tickets/{ticket['id']}", json={"title": "late"}, headers=as_agent)
    assert response.status_code == 409
    assert error_body(response) == {
        "detail": "The ticket is cancelled; it can no longer be edited",
        "status": "cancelled",
    }


def test_delete_removes_ticket_events_and_comments(
    client: TestClient, session: Session, as_admin: Headers, as_agent: Headers
) -> None:
    ticket = create_ticket(client, as_agent)
    client.post(f"{API}/tickets/{ticket['id']}/comments", json={"body": "looking"}, headers=as_agent)
    keep = create_ticket(client, as_agent)
    before = counts(session)
    response = client.delete(f"{API}/tickets/{ticket['id']}", headers=as_admin)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{API}/tickets/{ticket['id']}", headers=as_admin).status_code == 404
    tickets, events, comments = counts(session)
    assert tickets == before[0] - 1
    assert comments == before[2] - 1
    remaining = session.exec(select(TicketEvent.ticket_id).distinct()).all()
    assert remaining == [keep["id"]]
    assert events < before[1]


def test_delete_honours_if_match(client: TestClient, session: Session, as_admin: Headers) -> None:
    ticket = create_ticket(client, as_admin)
    url = f"{API}/tickets/{ticket['id']}"
    assert client.patch(url, json={"title": "Edited"}, headers=as_admin).status_code == 200
    before = counts(session)
    stale = client.delete(url, headers={**as_admin, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert error_body(stale) == {
        "detail": "The ticket has changed since you read it; reload and retry",
        "current_version": 2,
    }
    assert counts(session) == before
    assert client.delete(url, headers={**as_admin, "If-Match": '"2"'}).status_code == 204
    assert client.get(url, headers=as_admin).status_code == 404
