"""Lifecycle moves through HTTP, driven by the transition table itself."""

from collections import deque
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import lifecycle
from app.models import TicketStatus, User
from tests.api.test_tickets import counts
from tests.utils import API, create_ticket, error_body, move

Headers = dict[str, str]
S = TicketStatus
ALL = list(TicketStatus)
TEXT = {lifecycle.RESOLUTION: "Restarted the VPN concentrator", lifecycle.REASON: "Waiting on the vendor"}


def path_to(target: TicketStatus) -> list[lifecycle.Transition]:
    """The shortest chain of moves from open to `target`, found in the table."""
    queue: deque[tuple[TicketStatus, list[lifecycle.Transition]]] = deque([(S.open, [])])
    seen = {S.open}
    while queue:
        state, path = queue.popleft()
        if state == target:
            return path
        for t in lifecycle.moves_from(state):
            if t.target not in seen:
                seen.add(t.target)
                queue.append((t.target, [*path, t]))
    raise AssertionError(f"{target} is unreachable")


def body_for(transition: lifecycle.Transition, assignee: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field in transition.requires:
        body[field] = assignee if field == lifecycle.ASSIGNEE else TEXT[field]
    return body


def ticket_in(client: TestClient, headers: Headers, state: TicketStatus, assignee: User) -> dict[str, Any]:
    ticket = create_ticket(client, headers, assignee_id=assignee.id)
    for t in path_to(state):
        response = move(client, headers, ticket["id"], t.target.value, **body_for(t))
        assert response.status_code == 200, response.text
        ticket = response.json()
    assert ticket["status"] == state.value
    return ticket


def test_every_state_is_reachable_and_final_states_have_no_moves() -> None:
    assert {t.source for t in lifecycle.TRANSITIONS} == set(ALL) - lifecycle.FINAL
    for state in ALL:
        path_to(state)


@pytest.mark.parametrize("transition", lifecycle.TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_each_allowed_move(
    client: TestClient, as_agent: Headers, agent: User, transition: lifecycle.Transition
) -> None:
    ticket = ticket_in(client, as_agent, transition.source, agent)
    response = move(client, as_agent, ticket["id"], transition.target.value, **body_for(transition))
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["status"] == transition.target.value
    assert after["version"] == ticket["version"] + 1
    assert response.headers["etag"] == f'"{after["version"]}"'
    if transition.target == S.resolved:
        assert after["resolution"] == TEXT[lifecycle.RESOLUTION]
        assert after["resolved_at"] is not None
    if transition.target in lifecycle.FINAL:
        assert after["closed_at"] is not None
    if transition.target == S.closed:
        assert after["resolution"] and after["resolved_at"] <= after["closed_at"]
    if transition.reopen:
        assert after["reopen_count"] == ticket["reopen_count"] + 1
        assert after["resolution"] is None and after["resolved_at"] is None
    if transition.target == S.in_progress:
        assert after["assignee_id"] is not None


DISALLOWED = [(a, b) for a in ALL for b in ALL if lifecycle.find(a, b) is None]


@pytest.mark.parametrize(("source", "target"), DISALLOWED, ids=lambda s: str(s))
def test_each_disallowed_move_is_409_naming_state_and_targets(
    client: TestClient, session: Session, as_agent: Headers, agent: User, source: S, target: S
) -> None:
    ticket = ticket_in(client, as_agent, source, agent)
    before = counts(session)
    response = move(client, as_agent, ticket["id"], target.value, resolution="x", reason="y")
    assert response.status_code == 409
    body = response.json()
    assert body["current"] == source.value
    assert body["allowed"] == [t.target.value for t in lifecycle.moves_from(source)]
    verb = "is already" if source == target else f"cannot move from {source.value} to"
    assert body["detail"] == f"Ticket {verb} {target.value}"
    assert counts(session) == before


REQUIRING = [(t, field) for t in lifecycle.TRANSITIONS for field in t.requires if field != lifecycle.ASSIGNEE]


@pytest.mark.parametrize(("transition", "field"), REQUIRING, ids=lambda v: str(getattr(v, "target", v)))
def test_missing_required_text_is_422_and_writes_nothing(
    client: TestClient,
    session: Session,
    as_agent: Headers,
    agent: User,
    transition: lifecycle.Transition,
    field: str,
) -> None:
    ticket = ticket_in(client, as_agent, transition.source, agent)
    before = counts(session)
    body = {k: v for k, v in body_for(transition).items() if k != field}
    response = move(client, as_agent, ticket["id"], transition.target.value, **body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "missing",
            "loc": ["body", field],
            "msg": f"required to move from {transition.source.value} to {transition.target.value}",
        }
    ]
    assert counts(session) == before
    blank = move(client, as_agent, ticket["id"], transition.target.value, **{**body, field: "   "})
    assert blank.status_code == 422


def test_start_work_needs_an_assignee_which_the_move_may_set(
    client: TestClient, as_agent: Headers, agent2: User
) -> None:
    ticket = create_ticket(client, as_agent)
    refused = move(client, as_agent, ticket["id"], "in_progress")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "assignee_id"]
    accepted = move(client, as_agent, ticket["id"], "in_progress", assignee_id=agent2.id)
    assert accepted.status_code == 200
    assert accepted.json()["assignee_id"] == agent2.id
    events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()["data"]
    assert [(e["action"], e["field"], e["new_value"]) for e in events[-2:]] == [
        ("status_changed", "status", "in_progress"),
        ("assigned", "assignee_id", str(agent2.id)),
    ]


def test_resolution_only_when_resolving(client: TestClient, as_agent: Headers, agent: User) -> None:
    ticket = ticket_in(client, as_agent, S.in_progress, agent)
    response = move(client, as_agent, ticket["id"], "on_hold", reason="vendor", resolution="nope")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "resolution"]


def test_reason_is_recorded_on_the_status_event(client: TestClient, as_agent: Headers, agent: User) -> None:
    ticket = ticket_in(client, as_agent, S.in_progress, agent)
    move(client, as_agent, ticket["id"], "on_hold", reason="Waiting for the ISP")
    events = client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()["data"]
    assert (events[-1]["action"], events[-1]["reason"]) == ("status_changed", "Waiting for the ISP")


def test_status_move_honours_if_match(client: TestClient, as_agent: Headers, agent: User) -> None:
    ticket = create_ticket(client, as_agent, assignee_id=agent.id)
    url = f"{API}/tickets/{ticket['id']}/status"
    stale = client.patch(url, json={"status": "in_progress"}, headers={**as_agent, "If-Match": '"9"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 1
    ok = client.patch(url, json={"status": "in_progress"}, headers={**as_agent, "If-Match": '"1"'})
    assert ok.status_code == 200


@pytest.mark.parametrize("state", ALL)
def test_transitions_listing_reads_the_table(
    client: TestClient, as_agent: Headers, agent: User, state: TicketStatus
) -> None:
    ticket = ticket_in(client, as_agent, state, agent)
    response = client.get(f"{API}/tickets/{ticket['id']}/transitions", headers=as_agent)
    assert response.status_code == 200
    expected = [
        {"status": t.target.value, "requires": [f for f in t.requires if f != lifecycle.ASSIGNEE]}
        for t in lifecycle.moves_from(state)
    ]
    assert response.json() == {"current": state.value, "transitions": expected}


def test_transitions_listing_asks_for_an_assignee_when_there_is_none(
    client: TestClient, as_agent: Headers
) -> None:
    ticket = create_ticket(client, as_agent)
    listing = client.get(f"{API}/tickets/{ticket['id']}/transitions", headers=as_agent).json()
    assert listing["transitions"][0] == {"status": "in_progress", "requires": ["assignee_id"]}


@pytest.mark.parametrize("body", [{"status": "done"}, {"status": "resolved", "resolution": "x\x00"}, {}])
def test_bad_move_bodies_are_422(client: TestClient, as_agent: Headers, body: dict[str, Any]) -> None:
    ticket = create_ticket(client, as_agent)
    response = client.patch(f"{API}/tickets/{ticket['id']}/status", json=body, headers=as_agent)
    assert response.status_code == 422


# --- What the mutation audit found missing ([5/8]) ------------------------------------------------


def test_a_reporter_reopening_with_an_assignee_is_refused(
    client: TestClient, session: Session, as_reporter: Headers, as_agent: Headers, agent2: User
) -> None:
    # Reopening is a reporter's move on their own ticket; assigning is not, not even within a move.
    ticket = create_ticket(client, as_reporter)
    assert move(client, as_agent, ticket["id"], "resolved", resolution="Reset the token").status_code == 200
    before = counts(session)
    refused = move(
        client, as_reporter, ticket["id"], "in_progress", reason="Broken again", assignee_id=agent2.id
    )
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "reporters may not assign tickets"}
    assert counts(session) == before
    stored = client.get(f"{API}/tickets/{ticket['id']}", headers=as_reporter).json()
    assert (stored["status"], stored["assignee_id"], stored["version"]) == ("resolved", None, 2)
    reopened = move(client, as_reporter, ticket["id"], "in_progress", reason="Broken again")
    assert reopened.status_code == 200
    assert (reopened.json()["assignee_id"], reopened.json()["reopen_count"]) == (None, 1)


@pytest.mark.parametrize("who", ["reporter", "inactive agent", "unknown id"])
def test_a_move_refuses_an_assignee_who_cannot_work_tickets(
    client: TestClient,
    session: Session,
    as_agent: Headers,
    reporter: User,
    make_user: Any,
    who: str,
) -> None:
    assignee_id = {
        "reporter": lambda: reporter.id,
        "inactive agent": lambda: make_user(is_active=False).id,
        "unknown id": lambda: 2_000_000_000,
    }[who]()
    ticket = create_ticket(client, as_agent)
    before = counts(session)
    response = move(client, as_agent, ticket["id"], "in_progress", assignee_id=assignee_id)
    assert response.status_code == 422
    assert error_body(response) == {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", "assignee_id"],
                "msg": f"no active agent or admin with id {assignee_id}",
            }
        ]
    }
    assert counts(session) == before
    assert client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent).json() == ticket
