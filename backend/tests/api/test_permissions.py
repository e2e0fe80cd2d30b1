"""Every endpoint, called by every role and by nobody: the expected status, as one table.

Read it against app/permissions.py. `owner` is the reporter who filed the ticket; `stranger` is
another reporter, for whom the ticket must not exist (404, never 403).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import pytest
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import Session, col, select

from app.factories import DEMO_PASSWORD, TeamFactory, UserFactory
from app.main import app
from app.models import (
    ApiToken,
    Calendar,
    Priority,
    Role,
    SlaPolicy,
    Team,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.conftest import client_on, session_on, stored
from tests.utils import API, auth, create_ticket, error_body, move

ACTORS = ("anonymous", "owner", "stranger", "agent", "admin")


@dataclass
class World:
    users: dict[str, User]
    team: Team
    victim: User
    open_ticket: dict[str, Any]
    resolved_ticket: dict[str, Any]
    calendar: Calendar  # in use by no policy
    policy: SlaPolicy
    token: ApiToken  # the agent's
    webhook: WebhookEndpoint
    delivery: WebhookDelivery


def service_levels(session: Session) -> tuple[Calendar, SlaPolicy]:
    builtin = session.exec(select(Calendar).where(col(Calendar.builtin))).one()
    calendar = Calendar(name="Office", time_zone="UTC", working_hours={"monday": ["09:00-17:00"]})
    assert builtin.id is not None
    policy = SlaPolicy(name="Urgent", position=10, priority=Priority.urgent, calendar_id=builtin.id)
    session.add_all([calendar, policy])
    session.commit()
    session.refresh(calendar)
    session.refresh(policy)
    return calendar, policy


# The world is built once per module (about 90 % of these tests' time when built per test): in a
# transaction of the module's, rolled back at its end; each test runs in a savepoint of that
# transaction, rolled back when the test ends, so every test starts from the same world.


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """One event loop for the module: the one that owns the module's connection."""
    with anyio.from_thread.start_blocking_portal("asyncio") as loop:
        yield loop


@pytest.fixture(scope="module")
def world_connection(portal: BlockingPortal, async_engine: AsyncEngine) -> Iterator[AsyncConnection]:
    conn = portal.call(async_engine.connect)
    portal.call(conn.begin)
    try:
        yield conn
    finally:
        portal.call(conn.rollback)
        portal.call(conn.close)


@pytest.fixture
def connection(
    portal: BlockingPortal, world_connection: AsyncConnection, world: World
) -> Iterator[AsyncConnection]:
    """The test's connection: the module's, inside a savepoint rolled back when the test ends."""
    savepoint = portal.call(world_connection.begin_nested)
    try:
        yield world_connection
    finally:
        portal.call(savepoint.rollback)


@pytest.fixture(scope="module")
def world(portal: BlockingPortal, world_connection: AsyncConnection) -> World:
    with client_on(portal, world_connection) as client, session_on(portal, world_connection) as session:
        users = {
            "owner": stored(session, UserFactory.build(role=Role.reporter)),
            "stranger": stored(session, UserFactory.build(role=Role.reporter)),
            "agent": stored(session, UserFactory.build(role=Role.agent)),
            "admin": stored(session, UserFactory.build(role=Role.admin)),
        }
        as_agent = auth(users["agent"])
        open_ticket = create_ticket(client, auth(users["owner"]), title="Printer jammed")
        client.patch(
            f"{API}/tickets/{open_ticket['id']}", json={"assignee_id": users["agent"].id}, headers=as_agent
        )
        resolved_ticket = create_ticket(client, auth(users["owner"]), title="Wi-Fi down")
        assert (
            move(client, as_agent, resolved_ticket["id"], "resolved", resolution="Rebooted AP").status_code
            == 200
        )
        team = stored(session, TeamFactory.build())
        victim = stored(session, UserFactory.build(role=Role.agent))
        token = client.post(
            f"{API}/tokens/", json={"name": "cli", "scopes": ["tickets:read"]}, headers=as_agent
        ).json()
        token_row = session.get(ApiToken, token["id"])
        assert token_row is not None
        hook = stored(session, WebhookEndpoint(url="https://93.184.216.34/hook", secret="whsec_" + "A" * 32))
        assert hook.id is not None
        delivery = stored(
            session,
            WebhookDelivery(endpoint_id=hook.id, message_id="msg_1", event_type="webhook.test", payload="{}"),
        )
        return World(
            users,
            team,
            victim,
            open_ticket,
            resolved_ticket,
            *service_levels(session),
            token_row,
            hook,
            delivery,
        )


def t(w: World) -> int:
    return int(w.open_ticket["id"])


def r(w: World) -> int:
    return int(w.resolved_ticket["id"])


# (method, path template, path builder, body, expected for anonymous/owner/stranger/agent/admin)
MATRIX: list[tuple[str, str, Any, Any, tuple[int, int, int, int, int]]] = [
    ("POST", "/tickets/", lambda w: "/tickets/", {"title": "New"}, (401, 201, 201, 201, 201)),
    ("GET", "/tickets/", lambda w: "/tickets/", None, (401, 200, 200, 200, 200)),
    ("GET", "/tickets/{ticket_id}", lambda w: f"/tickets/{t(w)}", None, (401, 200, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}", lambda w: f"/tickets/{t(w)}", {"title": "Edited"}, (401, 403, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}/status", lambda w: f"/tickets/{t(w)}/status",
     {"status": "in_progress"}, (401, 403, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}/status", lambda w: f"/tickets/{t(w)}/status",
     {"status": "cancelled", "reason": "Duplicate"}, (401, 200, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}/status", lambda w: f"/tickets/{t(w)}/status",
     {"status": "resolved", "resolution": "Fixed"}, (401, 403, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}/status", lambda w: f"/tickets/{r(w)}/status",
     {"status": "closed"}, (401, 200, 404, 200, 200)),
    ("PATCH", "/tickets/{ticket_id}/status", lambda w: f"/tickets/{r(w)}/status",
     {"status": "in_progress", "reason": "Broken again"}, (401, 200, 404, 200, 200)),
    ("GET", "/tickets/{ticket_id}/transitions", lambda w: f"/tickets/{t(w)}/transitions", None,
     (401, 200, 404, 200, 200)),
    ("GET", "/tickets/{ticket_id}/events", lambda w: f"/tickets/{t(w)}/events", None, (401, 200, 404, 200, 200)),
    ("GET", "/tickets/{ticket_id}/sla", lambda w: f"/tickets/{t(w)}/sla", None, (401, 200, 404, 200, 200)),
    ("POST", "/tickets/{ticket_id}/comments", lambda w: f"/tickets/{t(w)}/comments", {"body": "Any news?"},
     (401, 201, 404, 201, 201)),
    ("POST", "/tickets/{ticket_id}/comments", lambda w: f"/tickets/{t(w)}/comments",
     {"body": "Check the toner", "internal": True}, (401, 403, 404, 201, 201)),
    ("GET", "/tickets/{ticket_id}/comments", lambda w: f"/tickets/{t(w)}/comments", None, (401, 200, 404, 200, 200)),
    ("DELETE", "/tickets/{ticket_id}", lambda w: f"/tickets/{t(w)}", None, (401, 403, 404, 403, 204)),
    ("GET", "/teams/", lambda w: "/teams/", None, (401, 403, 403, 200, 200)),
    ("POST", "/teams/", lambda w: "/teams/", {"name": "Brand new team"}, (401, 403, 403, 403, 201)),
    ("GET", "/teams/{team_id}", lambda w: f"/teams/{w.team.id}", None, (401, 403, 403, 200, 200)),
    ("PATCH", "/teams/{team_id}", lambda w: f"/teams/{w.team.id}", {"description": "x"}, (401, 403, 403, 403, 200)),
    ("DELETE", "/teams/{team_id}", lambda w: f"/teams/{w.team.id}", None, (401, 403, 403, 403, 204)),
    ("GET", "/users/me", lambda w: "/users/me", None, (401, 200, 200, 200, 200)),
    ("PATCH", "/users/me", lambda w: "/users/me", {"full_name": "Renamed"}, (401, 200, 200, 200, 200)),
    ("PATCH", "/users/me/password", lambda w: "/users/me/password",
     {"current_password": DEMO_PASSWORD, "new_password": "another-password"}, (401, 200, 200, 200, 200)),
    ("GET", "/users/", lambda w: "/users/", None, (401, 403, 403, 200, 200)),
    ("POST", "/users/", lambda w: "/users/", {"email": "fresh@example.com", "password": "long-enough"},
     (401, 403, 403, 403, 201)),
    ("GET", "/users/{user_id}", lambda w: f"/users/{w.victim.id}", None, (401, 403, 403, 200, 200)),
    ("PATCH", "/users/{user_id}", lambda w: f"/users/{w.victim.id}", {"role": "reporter"}, (401, 403, 403, 403, 200)),
    ("DELETE", "/users/{user_id}", lambda w: f"/users/{w.victim.id}", None, (401, 403, 403, 403, 204)),
    ("GET", "/calendars/", lambda w: "/calendars/", None, (401, 403, 403, 200, 200)),
    ("POST", "/calendars/", lambda w: "/calendars/",
     {"name": "New", "time_zone": "UTC", "working_hours": {"friday": ["08:00-12:00"]}}, (401, 403, 403, 403, 201)),
    ("GET", "/calendars/{calendar_id}", lambda w: f"/calendars/{w.calendar.id}", None, (401, 403, 403, 200, 200)),
    ("PATCH", "/calendars/{calendar_id}", lambda w: f"/calendars/{w.calendar.id}", {"name": "Renamed"},
     (401, 403, 403, 403, 200)),
    ("DELETE", "/calendars/{calendar_id}", lambda w: f"/calendars/{w.calendar.id}", None, (401, 403, 403, 403, 204)),
    ("POST", "/calendars/{calendar_id}/holidays", lambda w: f"/calendars/{w.calendar.id}/holidays",
     {"country": "FR", "year": 2026}, (401, 403, 403, 403, 200)),
    ("GET", "/sla-policies/", lambda w: "/sla-policies/", None, (401, 403, 403, 200, 200)),
    ("POST", "/sla-policies/", lambda w: "/sla-policies/",
     {"name": "Low", "position": 40, "priority": "low", "calendar_id": 1}, (401, 403, 403, 403, 201)),  # 1: "24x7"
    ("GET", "/sla-policies/{policy_id}", lambda w: f"/sla-policies/{w.policy.id}", None, (401, 403, 403, 200, 200)),
    ("PATCH", "/sla-policies/{policy_id}", lambda w: f"/sla-policies/{w.policy.id}", {"warn_at_percent": 50},
     (401, 403, 403, 403, 200)),
    ("DELETE", "/sla-policies/{policy_id}", lambda w: f"/sla-policies/{w.policy.id}", None, (401, 403, 403, 403, 204)),
    # API tokens and service accounts
    ("POST", "/tokens/", lambda w: "/tokens/", {"name": "ci", "scopes": ["tickets:read"]}, (401, 201, 201, 201, 201)),
    ("GET", "/tokens/", lambda w: "/tokens/", None, (401, 200, 200, 200, 200)),
    ("DELETE", "/tokens/{token_id}", lambda w: f"/tokens/{w.token.id}", None, (401, 404, 404, 200, 200)),
    ("POST", "/service-accounts/", lambda w: "/service-accounts/", {"email": "bot@ops.example.com"},
     (401, 403, 403, 403, 201)),
    ("GET", "/service-accounts/", lambda w: "/service-accounts/", None, (401, 403, 403, 403, 200)),
    # Webhooks (the endpoint is on a public address: nothing is sent from here)
    ("POST", "/webhooks/", lambda w: "/webhooks/", {"url": "https://93.184.216.34/hook"}, (401, 403, 403, 403, 201)),
    ("GET", "/webhooks/", lambda w: "/webhooks/", None, (401, 403, 403, 403, 200)),
    ("GET", "/webhooks/{endpoint_id}", lambda w: f"/webhooks/{w.webhook.id}", None, (401, 403, 403, 403, 200)),
    ("PATCH", "/webhooks/{endpoint_id}", lambda w: f"/webhooks/{w.webhook.id}", {"active": False},
     (401, 403, 403, 403, 200)),
    ("DELETE", "/webhooks/{endpoint_id}", lambda w: f"/webhooks/{w.webhook.id}", None, (401, 403, 403, 403, 204)),
    ("POST", "/webhooks/{endpoint_id}/rotate-secret", lambda w: f"/webhooks/{w.webhook.id}/rotate-secret", None,
     (401, 403, 403, 403, 200)),
    ("POST", "/webhooks/{endpoint_id}/test", lambda w: f"/webhooks/{w.webhook.id}/test", None,
     (401, 403, 403, 403, 202)),
    ("GET", "/webhooks/{endpoint_id}/deliveries", lambda w: f"/webhooks/{w.webhook.id}/deliveries", None,
     (401, 403, 403, 403, 200)),
    ("GET", "/webhooks/{endpoint_id}/deliveries/{delivery_id}",
     lambda w: f"/webhooks/{w.webhook.id}/deliveries/{w.delivery.id}", None, (401, 403, 403, 403, 200)),
    ("POST", "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
     lambda w: f"/webhooks/{w.webhook.id}/deliveries/{w.delivery.id}/redeliver", None, (401, 403, 403, 403, 202)),
    ("POST", "/webhooks/{endpoint_id}/replay", lambda w: f"/webhooks/{w.webhook.id}/replay",
     {"since": "2026-01-01T00:00:00Z"}, (401, 403, 403, 403, 202)),
    # Alerts from monitoring
    ("POST", "/alerts/", lambda w: "/alerts/",
     {"action": "trigger", "summary": "Disk full", "severity": "warning", "source": "db1"}, (401, 403, 403, 202, 202)),
    ("POST", "/alerts/alertmanager", lambda w: "/alerts/alertmanager",
     {"alerts": [{"status": "firing", "fingerprint": "f1"}]}, (401, 403, 403, 202, 202)),
    # Notifications: watchers, settings, account e-mails (anyone may ask for recovery or reset)
    ("GET", "/tickets/{ticket_id}/watchers", lambda w: f"/tickets/{t(w)}/watchers", None, (401, 200, 404, 200, 200)),
    ("POST", "/tickets/{ticket_id}/watchers", lambda w: f"/tickets/{t(w)}/watchers", None, (401, 200, 404, 200, 200)),
    ("DELETE", "/tickets/{ticket_id}/watchers/{user_id}", lambda w: f"/tickets/{t(w)}/watchers/{w.users['agent'].id}",
     None, (401, 403, 404, 204, 204)),
    ("GET", "/users/me/notifications", lambda w: "/users/me/notifications", None, (401, 200, 200, 200, 200)),
    ("PUT", "/users/me/notifications", lambda w: "/users/me/notifications", {"sla_warning": False},
     (401, 200, 200, 200, 200)),
    ("POST", "/password-recovery", lambda w: "/password-recovery", {"email": "someone@example.com"},
     (202, 202, 202, 202, 202)),
    ("POST", "/reset-password", lambda w: "/reset-password", {"token": "nope", "new_password": "long enough one"},
     (400, 400, 400, 400, 400)),
    # --- Notifications: the outbox (admin) ---
    ("GET", "/notifications/", lambda w: "/notifications/", None, (401, 403, 403, 403, 200)),
    ("POST", "/notifications/{notification_id}/requeue", lambda w: "/notifications/999999/requeue", None,
     (401, 403, 403, 403, 404)),  # no such notification: admins get as far as 404
]  # fmt: skip

CASES = [
    pytest.param(method, build, body, actor, expected[i], id=f"{method} {template} {body or ''} as {actor}")
    for method, template, build, body, expected in MATRIX
    for i, actor in enumerate(ACTORS)
]


@pytest.mark.parametrize(("method", "build", "body", "actor", "expected"), CASES)
def test_permission_matrix(
    client: TestClient, world: World, method: str, build: Any, body: Any, actor: str, expected: int
) -> None:
    headers = {} if actor == "anonymous" else auth(world.users[actor])
    response = client.request(method, API + build(world), json=body, headers=headers)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if expected == 404:  # the ticket (or token) is not the caller's: it does not exist for them; no
        # such notification (the outbox rows: admins get as far as 404)
        detail = error_body(response)["detail"]
        assert detail in ("Ticket not found", "Token not found", "Notification not found")
    if expected == 403:
        assert response.json()["detail"].startswith(f"{world.users[actor].role.value}s may not ")


def test_the_matrix_covers_every_endpoint() -> None:
    routes = {
        (method.upper(), path.removeprefix(API))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(API)
        for method in operations
    }
    covered = {(method, template) for method, template, *_ in MATRIX} | {("POST", "/login/access-token")}
    assert routes == covered


def test_reporters_list_only_their_own_tickets(client: TestClient, world: World) -> None:
    stranger = auth(world.users["stranger"])
    mine = create_ticket(client, stranger, title="My laptop")
    listing = client.get(f"{API}/tickets/", headers=stranger).json()
    assert listing == {"data": [mine], "count": 1, "count_exact": True, "next_cursor": None}
    owner = client.get(f"{API}/tickets/", headers=auth(world.users["owner"])).json()
    assert {t["id"] for t in owner["data"]} == {t(world), r(world)}
    agent = client.get(f"{API}/tickets/", headers=auth(world.users["agent"])).json()
    assert agent["count"] == 3


def test_reporters_cannot_assign_when_filing(client: TestClient, world: World) -> None:
    response = client.post(
        f"{API}/tickets/",
        json={"title": "x", "assignee_id": world.users["agent"].id},
        headers=auth(world.users["owner"]),
    )
    assert response.status_code == 403
    assert error_body(response) == {"detail": "reporters may not assign tickets"}


def test_reporters_see_only_their_moves(client: TestClient, world: World) -> None:
    listing = client.get(f"{API}/tickets/{r(world)}/transitions", headers=auth(world.users["owner"])).json()
    assert listing == {
        "current": "resolved",
        "transitions": [
            {"status": "closed", "requires": []},
            {"status": "in_progress", "requires": ["reason"]},
        ],
    }


# Each refusal names the role and what it may not do (the matrix above checks the prefix only).
REFUSALS: list[tuple[str, str, Any, Any, str]] = [
    ("owner", "PATCH", lambda w: f"/tickets/{t(w)}", {"title": "Edited"}, "reporters may not edit tickets"),
    ("owner", "PATCH", lambda w: f"/tickets/{t(w)}/status", {"status": "in_progress"},
     "reporters may not move this ticket to in_progress"),
    ("owner", "PATCH", lambda w: f"/tickets/{t(w)}/status", {"status": "resolved", "resolution": "Fixed"},
     "reporters may not move this ticket to resolved"),
    ("owner", "POST", lambda w: f"/tickets/{t(w)}/comments", {"body": "Toner", "internal": True},
     "reporters may not write internal notes"),
    ("owner", "DELETE", lambda w: f"/tickets/{t(w)}", None, "reporters may not delete tickets"),
    ("agent", "DELETE", lambda w: f"/tickets/{t(w)}", None, "agents may not delete tickets"),
    ("owner", "GET", lambda w: "/teams/", None, "reporters may not read teams"),
    ("agent", "POST", lambda w: "/teams/", {"name": "Brand new team"}, "agents may not manage teams"),
    ("owner", "GET", lambda w: "/users/", None, "reporters may not read users"),
    ("agent", "DELETE", lambda w: f"/users/{w.victim.id}", None, "agents may not manage users"),
    ("owner", "GET", lambda w: "/sla-policies/", None, "reporters may not read service levels"),
    ("agent", "PATCH", lambda w: f"/calendars/{w.calendar.id}", {"name": "x"}, "agents may not manage service levels"),
    # --- Notifications: the outbox (admin) ---
    ("agent", "GET", lambda w: "/notifications/", None, "agents may not manage notifications"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "method", "build", "body", "detail"),
    REFUSALS,
    ids=[case[4] for case in REFUSALS],
)
def test_each_refusal_says_what_the_role_may_not_do(
    client: TestClient, world: World, actor: str, method: str, build: Any, body: Any, detail: str
) -> None:
    response = client.request(method, API + build(world), json=body, headers=auth(world.users[actor]))
    assert response.status_code == 403, response.text
    assert error_body(response) == {"detail": detail}
