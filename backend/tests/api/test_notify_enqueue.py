"""Who is told about a ticket write: the outbox rows (kind, recipient, ticket, payload) each action
through the API writes, in the write's transaction (app.crud.notify, app.notifications)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.crud import notify, ticket_writes
from app.crud.ticket_writes import TicketWrite
from app.models import EventAction, Notification, Role, TicketEvent, User
from tests.conftest import MakeUser
from tests.utils import API, auth, create_ticket, move

Headers = dict[str, str]
Row = tuple[str, int, int | None, dict[str, Any]]


def queued(session: Session, *, after: int = 0) -> list[Row]:
    """(kind, recipient, ticket, payload) of every outbox row past id `after`, in id order."""
    rows = session.exec(
        select(Notification).where(col(Notification.id) > after).order_by(col(Notification.id))
    )
    return [(row.kind.value, row.recipient_id, row.ticket_id, json.loads(row.payload)) for row in rows]


def last_id(session: Session) -> int:
    found = session.exec(select(Notification.id).order_by(col(Notification.id).desc())).first()
    return found or 0


def event_id(session: Session, ticket_id: int, action: EventAction, field: str | None = None) -> int:
    stmt = select(TicketEvent.id).where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
    if field is not None:
        stmt = stmt.where(TicketEvent.field == field)
    found = session.exec(stmt.order_by(col(TicketEvent.id).desc())).first()
    assert found is not None
    return found


def comment(
    client: TestClient, headers: Headers, ticket_id: int, body: str, *, internal: bool = False
) -> int:
    response = client.post(
        f"{API}/tickets/{ticket_id}/comments", json={"body": body, "internal": internal}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


# --- Assigned -------------------------------------------------------------------------------------


def test_a_ticket_filed_with_someone_elses_name_tells_them(
    client: TestClient, session: Session, as_agent: Headers, agent: User, agent2: User
) -> None:
    ticket = create_ticket(client, as_agent, assignee_id=agent2.id)
    created = event_id(session, ticket["id"], EventAction.created, "assignee_id")
    assert queued(session) == [
        ("ticket_assigned", agent2.id, ticket["id"], {"event_id": created, "actor_id": agent.id})
    ]


def test_taking_a_ticket_yourself_or_filing_without_assignee_tells_nobody(
    client: TestClient, session: Session, as_agent: Headers, agent: User, as_reporter: Headers
) -> None:
    create_ticket(client, as_agent, assignee_id=agent.id)
    create_ticket(client, as_reporter)
    assert queued(session) == []


def test_assigning_and_reassigning_tell_the_new_assignee_only(
    client: TestClient, session: Session, as_agent: Headers, agent: User, agent2: User, admin: User
) -> None:
    ticket = create_ticket(client, as_agent)
    url = f"{API}/tickets/{ticket['id']}"
    assert client.patch(url, json={"assignee_id": agent2.id}, headers=as_agent).status_code == 200
    first = event_id(session, ticket["id"], EventAction.assigned)
    assert client.patch(url, json={"assignee_id": admin.id}, headers=as_agent).status_code == 200
    second = event_id(session, ticket["id"], EventAction.assigned)
    assert client.patch(url, json={"assignee_id": None}, headers=as_agent).status_code == 200
    assert queued(session) == [
        ("ticket_assigned", agent2.id, ticket["id"], {"event_id": first, "actor_id": agent.id}),
        ("ticket_assigned", admin.id, ticket["id"], {"event_id": second, "actor_id": agent.id}),
    ]


def test_a_move_that_assigns_tells_the_assignee(
    client: TestClient, session: Session, as_reporter: Headers, as_agent: Headers, agent: User, agent2: User
) -> None:
    ticket = create_ticket(client, as_reporter)
    assert move(client, as_agent, ticket["id"], "in_progress", assignee_id=agent2.id).status_code == 200
    assigned = event_id(session, ticket["id"], EventAction.assigned)
    assert queued(session) == [
        ("ticket_assigned", agent2.id, ticket["id"], {"event_id": assigned, "actor_id": agent.id})
    ]


# --- Comments -------------------------------------------------------------------------------------


def test_a_comment_tells_every_watcher_but_its_author(
    client: TestClient,
    session: Session,
    as_reporter: Headers,
    reporter: User,
    as_agent: Headers,
    agent: User,
    agent2: User,
    admin: User,
) -> None:
    ticket = create_ticket(client, as_reporter)
    tid = ticket["id"]
    client.patch(f"{API}/tickets/{tid}", json={"assignee_id": agent2.id}, headers=as_agent)
    comment(client, auth(admin), tid, "Looking into it")  # admin: a commenter from now on
    mark = last_id(session)
    comment_id = comment(client, as_agent, tid, "Which site?")
    noted = event_id(session, tid, EventAction.commented)
    payload = {"event_id": noted, "comment_id": comment_id, "internal": False, "actor_id": agent.id}
    assert sorted(queued(session, after=mark)) == sorted(
        ("ticket_commented", user.id, tid, payload) for user in (reporter, agent2, admin)
    )


def test_an_internal_note_reaches_agents_and_admins_never_the_reporter(
    client: TestClient,
    session: Session,
    as_reporter: Headers,
    reporter: User,
    as_agent: Headers,
    agent: User,
    agent2: User,
) -> None:
    ticket = create_ticket(client, as_reporter)
    tid = ticket["id"]
    client.patch(f"{API}/tickets/{tid}", json={"assignee_id": agent2.id}, headers=as_agent)
    comment(client, as_reporter, tid, "Still broken")
    mark = last_id(session)
    note_id = comment(client, as_agent, tid, "Reporter's VPN client is outdated", internal=True)
    noted = event_id(session, tid, EventAction.noted)
    assert queued(session, after=mark) == [
        (
            "ticket_commented",
            agent2.id,
            tid,
            {"event_id": noted, "comment_id": note_id, "internal": True, "actor_id": agent.id},
        )
    ]
    # and the reporter's own public comment told the assignee, not the reporter
    assert [(kind, to) for kind, to, *_ in queued(session)[:-1]] == [
        ("ticket_assigned", agent2.id),
        ("ticket_commented", agent2.id),
    ]


# --- Status ---------------------------------------------------------------------------------------


def test_resolved_reopened_and_closed_tell_the_watchers_but_the_actor(
    client: TestClient,
    session: Session,
    as_reporter: Headers,
    reporter: User,
    as_agent: Headers,
    agent: User,
    agent2: User,
) -> None:
    ticket = create_ticket(client, as_reporter)
    tid = ticket["id"]
    assert move(client, as_agent, tid, "in_progress", assignee_id=agent.id).status_code == 200
    comment(client, auth(agent2), tid, "Seen this before")
    mark = last_id(session)

    assert move(client, as_agent, tid, "resolved", resolution="Replaced the cable").status_code == 200
    resolved = event_id(session, tid, EventAction.status_changed)
    payload = {"event_id": resolved, "from": "in_progress", "to": "resolved", "actor_id": agent.id}
    assert sorted(queued(session, after=mark)) == sorted(
        [("ticket_resolved", reporter.id, tid, payload), ("ticket_resolved", agent2.id, tid, payload)]
    )

    mark = last_id(session)
    assert move(client, as_reporter, tid, "in_progress", reason="Broken again").status_code == 200
    reopened = event_id(session, tid, EventAction.status_changed)
    payload = {"event_id": reopened, "from": "resolved", "to": "in_progress", "actor_id": reporter.id}
    assert sorted(queued(session, after=mark)) == sorted(
        [("ticket_reopened", agent.id, tid, payload), ("ticket_reopened", agent2.id, tid, payload)]
    )

    assert move(client, as_agent, tid, "resolved", resolution="Swapped the switch").status_code == 200
    mark = last_id(session)
    assert move(client, as_reporter, tid, "closed").status_code == 200
    closed = event_id(session, tid, EventAction.status_changed)
    payload = {"event_id": closed, "from": "resolved", "to": "closed", "actor_id": reporter.id}
    assert sorted(queued(session, after=mark)) == sorted(
        [("ticket_closed", agent.id, tid, payload), ("ticket_closed", agent2.id, tid, payload)]
    )


def test_other_moves_and_edits_tell_nobody(
    client: TestClient, session: Session, as_reporter: Headers, as_agent: Headers, agent: User
) -> None:
    ticket = create_ticket(client, as_reporter)
    tid = ticket["id"]
    mark = last_id(session)
    assert (
        client.patch(f"{API}/tickets/{tid}", json={"title": "VPN flaps"}, headers=as_agent).status_code == 200
    )
    assert move(client, as_agent, tid, "in_progress", assignee_id=agent.id).status_code == 200
    assert move(client, as_agent, tid, "on_hold", reason="Waiting for the ISP").status_code == 200
    assert move(client, as_agent, tid, "cancelled", reason="Duplicate").status_code == 200
    assert queued(session, after=mark) == []


# --- Watching, preferences, inactive users ------------------------------------------------------


def test_an_unwatch_beats_the_automatic_reasons_until_watching_again(
    client: TestClient, session: Session, as_reporter: Headers, reporter: User, as_agent: Headers, agent: User
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    watchers = f"{API}/tickets/{tid}/watchers"
    assert client.delete(f"{watchers}/{reporter.id}", headers=as_reporter).status_code == 204
    comment(client, as_agent, tid, "Rebooted the router")
    assert queued(session) == []
    assert client.post(watchers, headers=as_reporter).status_code == 200
    comment_id = comment(client, as_agent, tid, "Any better?")
    assert [(kind, to, payload["comment_id"]) for kind, to, _, payload in queued(session)] == [
        ("ticket_commented", reporter.id, comment_id)
    ]


def test_an_explicit_watcher_is_told_like_the_others(
    client: TestClient,
    session: Session,
    as_reporter: Headers,
    reporter: User,
    as_agent: Headers,
    agent2: User,
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    response = client.post(f"{API}/tickets/{tid}/watchers", json={"user_id": agent2.id}, headers=as_agent)
    assert response.status_code == 200, response.text
    assert move(client, as_agent, tid, "resolved", resolution="Fixed upstream").status_code == 200
    assert sorted((kind, to, t) for kind, to, t, _ in queued(session)) == sorted(
        [("ticket_resolved", agent2.id, tid), ("ticket_resolved", reporter.id, tid)]
    )


def test_a_kind_switched_off_is_not_queued_the_others_are(
    client: TestClient, session: Session, as_reporter: Headers, reporter: User, as_agent: Headers
) -> None:
    response = client.put(
        f"{API}/users/me/notifications", json={"ticket_commented": False}, headers=as_reporter
    )
    assert response.status_code == 200, response.text
    tid = create_ticket(client, as_reporter)["id"]
    comment(client, as_agent, tid, "On it")
    assert queued(session) == []
    assert move(client, as_agent, tid, "resolved", resolution="Done").status_code == 200
    assert [(kind, to) for kind, to, *_ in queued(session)] == [("ticket_resolved", reporter.id)]
    client.put(f"{API}/users/me/notifications", json={"ticket_commented": True}, headers=as_reporter)
    comment(client, as_agent, tid, "Closing soon")
    assert [kind for kind, *_ in queued(session)] == ["ticket_resolved", "ticket_commented"]


def test_inactive_users_and_those_who_can_no_longer_see_the_ticket_get_nothing(
    client: TestClient,
    session: Session,
    make_user: MakeUser,
    as_reporter: Headers,
    reporter: User,
    as_admin: Headers,
) -> None:
    leaver, demoted, assignee = make_user(Role.agent), make_user(Role.agent), make_user(Role.agent)
    tid = create_ticket(client, as_reporter)["id"]
    client.patch(f"{API}/tickets/{tid}", json={"assignee_id": assignee.id}, headers=as_admin)
    comment(client, auth(leaver), tid, "Checked the logs")
    comment(client, auth(demoted), tid, "Me too")
    internal_only = make_user(Role.agent)
    comment(client, auth(internal_only), tid, "Internal remark", internal=True)
    assert (
        client.patch(f"{API}/users/{leaver.id}", json={"is_active": False}, headers=as_admin).status_code
        == 200
    )
    assert (
        client.patch(f"{API}/users/{demoted.id}", json={"role": "reporter"}, headers=as_admin).status_code
        == 200
    )
    assert (
        client.patch(f"{API}/users/{assignee.id}", json={"is_active": False}, headers=as_admin).status_code
        == 200
    )
    mark = last_id(session)
    comment(client, as_admin, tid, "Escalated")
    # the reporter, and the agent who only wrote an internal note (a commenter too); not the
    # deactivated commenter or assignee, not the commenter now a reporter (not their ticket)
    assert sorted(to for _, to, *_ in queued(session, after=mark)) == sorted([reporter.id, internal_only.id])


# --- Nothing for a write that is not stored -------------------------------------------------------


def test_refused_writes_queue_nothing(
    client: TestClient, session: Session, as_reporter: Headers, as_agent: Headers, agent2: User
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}"
    mark = last_id(session)
    # 412: a stale If-Match, on an edit that would assign
    stale = client.patch(url, json={"assignee_id": agent2.id}, headers={**as_agent, "If-Match": '"99"'})
    assert stale.status_code == 412
    # 422: a resolve without its resolution
    assert move(client, as_agent, tid, "resolved").status_code == 422
    # 409: a move the lifecycle has not
    assert move(client, as_agent, tid, "closed").status_code == 409
    # 422: an assignee who is no agent
    assert client.patch(url, json={"assignee_id": 10**9}, headers=as_agent).status_code == 422
    assert queued(session, after=mark) == []


def test_a_later_hook_that_raises_takes_the_queued_rows_with_the_write(
    client: TestClient, session: Session, as_reporter: Headers, as_agent: Headers, agent2: User
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    mark = last_id(session)
    seen: list[int] = []

    async def broken(hook_session: AsyncSession, write: TicketWrite) -> None:
        rows = await hook_session.exec(select(Notification.id).where(col(Notification.id) > mark))
        seen.extend(rows.all())  # the notify hook's rows are in the transaction ...
        raise RuntimeError("the webhook table is full")

    unregister = ticket_writes.register(before=broken)
    try:
        response = client.patch(f"{API}/tickets/{tid}", json={"assignee_id": agent2.id}, headers=as_agent)
    finally:
        unregister()
    assert response.status_code == 500
    assert len(seen) == 1
    assert queued(session, after=mark) == []  # ... and rolled back with it
    assert client.get(f"{API}/tickets/{tid}", headers=as_agent).json()["assignee_id"] is None


# --- What it costs --------------------------------------------------------------------------------


@pytest.fixture
def statements(async_engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(async_engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(async_engine.sync_engine, "before_cursor_execute", record)


def test_a_write_that_notifies_nobody_costs_no_query_one_that_does_one(
    client: TestClient, as_reporter: Headers, as_agent: Headers, agent2: User, statements: list[str]
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}"
    statements.clear()
    client.patch(url, json={"title": "Renamed"}, headers=as_agent)
    with_hook = list(statements)
    unregister = notify_unregistered()
    try:
        statements.clear()
        client.patch(url, json={"title": "Renamed again"}, headers=as_agent)
        without_hook = list(statements)
    finally:
        unregister()
    assert len(with_hook) == len(without_hook), (with_hook, without_hook)
    assert not [s for s in with_hook if "users" in s and "ticket_watchers" in s]

    statements.clear()
    client.post(f"{API}/tickets/{tid}/comments", json={"body": "Hello"}, headers=as_agent)
    reads = [s for s in statements if "ticket_watchers" in s]
    assert len(reads) == 1, reads  # the audience, with watch rows and opt-outs, in one query
    assert [s for s in statements if s.startswith("INSERT INTO notifications")]


def notify_unregistered() -> Any:
    """Take the notify hook out; returns the function that puts it back (at the end)."""
    ticket_writes._before_commit.remove(notify.hook)
    return lambda: ticket_writes.register(before=notify.hook)
