"""Concurrent writes to one ticket through a real server: none is lost, all are in the audit trail.

Runs the app in uvicorn (in a thread) against the test database with real commits, so the writes
contend for the row exactly as in production; the rows it creates are deleted at the end.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.factories import UserFactory
from app.models import Role, Ticket, TicketEvent, User
from tests.utils import auth


@pytest.fixture
def committed_agents(engine: Engine) -> Iterator[list[User]]:
    """Two agents committed for real (the server does not share the test transaction)."""
    with Session(engine) as session:
        agents = [UserFactory.build(role=Role.agent) for _ in range(2)]
        session.add_all(agents)
        session.commit()
        for agent in agents:
            session.refresh(agent)
            session.expunge(agent)
    yield agents
    with Session(engine) as session:
        ids = [a.id for a in agents]
        for ticket in session.exec(select(Ticket).where(col(Ticket.reporter_id).in_(ids))).all():
            session.delete(ticket)
        session.commit()
        for agent in agents:
            session.delete(session.get(User, agent.id))
        session.commit()


def test_concurrent_edits_and_moves_lose_nothing(
    live_api: str, engine: Engine, committed_agents: list[User]
) -> None:
    agent, other = committed_agents
    headers = auth(agent)
    with httpx.Client(base_url=live_api, headers=headers, timeout=30) as http:
        ticket = http.post("/tickets/", json={"title": "Start", "assignee_id": agent.id}).json()
        started = http.patch(f"/tickets/{ticket['id']}/status", json={"status": "in_progress"}).json()
        assert started["version"] == 2
        url = f"/tickets/{ticket['id']}"

        requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        for n in range(24):
            requests.append((url, {"title": f"title {n}"}, {}))
        for n in range(8):
            requests.append((url, {"title": f"guarded {n}"}, {"If-Match": '"2"'}))
        for n in range(16):
            body = {"status": "on_hold", "reason": f"wait {n}"} if n % 2 else {"status": "in_progress"}
            requests.append((f"{url}/status", body, {}))
        for n in range(8):
            requests.append((url, {"description": f"details {n}"}, {}))
        requests.append((url, {"assignee_id": other.id}, {}))  # one reassignment: never a no-op

        def send(
            request: tuple[str, dict[str, Any], dict[str, str]],
        ) -> tuple[dict[str, Any], httpx.Response]:
            path, body, extra = request
            return body, http.patch(path, json=body, headers=extra)

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(send, requests))
        final = http.get(url).json()

    statuses = [response.status_code for _, response in results]
    assert set(statuses) <= {200, 409, 412}, statuses
    accepted = [(body, response.json()) for body, response in results if response.status_code == 200]
    changed = [(body, stored) for body, stored in accepted if stored["version"] > 2]
    versions = sorted(stored["version"] for _, stored in changed)
    # Every accepted write that changed something got its own version, with no gaps: nothing was lost.
    assert versions == list(range(3, 3 + len(versions)))
    assert len(changed) >= 24  # the unguarded title edits always change the title
    assert final["version"] == versions[-1]
    last = max(changed, key=lambda pair: pair[1]["version"])[1]
    assert final == last

    with Session(engine) as session:
        events = session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket["id"]).order_by(col(TicketEvent.id))
        ).all()
    event_versions = [e.ticket_version for e in events]
    assert event_versions == sorted(event_versions), "events are stored in version order"
    by_version: dict[int, list[TicketEvent]] = {}
    for event in events:
        by_version.setdefault(event.ticket_version, []).append(event)
    for body, stored in changed:
        recorded = {(e.field, e.new_value) for e in by_version[stored["version"]]}
        for field, value in body.items():
            if field != "reason":
                assert (field, str(value)) in recorded, (body, recorded)
    for response in (r for _, r in results if r.status_code == 412):
        assert response.json()["current_version"] > 2
