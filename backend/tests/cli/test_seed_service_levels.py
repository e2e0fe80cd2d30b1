"""Seeded service levels agree with the seeded histories: the request path's own code (the policies,
facts and stored timers app.crud.sla_timers loads; app.sla's rules) rebuilds every ticket's timers
at the anchor and finds exactly what is stored, and nothing left to record; the audit trail holds
the events the API and the SLA clock would have written, where they would have written them."""

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from app import sla
from app.cli import app
from app.core import database
from app.core.config import get_settings
from app.crud import sla_timers
from app.models import Calendar, EventAction, SlaPolicy, SlaState, Ticket, TicketEvent, TimerKind, TimerState
from app.seed import DEFAULT_ANCHOR
from tests.cli.conftest import Seeded

TIMER_FIELDS = (
    "policy_id",
    "target_minutes",
    "state",
    "started_at",
    "due_at",
    "warn_at",
    "warned_at",
    "breached_at",
    "met_at",
    "paused_since",
    "next_check_at",
)


async def _rebuild(url: str) -> dict[str, Any]:
    engine = database.create_async_db_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            policies = await sla_timers.load_policies(session)
            tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
            result: dict[int, Any] = {}
            for ticket in tickets:
                assert ticket.id is not None
                facts = await sla_timers.load_facts(session, ticket)
                policy = sla.choose_policy(policies, ticket.priority, ticket.team_id)
                stored = await sla_timers.stored_timers(session, ticket.id)
                result[ticket.id] = (
                    ticket,
                    policy,
                    facts,
                    sla.evaluate(policy, facts, DEFAULT_ANCHOR),
                    stored,
                )
            events: dict[int, list[TicketEvent]] = defaultdict(list)
            for event in (await session.exec(select(TicketEvent).order_by(col(TicketEvent.id)))).all():
                events[event.ticket_id].append(event)
            calendars = (await session.exec(select(Calendar).order_by(col(Calendar.id)))).all()
            rows = (await session.exec(select(SlaPolicy).order_by(col(SlaPolicy.position)))).all()
            return {"tickets": result, "events": events, "calendars": calendars, "policies": rows}
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def rebuilt(seeded: Seeded) -> dict[str, Any]:
    assert seeded.result.exit_code == 0, seeded.result.output
    return asyncio.run(_rebuild(seeded.url))


def test_the_default_calendar_and_policies_are_installed(rebuilt: dict[str, Any]) -> None:
    builtin, business = rebuilt["calendars"]
    assert (builtin.name, builtin.builtin) == ("24x7", True)
    assert (business.name, business.builtin) == (sla.DEFAULT_CALENDAR, False)
    assert business.time_zone == get_settings().SLA_TIME_ZONE
    assert business.working_hours == {
        day: ["09:00-17:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    }
    assert [
        (
            p.name,
            p.position,
            p.priority,
            p.first_response_minutes,
            p.resolution_minutes,
            p.warn_at_percent,
            p.calendar_id,
            p.team_id,
        )
        for p in rebuilt["policies"]
    ] == [
        (
            d.name,
            # The positions `db sla-defaults` gives them (USAGE.md's table): 10, 20, 30, 40.
            (10, 20, 30, 40)[sla.DEFAULT_POLICIES.index(d)],
            d.priority,
            d.first_response_minutes,
            d.resolution_minutes,
            sla.DEFAULT_WARN_AT_PERCENT,
            business.id,
            None,
        )
        for d in sla.DEFAULT_POLICIES
    ]


def test_the_request_path_rebuilds_exactly_the_stored_timers(rebuilt: dict[str, Any]) -> None:
    assert_agree(rebuilt)


def test_a_calendar_in_another_time_zone_agrees_too(
    runner: CliRunner, scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SLA_TIME_ZONE puts the business hours in New York (with its DST changes in the year)."""
    monkeypatch.setenv("SLA_TIME_ZONE", "America/New_York")
    get_settings.cache_clear()
    try:
        args = ["seed", "--yes", "--tickets", "80", "--users", "20", "--teams", "2", "--seed", "5"]
        result = runner.invoke(app, args)
    finally:
        monkeypatch.delenv("SLA_TIME_ZONE")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rebuilt = asyncio.run(_rebuild(scratch_url))
    assert rebuilt["calendars"][1].time_zone == "America/New_York"
    assert_agree(rebuilt)


def assert_agree(rebuilt: dict[str, Any]) -> None:
    for ticket_id, (ticket, policy, _facts, timers, stored) in rebuilt["tickets"].items():
        assert policy is not None and set(stored) == set(timers) == set(TimerKind), ticket_id
        for kind, timer in timers.items():
            row = stored[kind]
            assert {f: getattr(row, f) for f in TIMER_FIELDS} == {
                f: getattr(timer, f) for f in TIMER_FIELDS
            }, (
                ticket_id,
                kind,
            )
            assert row.paused_seconds == int(timer.paused.total_seconds()), (ticket_id, kind)
        # Nothing left for a request or the clock to record, and the ticket's summary is the rules'.
        as_stored = {kind: sla.Stored.of(row) for kind, row in stored.items()}
        assert sla.changes(as_stored, timers, policy) == [], ticket_id
        assert (ticket.sla_state, ticket.sla_due_at) == sla.summary(timers.values()), ticket_id


def test_holds_pause_and_late_resolutions_are_met_late(rebuilt: dict[str, Any]) -> None:
    states: dict[Any, int] = defaultdict(int)
    paused = 0
    for ticket, _policy, facts, timers, _stored in rebuilt["tickets"].values():
        states[ticket.sla_state] += 1
        resolution = timers[TimerKind.resolution]
        # Each hold is a pause of the resolution timer, from the move on hold to the move off it.
        holds = [at for at, status in facts.moves if status == "on_hold"]
        assert [p.started_at for p in resolution.pauses if p.reason == "on_hold"] == holds, ticket.id
        if resolution.paused.total_seconds() > 0:
            paused += 1
        if resolution.met_at is not None:
            late = resolution.met_at > resolution.due_at
            assert resolution.state == (TimerState.met_late if late else TimerState.met)
    assert paused > 0
    assert states[SlaState.breached] > 0 and states[SlaState.met] > 0
    assert sum(states.values()) == len(rebuilt["tickets"])


def test_the_trail_holds_the_events_where_the_api_and_the_clock_write_them(rebuilt: dict[str, Any]) -> None:
    for ticket_id, (ticket, _policy, _facts, timers, _stored) in rebuilt["tickets"].items():
        events: list[TicketEvent] = rebuilt["events"][ticket_id]
        service = [e for e in events if e.action.startswith("sla_")]
        attached = [e for e in service if e.action == EventAction.sla_attached]
        assert [(e.field, e.ticket_version, e.actor_id) for e in attached] == [
            ("first_response", 1, ticket.reporter_id),
            ("resolution", 1, ticket.reporter_id),
        ], ticket_id
        by_version: dict[int, list[TicketEvent]] = defaultdict(list)
        for event in events:
            by_version[event.ticket_version].append(event)
        for event in service:
            if event.actor_id is None:  # the clock's: a version of its own, a warning or a breach
                assert event.action in (EventAction.sla_warning, EventAction.sla_breached), ticket_id
                assert all(e.actor_id is None for e in by_version[event.ticket_version][:1]), ticket_id
                assert by_version[event.ticket_version][0].action.startswith("sla_"), ticket_id
        for kind, timer in timers.items():
            mine = [e for e in service if e.field == kind.value]
            actions = [e.action for e in mine]
            if timer.breached_at is not None:
                assert EventAction.sla_breached in actions, (ticket_id, kind)
            if timer.warned_at is not None:
                assert EventAction.sla_warning in actions, (ticket_id, kind)
            if timer.state in (TimerState.met, TimerState.met_late):
                # Recorded when it was met (the last resolve), or later if a priority change re-judged it.
                met = [e for e in mine if e.action == EventAction.sla_met]
                assert met and met[-1].created_at >= timer.met_at, (ticket_id, kind)
            for event in mine:
                if event.action == EventAction.sla_breached and event.actor_id is None:
                    # The clock records a breach at the due time it passed (its new value). At the
                    # anchor: a paused timer whose frozen due time passed, which app.sla calls breached.
                    due = datetime.fromisoformat(event.new_value or "")
                    assert event.created_at == due or (
                        event.created_at == DEFAULT_ANCHOR and timer.paused_since
                    ), (
                        ticket_id,
                        kind,
                    )
