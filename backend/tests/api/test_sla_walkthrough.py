"""USAGE.md's "Walkthrough: one ticket's SLA", replayed step by step with the values it shows:
the default policies (`db sla-defaults`), an urgent ticket filed Monday 09:00, on hold overnight,
warned and breached by the worker, resolved late."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.crud import common, sla_admin, sla_clock
from app.models import User
from tests.conftest import RunDb
from tests.utils import API, create_ticket, move

Headers = dict[str, str]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_the_walkthrough_in_usage(
    client: TestClient,
    as_agent: Headers,
    as_reporter: Headers,
    agent: User,
    run_db: RunDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [at(2, 9)]
    monkeypatch.setattr(common, "utcnow", lambda: now[0])
    run_db(lambda db: sla_admin.install_defaults(db=db, time_zone="UTC"))

    def ticket() -> dict[str, Any]:
        return dict(client.get(f"{API}/tickets/{ticket_id}", headers=as_agent).json())

    def worker_at(moment: datetime) -> int:
        now[0] = moment
        return int(run_db(lambda db: sla_clock.clock_pass(db)))

    # 1. Monday 09:00: an urgent ticket is filed.
    filed = create_ticket(client, as_reporter, title="Payroll export fails", priority="urgent")
    ticket_id = filed["id"]
    assert (filed["sla_state"], filed["sla_due_at"]) == ("running", "2026-03-02T09:30:00Z")
    # 2. 09:10: an agent takes it (first response met); the resolution is due 13:00.
    now[0] = at(2, 9, 10)
    assert move(client, as_agent, ticket_id, "in_progress", assignee_id=agent.id).status_code == 200
    assert (ticket()["sla_state"], ticket()["sla_due_at"]) == ("running", "2026-03-02T13:00:00Z")
    # 3. 10:00: on hold, waiting for the vendor: the clock stops.
    now[0] = at(2, 10)
    assert move(client, as_agent, ticket_id, "on_hold", reason="Waiting for the vendor").status_code == 200
    assert (ticket()["sla_state"], ticket()["sla_due_at"]) == ("paused", None)
    # 4. Tuesday 10:00: back in progress; 8 business hours on hold move the due time to 13:00.
    now[0] = at(3, 10)
    assert move(client, as_agent, ticket_id, "in_progress").status_code == 200
    assert (ticket()["sla_state"], ticket()["sla_due_at"]) == ("running", "2026-03-03T13:00:00Z")
    # 5. The worker: the warning at 12:00 (75 % of 4 business hours), the breach at 13:00.
    assert worker_at(at(3, 11, 59)) == 0
    assert (
        worker_at(
            at(
                3,
                12,
                0,
            )
        )
        == 1
    )
    assert ticket()["sla_state"] == "at_risk"
    assert worker_at(at(3, 13, 0)) == 1
    assert (ticket()["sla_state"], ticket()["sla_due_at"]) == ("breached", "2026-03-03T13:00:00Z")
    # 6. 14:00: resolved, an hour late.
    now[0] = at(3, 14)
    assert move(client, as_agent, ticket_id, "resolved", resolution="Vendor patch applied").status_code == 200
    assert (ticket()["sla_state"], ticket()["sla_due_at"]) == ("breached", None)

    sla = client.get(f"{API}/tickets/{ticket_id}/sla", headers=as_reporter).json()
    assert sla["policy"]["name"] == "Urgent"
    assert sla["calendar"]["name"] == "Business hours"
    first, resolution = sla["timers"]
    assert (first["kind"], first["state"], first["met_at"], first["late_seconds"]) == (
        "first_response",
        "met",
        "2026-03-02T09:10:00Z",
        None,
    )
    assert {key: resolution[key] for key in ("state", "due_at", "warned_at", "breached_at", "met_at")} == {
        "state": "met_late",
        "due_at": "2026-03-03T13:00:00Z",
        "warned_at": "2026-03-03T12:00:00Z",
        "breached_at": "2026-03-03T13:00:00Z",
        "met_at": "2026-03-03T14:00:00Z",
    }
    assert (resolution["late_seconds"], resolution["paused_seconds"]) == (3600, 28800)
    assert resolution["pauses"] == [
        {
            "started_at": "2026-03-02T10:00:00Z",
            "ended_at": "2026-03-03T10:00:00Z",
            "reason": "on_hold",
            "business_seconds": 28800,
        }
    ]
    events = client.get(f"{API}/tickets/{ticket_id}/events?limit=100", headers=as_agent).json()["data"]
    trail = [(e["action"], e["field"], e["reason"]) for e in events if e["action"].startswith("sla_")]
    assert trail == [
        (
            "sla_attached",
            "first_response",
            "policy 'Urgent': 30 business minutes on calendar 'Business hours'",
        ),
        ("sla_attached", "resolution", "policy 'Urgent': 240 business minutes on calendar 'Business hours'"),
        ("sla_met", "first_response", "met 20 min early"),
        ("sla_paused", "resolution", "ticket on_hold"),
        ("sla_resumed", "resolution", "paused (on_hold) for 8 h 00 min of business time"),
        ("sla_warning", "resolution", "warning point passed"),
        ("sla_breached", "resolution", "due time passed"),
        ("sla_met", "resolution", "met 1 h 00 min late"),
    ]
