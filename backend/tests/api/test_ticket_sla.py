"""GET /tickets/{id}/sla: the policy, its calendar, each timer with its numbers, how late it is and
the pauses that moved its due time; visible exactly like the ticket; nothing written by a read."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from app import calendars
from app.crud import common, sla_clock
from app.models import Calendar, Priority, SlaPolicy, SlaTimer, TicketEvent, User
from tests.conftest import RunDb
from tests.utils import API, auth, create_ticket, move

MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC: the calendar opens
TUE = MON + timedelta(days=1)


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def office(session: Session) -> tuple[Calendar, SlaPolicy]:
    """Monday to Friday 09:00-17:00 UTC; urgent tickets: 30 min / 4 h, warned at 75%."""
    calendar = Calendar(name="Business hours", time_zone="UTC", working_hours=calendars.office_hours())
    session.add(calendar)
    session.commit()
    urgent = SlaPolicy(
        name="Urgent",
        position=1,
        priority=Priority.urgent,
        calendar_id=calendar.id,
        first_response_minutes=30,
        resolution_minutes=240,
        warn_at_percent=75,
    )
    session.add(urgent)
    session.commit()
    return calendar, urgent


Clock = Callable[[datetime], None]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    def set_time(moment: datetime) -> None:
        monkeypatch.setattr(common, "utcnow", lambda: moment)

    return set_time


def sla_of(client: TestClient, headers: dict[str, str], ticket_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/tickets/{ticket_id}/sla", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def timers(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert [t["kind"] for t in body["timers"]] == ["first_response", "resolution"]
    return {t["kind"]: t for t in body["timers"]}


def test_a_hold_over_night_moves_the_due_time_by_its_business_time(
    client: TestClient,
    clock: Clock,
    office: tuple[Calendar, SlaPolicy],
    agent: User,
    as_agent: dict[str, str],
    as_reporter: dict[str, str],
) -> None:
    calendar, policy = office
    clock(MON)
    ticket = create_ticket(client, as_reporter, priority="urgent")
    clock(MON + timedelta(minutes=10))
    assert move(client, as_agent, ticket["id"], "in_progress", assignee_id=agent.id).status_code == 200
    clock(MON + timedelta(hours=1))
    assert move(client, as_agent, ticket["id"], "on_hold", reason="Waiting for the vendor").status_code == 200

    # On hold now: the pause is open, counted up to the read (Monday 10:00 to 15:00: 5 business hours).
    clock(MON + timedelta(hours=6))
    body = sla_of(client, as_agent, ticket["id"])
    assert (body["ticket_id"], body["sla_state"], body["sla_due_at"]) == (ticket["id"], "paused", None)
    assert body["policy"]["name"] == "Urgent" and body["policy"]["id"] == policy.id
    assert body["calendar"]["name"] == "Business hours" and body["calendar"]["id"] == calendar.id
    first, resolution = timers(body)["first_response"], timers(body)["resolution"]
    assert first["state"] == "met" and first["met_at"] == at(MON + timedelta(minutes=10))
    assert first["late_seconds"] is None and first["pauses"] == []
    assert resolution["state"] == "paused" and resolution["paused_since"] == at(MON + timedelta(hours=1))
    assert resolution["pauses"] == [
        {
            "started_at": at(MON + timedelta(hours=1)),
            "ended_at": None,
            "reason": "on_hold",
            "business_seconds": 5 * 3600,
        }
    ]

    # Resumed Tuesday 10:00: 18 hours on hold, 8 of them business hours; the due time moved out by
    # exactly those (Monday 13:00 becomes Tuesday 13:00: 1 h counted on Monday, 3 h left).
    clock(TUE + timedelta(hours=1))
    assert move(client, as_agent, ticket["id"], "in_progress").status_code == 200
    clock(TUE + timedelta(hours=1, minutes=30))
    body = sla_of(client, as_agent, ticket["id"])
    resolution = timers(body)["resolution"]
    assert (body["sla_state"], body["sla_due_at"]) == ("running", at(TUE + timedelta(hours=4)))
    assert resolution["state"] == "running" and resolution["due_at"] == at(TUE + timedelta(hours=4))
    assert resolution["paused_seconds"] == 8 * 3600 and resolution["paused_since"] is None
    assert resolution["started_at"] == at(MON) and resolution["target_minutes"] == 240
    assert resolution["pauses"] == [
        {
            "started_at": at(MON + timedelta(hours=1)),
            "ended_at": at(TUE + timedelta(hours=1)),
            "reason": "on_hold",
            "business_seconds": 8 * 3600,
        }
    ]
    assert resolution["late_seconds"] is None


def test_a_breach_and_a_late_resolve_say_how_late(
    client: TestClient,
    run_db: RunDb,
    clock: Clock,
    office: tuple[Calendar, SlaPolicy],
    agent: User,
    as_agent: dict[str, str],
    as_reporter: dict[str, str],
) -> None:
    clock(MON)
    ticket = create_ticket(client, as_reporter, priority="urgent")
    clock(MON + timedelta(hours=4, minutes=30))
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 1  # warnings and breaches recorded
    clock(MON + timedelta(hours=5))
    body = sla_of(client, as_agent, ticket["id"])
    first, resolution = timers(body)["first_response"], timers(body)["resolution"]
    assert (body["sla_state"], body["sla_due_at"]) == ("breached", at(MON + timedelta(minutes=30)))
    assert first["state"] == "breached" and first["breached_at"] == at(MON + timedelta(minutes=30))
    assert first["late_seconds"] == 4 * 3600 + 30 * 60  # so far
    assert resolution["state"] == "breached" and resolution["late_seconds"] == 3600
    assert resolution["warned_at"] == at(MON + timedelta(hours=3))

    clock(MON + timedelta(hours=5, minutes=30))
    assert move(client, as_agent, ticket["id"], "in_progress", assignee_id=agent.id).status_code == 200
    clock(MON + timedelta(hours=6))
    assert (
        move(client, as_agent, ticket["id"], "resolved", resolution="Replaced the switch").status_code == 200
    )
    clock(TUE)
    body = sla_of(client, as_reporter, ticket["id"])
    first, resolution = timers(body)["first_response"], timers(body)["resolution"]
    assert (body["sla_state"], body["sla_due_at"]) == ("breached", None)
    assert first["state"] == "met_late" and first["late_seconds"] == 5 * 3600
    assert resolution["state"] == "met_late" and resolution["late_seconds"] == 2 * 3600
    assert resolution["met_at"] == at(MON + timedelta(hours=6))


def test_visible_like_the_ticket_and_nothing_written(
    client: TestClient,
    session: Session,
    clock: Clock,
    office: tuple[Calendar, SlaPolicy],
    as_agent: dict[str, str],
    as_reporter: dict[str, str],
    other_reporter: User,
) -> None:
    clock(MON)
    ticket = create_ticket(client, as_reporter, priority="urgent")

    def written() -> tuple[Any, ...]:
        events = session.exec(select(func.count()).select_from(TicketEvent)).one()
        stored = session.exec(select(SlaTimer.state, SlaTimer.due_at, SlaTimer.paused_seconds)).all()
        return events, sorted(map(tuple, stored))

    before = written()
    clock(TUE)  # long past the due times: a read records no breach (the clock does)
    mine = sla_of(client, as_reporter, ticket["id"])
    assert mine == sla_of(client, as_agent, ticket["id"])
    assert mine["sla_state"] == "running" and {t["state"] for t in mine["timers"]} == {"running"}
    assert written() == before
    for missing in (ticket["id"], 999_999):
        headers = auth(other_reporter) if missing == ticket["id"] else as_agent
        response = client.get(f"{API}/tickets/{missing}/sla", headers=headers)
        assert response.status_code == 404
        assert response.json()["detail"] == "Ticket not found"


def test_a_ticket_no_policy_applies_to(
    client: TestClient, clock: Clock, office: tuple[Calendar, SlaPolicy], as_reporter: dict[str, str]
) -> None:
    clock(MON)
    ticket = create_ticket(client, as_reporter, priority="low")
    assert sla_of(client, as_reporter, ticket["id"]) == {
        "ticket_id": ticket["id"],
        "sla_state": "none",
        "sla_due_at": None,
        "policy": None,
        "calendar": None,
        "timers": [],
    }


def test_a_priority_change_attaches_the_policy_from_the_creation(
    client: TestClient, clock: Clock, office: tuple[Calendar, SlaPolicy], as_agent: dict[str, str]
) -> None:
    clock(MON)
    ticket = create_ticket(client, as_agent, priority="high")  # no policy for high here
    assert sla_of(client, as_agent, ticket["id"])["timers"] == []
    clock(MON + timedelta(hours=1))
    response = client.patch(f"{API}/tickets/{ticket['id']}", json={"priority": "urgent"}, headers=as_agent)
    assert response.status_code == 200, response.text
    assert (response.json()["sla_state"], response.json()["sla_due_at"]) == (
        "breached",
        at(MON + timedelta(minutes=30)),
    )
    body = sla_of(client, as_agent, ticket["id"])
    first, resolution = timers(body)["first_response"], timers(body)["resolution"]
    assert body["policy"]["name"] == "Urgent"
    # Counted from the creation, not from the change: the first response was already 30 min late.
    assert first["started_at"] == at(MON) and first["state"] == "breached" and first["late_seconds"] == 1800
    assert resolution["due_at"] == at(MON + timedelta(hours=4)) and resolution["late_seconds"] is None
