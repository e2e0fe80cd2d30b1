"""Edits, moves and deletes check their preconditions in one order: 404, 403, 412, 409, then 422.

Each test breaks two preconditions at once and expects the earlier one's answer."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Ticket, User
from tests.api.test_tickets import counts
from tests.utils import API, auth, create_ticket, error_body, move

Headers = dict[str, str]
STALE = {"If-Match": '"99"'}


def _closed(client: TestClient, headers: Headers) -> dict[str, Any]:
    ticket = create_ticket(client, headers)
    assert move(client, headers, ticket["id"], "resolved", resolution="Rebooted").status_code == 200
    closed = move(client, headers, ticket["id"], "closed")
    assert closed.status_code == 200
    return dict(closed.json())


def _stale(response: Any, version: int) -> None:
    assert response.status_code == 412, response.text
    assert error_body(response)["current_version"] == version


def test_not_visible_comes_before_everything(
    client: TestClient, as_reporter: Headers, other_reporter: User
) -> None:
    ticket = create_ticket(client, as_reporter)
    someone_else = auth(other_reporter)
    url = f"{API}/tickets/{ticket['id']}"
    for response in (
        client.patch(url, json={"title": "x"}, headers={**someone_else, **STALE}),
        move(client, {**someone_else, **STALE}, ticket["id"], "open"),
        client.delete(url, headers={**someone_else, **STALE}),
    ):
        assert response.status_code == 404


def test_permission_comes_before_the_version_and_the_state(
    client: TestClient, as_agent: Headers, as_reporter: Headers
) -> None:
    mine = create_ticket(client, as_reporter)
    url = f"{API}/tickets/{mine['id']}"
    # A reporter may not edit, may not resolve, may not delete: 403 even with a stale If-Match.
    assert client.patch(url, json={"title": "x"}, headers={**as_reporter, **STALE}).status_code == 403
    assert move(client, {**as_reporter, **STALE}, mine["id"], "resolved", resolution="x").status_code == 403
    assert client.delete(url, headers={**as_reporter, **STALE}).status_code == 403
    # An agent may not delete, whatever the state.
    closed = _closed(client, as_agent)
    assert client.delete(f"{API}/tickets/{closed['id']}", headers={**as_agent, **STALE}).status_code == 403


def test_the_version_comes_before_the_state(client: TestClient, session: Session, as_agent: Headers) -> None:
    closed = _closed(client, as_agent)
    before = counts(session)
    url = f"{API}/tickets/{closed['id']}"
    _stale(client.patch(url, json={"title": "x"}, headers={**as_agent, **STALE}), closed["version"])
    # A move the lifecycle does not have, from a stale read: the read is what is wrong first.
    _stale(move(client, {**as_agent, **STALE}, closed["id"], "open"), closed["version"])
    assert counts(session) == before
    # With the version right, the state answers.
    current = {"If-Match": f'"{closed["version"]}"'}
    assert client.patch(url, json={"title": "x"}, headers={**as_agent, **current}).status_code == 409
    assert move(client, {**as_agent, **current}, closed["id"], "open").status_code == 409


def test_the_version_comes_before_what_the_body_refers_to(
    client: TestClient, as_agent: Headers, agent: User
) -> None:
    ticket = create_ticket(client, as_agent)
    url = f"{API}/tickets/{ticket['id']}"
    nobody = 999_999
    _stale(client.patch(url, json={"assignee_id": nobody}, headers={**as_agent, **STALE}), 1)
    _stale(move(client, {**as_agent, **STALE}, ticket["id"], "in_progress", assignee_id=nobody), 1)
    _stale(move(client, {**as_agent, **STALE}, ticket["id"], "resolved"), 1)  # no resolution either
    refused = move(client, as_agent, ticket["id"], "in_progress", assignee_id=nobody)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "assignee_id"]


def test_the_state_comes_before_what_the_body_refers_to(client: TestClient, as_agent: Headers) -> None:
    closed = _closed(client, as_agent)
    nobody = 999_999
    patch = client.patch(f"{API}/tickets/{closed['id']}", json={"team_id": nobody}, headers=as_agent)
    assert patch.status_code == 409
    assert move(client, as_agent, closed["id"], "in_progress", assignee_id=nobody).status_code == 409


@pytest.mark.parametrize("if_match", [None, "current"])
def test_a_delete_without_or_with_the_current_version_goes_ahead_in_any_state(
    client: TestClient, session: Session, as_agent: Headers, as_admin: Headers, if_match: str | None
) -> None:
    closed = _closed(client, as_agent)
    headers = as_admin if if_match is None else {**as_admin, "If-Match": f'"{closed["version"]}"'}
    assert client.delete(f"{API}/tickets/{closed['id']}", headers=headers).status_code == 204
    session.expire_all()
    assert session.get(Ticket, closed["id"]) is None
