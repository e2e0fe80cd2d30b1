"""SLA warnings and breaches recorded by the worker's clock (writes without an actor) queue their
notifications: to the assignee, or, unassigned, to the active agents and admins of the team."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.core.clock import utcnow
from app.core.database import Database
from app.crud import common, sla_clock, tickets
from app.models import (
    EventAction,
    Notification,
    NotificationKind,
    NotificationSetting,
    Role,
    TicketCreate,
    TicketEvent,
    User,
)
from tests.conftest import MakeUser, RunDb
from tests.worker.conftest import add_policy


def file_ticket(
    run_db: RunDb, monkeypatch: pytest.MonkeyPatch, by: User, *, ago: timedelta, **fields: Any
) -> int:
    async def work(db: Database) -> int:
        with monkeypatch.context() as patch:
            patch.setattr(common, "utcnow", lambda: utcnow() - ago)
            ticket = await tickets.create_ticket(
                db=db, ticket_in=TicketCreate(title="Mail queue stuck", **fields), reporter=by
            )
        assert ticket.id is not None
        return ticket.id

    result: int = run_db(work)
    return result


def sla_rows(session: Session, ticket_id: int) -> list[tuple[str, int, dict[str, Any]]]:
    rows = session.exec(
        select(Notification)
        .where(
            Notification.ticket_id == ticket_id, col(Notification.kind).in_(["sla_warning", "sla_breached"])
        )
        .order_by(col(Notification.id))
    ).all()
    return [(row.kind.value, row.recipient_id, json.loads(row.payload)) for row in rows]


def sla_event(session: Session, ticket_id: int, action: EventAction) -> TicketEvent:
    return session.exec(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
    ).one()


def test_the_clock_tells_the_assignee_of_a_warning_then_a_breach(
    run_db: RunDb,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    agent: User,
    agent2: User,
) -> None:
    run_db(lambda db: add_policy(db, resolution=60, warn_at_percent=75))
    tid = file_ticket(run_db, monkeypatch, agent, ago=timedelta(minutes=50), assignee_id=agent2.id)
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 1
    warning = sla_event(session, tid, EventAction.sla_warning)
    assert warning.actor_id is None and warning.new_value is not None
    expected = (
        "sla_warning",
        agent2.id,
        {"event_id": warning.id, "timer": "resolution", "due_at": warning.new_value},
    )
    assert sla_rows(session, tid) == [expected]

    with monkeypatch.context() as patch:
        patch.setattr(common, "utcnow", lambda: utcnow() + timedelta(minutes=15))
        assert run_db(lambda db: sla_clock.clock_pass(db, now=common.utcnow())) == 1
    breach = sla_event(session, tid, EventAction.sla_breached)
    assert sla_rows(session, tid) == [
        expected,
        (
            "sla_breached",
            agent2.id,
            {"event_id": breach.id, "timer": "resolution", "due_at": breach.new_value},
        ),
    ]


def test_an_unassigned_tickets_breach_goes_to_its_teams_active_agents_and_admins(
    run_db: RunDb,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    make_user: MakeUser,
    make_team: Any,
    reporter: User,
) -> None:
    team, other = make_team(), make_team()
    told = [make_user(Role.agent, team_id=team.id), make_user(Role.admin, team_id=team.id)]
    make_user(Role.agent, team_id=team.id, is_active=False)
    make_user(Role.reporter, team_id=team.id)
    make_user(Role.agent, team_id=other.id)
    opted_out = make_user(Role.agent, team_id=team.id)
    session.add(NotificationSetting(user_id=opted_out.id, kind=NotificationKind.sla_breached, enabled=False))
    session.commit()
    run_db(lambda db: add_policy(db, resolution=60, warn_at_percent=None))
    tid = file_ticket(run_db, monkeypatch, reporter, ago=timedelta(hours=2), team_id=team.id)
    no_team = file_ticket(run_db, monkeypatch, reporter, ago=timedelta(hours=2))
    assert run_db(lambda db: sla_clock.clock_pass(db)) == 2
    breach = sla_event(session, tid, EventAction.sla_breached)
    payload = {"event_id": breach.id, "timer": "resolution", "due_at": breach.new_value}
    ids = sorted(user.id for user in told if user.id is not None)
    queued = sla_rows(session, tid)
    assert [row for row in queued if row[0] == "sla_breached"] == [("sla_breached", i, payload) for i in ids]
    # the warning point passed in the same pass: the same people, and the one who only
    # switched breaches off
    warned = sorted(to for kind, to, _ in queued if kind == "sla_warning")
    assert warned == sorted([*ids, opted_out.id])
    assert sla_rows(session, no_team) == []  # no assignee, no team: nobody to tell
