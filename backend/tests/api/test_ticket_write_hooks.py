"""The seam after a ticket write (app.crud.ticket_writes): what the hooks see, and when they run."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.crud import ticket_writes
from app.crud.ticket_writes import TicketWrite, WriteKind
from app.models import Ticket, TicketEvent, User
from tests.api.test_tickets import counts
from tests.utils import API, create_ticket, move

Headers = dict[str, str]


@dataclass
class Seen:
    """What the registered hooks were called with: before the commit (with what the write's own
    transaction held then), and after it."""

    before: list[TicketWrite] = field(default_factory=list)
    after: list[TicketWrite] = field(default_factory=list)
    events_in_transaction: list[list[int]] = field(default_factory=list)
    ticket_in_transaction: list[bool] = field(default_factory=list)


@pytest.fixture
def seen() -> Iterator[Seen]:
    record = Seen()

    async def before(session: AsyncSession, write: TicketWrite) -> None:
        record.before.append(write)
        stmt = select(TicketEvent.id).where(TicketEvent.ticket_id == write.ticket.id)
        record.events_in_transaction.append(
            list((await session.exec(stmt.order_by(col(TicketEvent.id)))).all())
        )
        record.ticket_in_transaction.append(await session.get(Ticket, write.ticket.id) is not None)

    unregister = ticket_writes.register(before=before, after=record.after.append)
    yield record
    unregister()


def _events(client: TestClient, headers: Headers, ticket_id: int) -> list[dict[str, Any]]:
    response = client.get(f"{API}/tickets/{ticket_id}/events?limit=100", headers=headers)
    assert response.status_code == 200
    return list(response.json()["data"])


EVENT_KEYS = (
    "id",
    "action",
    "field",
    "old_value",
    "new_value",
    "reason",
    "actor_id",
    "ticket_version",
    "request_id",
)


def _as_seen(write: TicketWrite) -> list[dict[str, Any]]:
    """The hook's events in the shape the events endpoint answers."""
    return [{key: getattr(event, key) for key in EVENT_KEYS} for event in write.events]


def _committed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: event[key] for key in EVENT_KEYS} for event in events]


def test_every_write_kind_hands_its_committed_events_to_the_hooks(
    client: TestClient, seen: Seen, as_agent: Headers, agent: User, as_admin: Headers, admin: User
) -> None:
    with_id = {**as_agent, "X-Request-ID": "hooks-create"}
    ticket = create_ticket(client, with_id, priority="high")
    ticket_id = ticket["id"]
    trail = _events(client, as_agent, ticket_id)
    client.patch(f"{API}/tickets/{ticket_id}", json={"title": "Renamed", "priority": "low"}, headers=as_agent)
    trail_after_edit = _events(client, as_agent, ticket_id)
    move(client, as_agent, ticket_id, "resolved", resolution="Replaced the cable")
    trail_after_move = _events(client, as_agent, ticket_id)
    client.post(f"{API}/tickets/{ticket_id}/comments", json={"body": "Works now"}, headers=as_agent)
    trail_after_comment = _events(client, as_agent, ticket_id)
    assert client.delete(f"{API}/tickets/{ticket_id}", headers=as_admin).status_code == 204

    kinds = [WriteKind.created, WriteKind.updated, WriteKind.moved, WriteKind.commented, WriteKind.deleted]
    assert [w.kind for w in seen.before] == kinds
    assert seen.after == seen.before  # the same writes, once each, after their commit
    created, edited, moved, commented, deleted = seen.before

    # Exactly the events each write committed, as the audit trail shows them afterwards.
    assert _as_seen(created) == _committed(trail)
    assert {e["action"] for e in trail} == {"created"} and created.request_id == "hooks-create"
    assert _as_seen(edited) == _committed(trail_after_edit[len(trail) :])
    assert [(e.field, e.new_value) for e in edited.events] == [("title", "Renamed"), ("priority", "low")]
    assert _as_seen(moved) == _committed(trail_after_move[len(trail_after_edit) :])
    assert [(e.action, e.field) for e in moved.events] == [
        ("status_changed", "status"),
        ("updated", "resolution"),
    ]
    assert _as_seen(commented) == _committed(trail_after_comment[len(trail_after_move) :])
    assert [e.action for e in commented.events] == ["commented"]
    assert deleted.events == ()  # a ticket's events go with it

    # Who, which version, which request.
    assert [w.actor_id for w in seen.before] == [agent.id] * 4 + [admin.id]
    assert [w.version for w in seen.before] == [1, 2, 3, 3, 3]  # a comment keeps the version
    assert all(w.ticket.id == ticket_id for w in seen.before)
    assert all(w.request_id and w.request_id == e.request_id for w in seen.before for e in w.events)

    # Before the commit, the hook's session holds the write's rows already (one transaction).
    assert seen.events_in_transaction[:4] == [
        [e["id"] for e in trail],
        [e["id"] for e in trail_after_edit],
        [e["id"] for e in trail_after_move],
        [e["id"] for e in trail_after_comment],
    ]
    assert seen.ticket_in_transaction == [True, True, True, True, False]
    assert seen.events_in_transaction[4] == []


WRITES: dict[str, Callable[[TestClient, Headers, Headers, int], Any]] = {
    "create": lambda c, agent, _admin, _id: c.post(f"{API}/tickets/", json={"title": "More"}, headers=agent),
    "update": lambda c, agent, _admin, i: c.patch(f"{API}/tickets/{i}", json={"title": "New"}, headers=agent),
    "move": lambda c, agent, _admin, i: move(c, agent, i, "cancelled", reason="Duplicate"),
    "comment": lambda c, agent, _admin, i: c.post(
        f"{API}/tickets/{i}/comments", json={"body": "Hi"}, headers=agent
    ),
    "delete": lambda c, _agent, admin, i: c.delete(f"{API}/tickets/{i}", headers=admin),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_hook_that_raises_rolls_the_whole_write_back(
    client: TestClient, session: Session, as_agent: Headers, as_admin: Headers, write: str
) -> None:
    ticket = create_ticket(client, as_agent)
    before = counts(session)
    after: list[TicketWrite] = []

    async def broken(_session: AsyncSession, _write: TicketWrite) -> None:
        raise RuntimeError("the outbox is full")

    unregister = ticket_writes.register(before=broken, after=after.append)
    try:
        response = WRITES[write](client, as_agent, as_admin, ticket["id"])
    finally:
        unregister()
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal server error"  # nothing of the hook's error leaks
    assert counts(session) == before
    assert client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent).json() == ticket
    assert after == []  # never committed, so never announced


def test_an_after_commit_hook_that_raises_leaves_the_write_standing(
    client: TestClient, session: Session, as_agent: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_write: TicketWrite) -> None:
        raise RuntimeError("metrics are down")

    unregister = ticket_writes.register(after=broken)
    try:
        with caplog.at_level(logging.ERROR, logger="app.ticket_writes"):
            ticket = create_ticket(client, as_agent)
    finally:
        unregister()
    assert session.get(Ticket, ticket["id"]) is not None
    assert "an after-commit hook failed on a created write" in caplog.text


def test_refused_and_empty_writes_call_no_hook(
    client: TestClient, session: Session, seen: Seen, as_agent: Headers, as_reporter: Headers, agent: User
) -> None:
    ticket = create_ticket(client, as_agent, assignee_id=agent.id)
    seen.before.clear()
    seen.after.clear()
    url = f"{API}/tickets/{ticket['id']}"
    before = counts(session)
    refused = [
        client.patch(url, json={"title": "x"}, headers={**as_agent, "If-Match": '"9"'}),  # 412
        move(client, as_agent, ticket["id"], "closed"),  # 409
        move(client, as_agent, ticket["id"], "resolved"),  # 422: no resolution
        client.patch(url, json={"assignee_id": 999_999}, headers=as_agent),  # 422: no such assignee
        client.post(f"{API}/tickets/", json={"title": "x", "team_id": 999_999}, headers=as_agent),  # 422
        client.delete(url, headers={**as_agent}),  # 403
        client.post(f"{API}/tickets/{ticket['id']}/comments", json={"body": "x"}, headers=as_reporter),  # 404
        client.patch(url, json={"title": ticket["title"]}, headers=as_agent),  # 200, but nothing changes
    ]
    assert [r.status_code for r in refused] == [412, 409, 422, 422, 422, 403, 404, 200]
    assert counts(session) == before
    assert seen.before == [] and seen.after == []


def test_hooks_run_in_the_order_registered_and_are_removed_again(
    client: TestClient, as_agent: Headers
) -> None:
    calls: list[str] = []

    async def first(_session: AsyncSession, _write: TicketWrite) -> None:
        calls.append("first")

    async def second(_session: AsyncSession, _write: TicketWrite) -> None:
        calls.append("second")

    remove_first = ticket_writes.register(before=first)
    remove_second = ticket_writes.register(before=second, after=lambda _write: calls.append("after"))
    create_ticket(client, as_agent)
    remove_first()
    create_ticket(client, as_agent)
    remove_second()
    create_ticket(client, as_agent)
    assert calls == ["first", "second", "after", "second", "after"]


def test_a_write_hook_may_add_rows_to_the_write(
    client: TestClient, session: Session, as_agent: Headers
) -> None:
    """What the next features do (SLA timers, the outbox): rows written by a hook in the write's
    transaction are stored with it. Here, a stand-in: the hook files a follow-up ticket."""

    async def follow_up(hook_session: AsyncSession, write: TicketWrite) -> None:
        if write.kind == WriteKind.moved:
            hook_session.add(Ticket(title=f"Follow up #{write.ticket.id}", reporter_id=write.actor_id))

    unregister = ticket_writes.register(before=follow_up)
    try:
        ticket = create_ticket(client, as_agent)
        assert move(client, as_agent, ticket["id"], "cancelled", reason="Duplicate").status_code == 200
    finally:
        unregister()
    titles = session.exec(select(Ticket.title).where(col(Ticket.title).startswith("Follow up"))).all()
    assert titles == [f"Follow up #{ticket['id']}"]
