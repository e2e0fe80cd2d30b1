"""Service levels through the API: each rule of issue [6/8] as a ticket lives it (create, assign,
hold, resume, comment, resolve, reopen, cancel, re-prioritize), with the audit trail that explains
every due time. Policies are rows made here (the admin endpoints have their own tests); time moves
with app.crud.common.utcnow; the SLA clock runs as the worker runs it (app.crud.sla_clock)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import calendars
from app.crud import common, sla_clock
from app.models import Calendar, Priority, SlaPolicy, User
from tests.conftest import RunDb
from tests.utils import API, create_ticket, move

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, 08:00 UTC
Headers = dict[str, str]


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        monkeypatch.setattr(common, "utcnow", lambda: self.now)

    def at(self, hours: float) -> None:
        self.now = h(hours)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def add_policy(session: Session, **fields: Any) -> SlaPolicy:
    calendar = session.exec(select(Calendar).where(Calendar.name == calendars.BUILTIN_NAME)).one()
    fields.setdefault("name", f"policy {fields.get('position', 1)}")
    fields.setdefault("position", 1)
    fields.setdefault("calendar_id", calendar.id)
    policy = SlaPolicy(**fields)
    session.add(policy)
    session.commit()
    return policy


@pytest.fixture
def urgent(session: Session) -> SlaPolicy:
    """Urgent tickets: first response in 30 min, resolved in 4 h, round the clock; warn at 75 %."""
    return add_policy(
        session,
        name="Urgent",
        position=10,
        priority=Priority.urgent,
        first_response_minutes=30,
        resolution_minutes=240,
    )


@pytest.fixture
def fallback(session: Session) -> SlaPolicy:
    return add_policy(
        session, name="Everything else", position=100, first_response_minutes=240, resolution_minutes=2400
    )


def sla_events(client: TestClient, headers: Headers, ticket_id: int) -> list[tuple[Any, ...]]:
    response = client.get(f"{API}/tickets/{ticket_id}/events?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return [
        (e["action"], e["field"], e["old_value"], e["new_value"], e["actor_id"] is None)
        for e in response.json()["data"]
        if e["action"].startswith("sla_")
    ]


def ticket(client: TestClient, headers: Headers, ticket_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/tickets/{ticket_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def file_urgent(
    client: TestClient, as_agent: Headers, agent: User, clock: Clock, urgent: SlaPolicy
) -> Callable[[], int]:
    def file() -> int:
        clock.at(0)
        return int(create_ticket(client, as_agent, priority="urgent", assignee_id=agent.id)["id"])

    return file


def test_a_ticket_gets_its_policy_at_creation(
    client: TestClient, as_agent: Headers, file_urgent: Callable[[], int], fallback: SlaPolicy
) -> None:
    ticket_id = file_urgent()
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"]) == ("running", iso(h(0.5)))
    assert sla_events(client, as_agent, ticket_id) == [
        ("sla_attached", "first_response", None, h(0.5).isoformat(), False),
        ("sla_attached", "resolution", None, h(4).isoformat(), False),
    ]
    other = create_ticket(client, as_agent, priority="low")
    assert other["sla_state"] == "running"
    assert other["sla_due_at"] == iso(h(4))  # the fallback's 240 min first response


def test_no_policy_no_timers(client: TestClient, as_agent: Headers, clock: Clock, urgent: SlaPolicy) -> None:
    body = create_ticket(client, as_agent, priority="low")
    assert (body["sla_state"], body["sla_due_at"]) == ("none", None)
    assert sla_events(client, as_agent, body["id"]) == []


def test_the_first_move_to_in_progress_meets_the_first_response(
    client: TestClient, as_agent: Headers, clock: Clock, file_urgent: Callable[[], int]
) -> None:
    ticket_id = file_urgent()
    clock.at(0.25)
    assert move(client, as_agent, ticket_id, "in_progress").status_code == 200
    assert sla_events(client, as_agent, ticket_id)[-1] == (
        "sla_met",
        "first_response",
        h(0.5).isoformat(),
        h(0.5).isoformat(),
        False,
    )
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"]) == ("running", iso(h(4)))


def test_only_a_public_comment_by_an_agent_or_admin_meets_the_first_response(
    client: TestClient,
    as_agent: Headers,
    as_reporter: Headers,
    reporter: User,
    clock: Clock,
    urgent: SlaPolicy,
) -> None:
    clock.at(0)
    ticket_id = create_ticket(client, as_reporter, priority="urgent")["id"]
    version = ticket(client, as_agent, ticket_id)["version"]
    clock.at(0.1)
    assert (
        client.post(
            f"{API}/tickets/{ticket_id}/comments", json={"body": "any news?"}, headers=as_reporter
        ).status_code
        == 201
    )
    clock.at(0.2)
    note = {"body": "looking at the logs", "internal": True}
    assert client.post(f"{API}/tickets/{ticket_id}/comments", json=note, headers=as_agent).status_code == 201
    assert [e[0] for e in sla_events(client, as_agent, ticket_id)] == ["sla_attached", "sla_attached"]
    assert ticket(client, as_agent, ticket_id)["version"] == version
    clock.at(0.3)
    reply = {"body": "We are on it."}
    assert client.post(f"{API}/tickets/{ticket_id}/comments", json=reply, headers=as_agent).status_code == 201
    events = sla_events(client, as_agent, ticket_id)
    assert events[-1] == ("sla_met", "first_response", h(0.5).isoformat(), h(0.5).isoformat(), False)
    body = ticket(client, as_reporter, ticket_id)
    assert body["version"] == version + 1  # the ticket reads differently: a new version
    assert (body["sla_state"], body["sla_due_at"]) == ("running", iso(h(4)))


def test_on_hold_pauses_and_the_due_time_moves_out_by_the_hold_several_holds_add_up(
    client: TestClient, as_agent: Headers, clock: Clock, file_urgent: Callable[[], int]
) -> None:
    ticket_id = file_urgent()
    clock.at(0.25)
    move(client, as_agent, ticket_id, "in_progress")
    clock.at(1)
    assert move(client, as_agent, ticket_id, "on_hold", reason="waiting for the vendor").status_code == 200
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"]) == ("paused", None)
    clock.at(3)
    move(client, as_agent, ticket_id, "in_progress")
    assert ticket(client, as_agent, ticket_id)["sla_due_at"] == iso(h(6))
    clock.at(3.5)
    move(client, as_agent, ticket_id, "on_hold", reason="again")
    clock.at(4)
    move(client, as_agent, ticket_id, "in_progress")
    assert ticket(client, as_agent, ticket_id)["sla_due_at"] == iso(h(6.5))
    assert [e[:4] for e in sla_events(client, as_agent, ticket_id)[3:]] == [
        ("sla_paused", "resolution", h(4).isoformat(), None),
        ("sla_resumed", "resolution", h(4).isoformat(), h(6).isoformat()),
        ("sla_paused", "resolution", h(6).isoformat(), None),
        ("sla_resumed", "resolution", h(6).isoformat(), h(6.5).isoformat()),
    ]


def test_the_clock_records_the_warning_then_the_breach_once_and_a_late_resolve_is_met_late(
    client: TestClient, as_agent: Headers, clock: Clock, file_urgent: Callable[[], int], run_db: RunDb
) -> None:
    ticket_id = file_urgent()
    clock.at(0.25)
    move(client, as_agent, ticket_id, "in_progress")
    version = ticket(client, as_agent, ticket_id)["version"]
    clock.at(2.9)
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 0  # nothing due yet
    clock.at(3.1)
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 1
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["version"]) == ("at_risk", version + 1)
    clock.at(4.5)
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 1
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 0  # recorded once
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"], body["version"]) == ("breached", iso(h(4)), version + 2)
    clock.at(5)
    assert move(client, as_agent, ticket_id, "resolved", resolution="Replaced the switch").status_code == 200
    assert sla_events(client, as_agent, ticket_id)[3:] == [
        ("sla_warning", "resolution", None, h(4).isoformat(), True),
        ("sla_breached", "resolution", None, h(4).isoformat(), True),
        ("sla_met", "resolution", h(4).isoformat(), h(4).isoformat(), False),
    ]
    sla = client.get(f"{API}/tickets/{ticket_id}/events?limit=100", headers=as_agent).json()["data"][-1]
    assert sla["reason"] == "met 1 h 00 min late"
    assert ticket(client, as_agent, ticket_id)["sla_state"] == "breached"


def test_a_reopen_resumes_the_resolution_timer_with_its_elapsed_time_kept(
    client: TestClient,
    as_agent: Headers,
    as_reporter: Headers,
    reporter: User,
    clock: Clock,
    urgent: SlaPolicy,
    agent: User,
) -> None:
    clock.at(0)
    ticket_id = create_ticket(client, as_reporter, priority="urgent")["id"]
    clock.at(0.25)
    move(client, as_agent, ticket_id, "in_progress", assignee_id=agent.id)
    clock.at(1)
    move(client, as_agent, ticket_id, "resolved", resolution="Restarted the VPN gateway")
    assert ticket(client, as_agent, ticket_id)["sla_state"] == "met"
    clock.at(5)
    assert move(client, as_reporter, ticket_id, "in_progress", reason="It drops again").status_code == 200
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"]) == ("running", iso(h(8)))
    assert sla_events(client, as_agent, ticket_id)[-1][:4] == (
        "sla_resumed",
        "resolution",
        h(4).isoformat(),
        h(8).isoformat(),
    )


def test_cancelling_cancels_the_running_timers(
    client: TestClient, as_agent: Headers, clock: Clock, file_urgent: Callable[[], int]
) -> None:
    ticket_id = file_urgent()
    clock.at(0.1)
    assert move(client, as_agent, ticket_id, "cancelled", reason="duplicate").status_code == 200
    body = ticket(client, as_agent, ticket_id)
    assert (body["sla_state"], body["sla_due_at"]) == ("cancelled", None)
    assert [e[:2] for e in sla_events(client, as_agent, ticket_id)[2:]] == [
        ("sla_cancelled", "first_response"),
        ("sla_cancelled", "resolution"),
    ]


def test_a_priority_change_rechooses_the_policy_from_creation_keeping_the_pauses(
    client: TestClient, as_agent: Headers, clock: Clock, file_urgent: Callable[[], int], fallback: SlaPolicy
) -> None:
    ticket_id = file_urgent()
    clock.at(0.25)
    move(client, as_agent, ticket_id, "in_progress")
    clock.at(1)
    move(client, as_agent, ticket_id, "on_hold", reason="waiting")
    clock.at(3)
    move(client, as_agent, ticket_id, "in_progress")
    clock.at(3.5)
    assert (
        client.patch(f"{API}/tickets/{ticket_id}", json={"priority": "low"}, headers=as_agent).status_code
        == 200
    )
    body = ticket(client, as_agent, ticket_id)
    assert body["sla_due_at"] == iso(h(40 + 2))  # the fallback's 2,400 min from creation + the 2 h hold
    assert sla_events(client, as_agent, ticket_id)[-1][:4] == (
        "sla_recomputed",
        "resolution",
        h(6).isoformat(),
        h(42).isoformat(),
    )
    clock.at(4)
    assert (
        client.patch(f"{API}/tickets/{ticket_id}", json={"priority": "urgent"}, headers=as_agent).status_code
        == 200
    )
    assert ticket(client, as_agent, ticket_id)["sla_due_at"] == iso(h(6))  # back: the hold still counts
