"""The outbox as admins see it: GET /notifications (filters, paging, newest first, never the
payload) and POST /notifications/{id}/requeue (dead or skipped back to pending; 409 pending or
sent; 404 unknown)."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.crud import common
from app.models import Notification, NotificationKind, NotificationState, Role, User
from tests.conftest import MakeUser
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]
S = NotificationState
FIELDS = {
    "id", "channel", "kind", "recipient_id", "ticket_id", "state", "attempts", "next_attempt_at",
    "last_error", "message_id", "created_at", "sent_at",
}  # fmt: skip


def add(session: Session, recipient: User, *, minutes_ago: int = 0, **fields: Any) -> Notification:
    """An outbox row as the worker leaves it (`state`, `attempts`, ...), created `minutes_ago`."""
    when = common.utcnow() - timedelta(minutes=minutes_ago)
    fields.setdefault("kind", NotificationKind.ticket_assigned)
    row = Notification(
        recipient_id=recipient.id,
        payload='{"secret_marker": "never in a body"}',
        message_id=f"<{recipient.id}-{minutes_ago}-{fields['kind']}@example.com>",
        created_at=when,
        next_attempt_at=when,
        **fields,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def listing(client: TestClient, headers: Headers, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/notifications/", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_admins_list_the_outbox_newest_first_without_payloads(
    client: TestClient, session: Session, as_admin: Headers, make_user: MakeUser
) -> None:
    someone = make_user(Role.agent)
    old = add(session, someone, minutes_ago=30, state=S.sent, attempts=1, sent_at=common.utcnow())
    dead = add(session, someone, minutes_ago=10, state=S.dead, attempts=8, last_error="550 no such user")
    new = add(session, someone, minutes_ago=1, kind=NotificationKind.sla_warning)

    body = listing(client, as_admin, recipient_id=someone.id)

    assert body["count"] == 3
    assert [item["id"] for item in body["data"]] == [new.id, dead.id, old.id]
    assert all(set(item) == FIELDS for item in body["data"])
    assert "secret_marker" not in str(body)
    assert body["data"][1] == {
        "id": dead.id,
        "channel": "email",
        "kind": "ticket_assigned",
        "recipient_id": someone.id,
        "ticket_id": None,
        "state": "dead",
        "attempts": 8,
        "next_attempt_at": body["data"][1]["next_attempt_at"],
        "last_error": "550 no such user",
        "message_id": dead.message_id,
        "created_at": body["data"][1]["created_at"],
        "sent_at": None,
    }
    assert body["data"][2]["sent_at"] is not None


def test_filters_and_paging(
    client: TestClient, session: Session, as_admin: Headers, as_reporter: Headers, make_user: MakeUser
) -> None:
    ticket = create_ticket(client, as_reporter, title="Mail server down")
    one, two = make_user(Role.agent), make_user(Role.agent)
    dead_one = add(session, one, minutes_ago=5, state=S.dead, attempts=8, ticket_id=ticket["id"])
    add(session, one, minutes_ago=4, state=S.sent, kind=NotificationKind.ticket_commented)
    dead_two = add(session, two, minutes_ago=3, state=S.dead, attempts=8)
    add(session, two, minutes_ago=2, state=S.skipped, last_error="the recipient is deactivated")

    dead = listing(client, as_admin, state="dead")
    assert {dead_one.id, dead_two.id} <= {item["id"] for item in dead["data"]}
    assert {item["state"] for item in dead["data"]} == {"dead"}

    assert [i["id"] for i in listing(client, as_admin, state="dead", recipient_id=one.id)["data"]] == [
        dead_one.id
    ]
    assert [i["id"] for i in listing(client, as_admin, ticket_id=ticket["id"])["data"]] == [dead_one.id]
    commented = listing(client, as_admin, kind="ticket_commented", recipient_id=one.id)
    assert [(i["kind"], i["state"]) for i in commented["data"]] == [("ticket_commented", "sent")]

    first = listing(client, as_admin, recipient_id=two.id, limit=1)
    second = listing(client, as_admin, recipient_id=two.id, limit=1, offset=1)
    assert (first["count"], second["count"]) == (2, 2)
    assert [first["data"][0]["state"], second["data"][0]["state"]] == ["skipped", "dead"]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"state": "lost"}, ["query", "state"]),
        ({"kind": "newsletter"}, ["query", "kind"]),
        ({"recipient_id": "0"}, ["query", "recipient_id"]),
        ({"limit": "101"}, ["query", "limit"]),
        ({"payload": "x"}, ["query", "payload"]),
    ],
)
def test_bad_filters_are_422(
    client: TestClient, as_admin: Headers, params: dict[str, str], where: list[str]
) -> None:
    response = client.get(f"{API}/notifications/", params=params, headers=as_admin)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [where]


def test_only_admins_manage_the_outbox(
    client: TestClient, session: Session, as_agent: Headers, as_reporter: Headers, agent: User
) -> None:
    row = add(session, agent, state=S.dead)
    for headers, role in ((as_agent, "agents"), (as_reporter, "reporters")):
        for method, path in (("GET", "/notifications/"), ("POST", f"/notifications/{row.id}/requeue")):
            response = client.request(method, API + path, headers=headers)
            assert response.status_code == 403, response.text
            assert error_body(response) == {"detail": f"{role} may not manage notifications"}
    assert client.get(f"{API}/notifications/").status_code == 401
    session.refresh(row)
    assert row.state == S.dead


@pytest.mark.parametrize("state", [S.dead, S.skipped])
def test_a_dead_or_skipped_notification_is_queued_again(
    client: TestClient, session: Session, as_admin: Headers, agent: User, state: NotificationState
) -> None:
    row = add(session, agent, minutes_ago=90, state=state, attempts=8, last_error="451 try later")
    before = common.utcnow()
    response = client.post(f"{API}/notifications/{row.id}/requeue", headers=as_admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == FIELDS
    assert (body["id"], body["state"], body["attempts"], body["sent_at"]) == (row.id, "pending", 0, None)
    assert body["last_error"] == "451 try later"  # until the next attempt says otherwise
    session.refresh(row)
    assert (row.state, row.attempts) == (S.pending, 0)
    assert row.next_attempt_at >= before - timedelta(seconds=1)  # due now, not 90 minutes ago
    assert listing(client, as_admin, state="pending", recipient_id=agent.id)["data"][0]["id"] == row.id


@pytest.mark.parametrize(
    ("state", "detail"),
    [
        (S.pending, "This notification is already queued"),
        (S.sent, "This notification was sent; it is not queued again"),
    ],
)
def test_a_pending_or_sent_notification_is_a_conflict(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    agent: User,
    state: NotificationState,
    detail: str,
) -> None:
    row = add(session, agent, state=state, attempts=1)
    response = client.post(f"{API}/notifications/{row.id}/requeue", headers=as_admin)
    assert response.status_code == 409, response.text
    assert error_body(response) == {"detail": detail}
    session.refresh(row)
    assert (row.state, row.attempts) == (state, 1)


def test_an_unknown_notification_is_404(client: TestClient, as_admin: Headers) -> None:
    response = client.post(f"{API}/notifications/999999/requeue", headers=as_admin)
    assert response.status_code == 404, response.text
    assert error_body(response) == {"detail": "Notification not found"}
    response = client.post(f"{API}/notifications/abc/requeue", headers=as_admin)
    assert response.status_code == 422, response.text
