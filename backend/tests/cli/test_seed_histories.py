"""Seeded data looks like the API made it: every ticket's events replay to the ticket's state."""

from collections import defaultdict
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app import crud, lifecycle
from app.core.config import get_settings
from app.models import Comment, Role, Team, Ticket, TicketEvent, TicketStatus, User
from tests.cli.conftest import Seeded

S = TicketStatus


FIRST_ADMIN = get_settings().FIRST_SUPERUSER


@pytest.fixture(scope="module")
def data(seeded: Seeded) -> dict[str, Any]:
    assert seeded.result.exit_code == 0, seeded.result.output
    with Session(seeded.engine) as session:
        events: dict[int, list[TicketEvent]] = defaultdict(list)
        for event in session.exec(select(TicketEvent).order_by(col(TicketEvent.id))):
            events[event.ticket_id].append(event)
        return {
            "teams": session.exec(select(Team)).all(),
            # The seeded users: the first admin from the settings is made after them (as prestart would).
            "users": {u.id: u for u in session.exec(select(User).where(User.email != FIRST_ADMIN))},
            "tickets": session.exec(select(Ticket).order_by(col(Ticket.id))).all(),
            "comments": {c.id: c for c in session.exec(select(Comment))},
            "events": events,
        }


def test_every_role_across_several_teams(data: dict[str, Any]) -> None:
    users: dict[int, User] = data["users"]
    assert {u.role for u in users.values()} == set(Role)
    assert len({u.team_id for u in users.values()}) >= 2
    assert all(u.team_id is not None for u in users.values())
    assert len({t.name for t in data["teams"]}) == len(data["teams"])
    assert len({u.email for u in users.values()}) == len(users)


def test_every_lifecycle_state(data: dict[str, Any]) -> None:
    assert {t.status for t in data["tickets"]} == set(TicketStatus)


def test_state_invariants(data: dict[str, Any]) -> None:
    users: dict[int, User] = data["users"]
    for ticket in data["tickets"]:
        where = f"ticket {ticket.id} ({ticket.status})"
        if ticket.status == S.closed:
            assert ticket.resolution and ticket.resolved_at and ticket.closed_at, where
            assert ticket.resolved_at <= ticket.closed_at, where
        if ticket.status == S.resolved:
            assert ticket.resolution and ticket.resolved_at and ticket.closed_at is None, where
        if ticket.status in lifecycle.FINAL:
            assert ticket.closed_at is not None, where
        else:
            assert ticket.closed_at is None, where
        if ticket.status in (S.open, S.in_progress, S.on_hold):
            assert ticket.resolution is None and ticket.resolved_at is None, where
        if ticket.status == S.in_progress:
            assert ticket.assignee_id is not None, where
        if ticket.assignee_id is not None:
            assignee = users[ticket.assignee_id]
            assert assignee.role != Role.reporter and assignee.is_active, where
        assert ticket.created_at <= ticket.updated_at, where


def test_events_are_in_id_and_time_order(data: dict[str, Any]) -> None:
    for ticket in data["tickets"]:
        events: list[TicketEvent] = data["events"][ticket.id]
        times = [e.created_at for e in events]
        assert times == sorted(times), ticket.id
        assert times[0] == ticket.created_at
        versions = [e.ticket_version for e in events]
        assert versions == sorted(versions), ticket.id
        assert sorted(set(versions)) == list(range(1, ticket.version + 1)), ticket.id
        assert max(versions) == ticket.version, ticket.id


def test_replaying_the_events_gives_the_ticket(data: dict[str, Any]) -> None:
    """Rebuild every ticket from its events with the lifecycle table; it must equal the stored row."""
    comments: dict[int, Comment] = data["comments"]
    users: dict[int, User] = data["users"]
    seen_comments = set()
    for ticket in data["tickets"]:
        # The service-level events are the rules' (tests/cli/test_seed_service_levels.py).
        events: list[TicketEvent] = [e for e in data["events"][ticket.id] if not e.action.startswith("sla_")]
        created = [e for e in events if e.action == "created"]
        assert events[: len(created)] == created, "created events come first"
        assert [e.field for e in created] == [
            f for f in crud.CREATED_FIELDS if f in {e.field for e in created}
        ]
        assert all(e.ticket_version == 1 and e.old_value is None for e in created)
        assert all(e.actor_id == ticket.reporter_id for e in created)
        state: dict[str, str | None] = dict.fromkeys(crud.CREATED_FIELDS) | {"resolution": None}
        state |= {e.field: e.new_value for e in created if e.field}
        assert state["status"] == "open"
        reopens, resolved_at, closed_at = 0, None, None
        by_version: dict[int, list[TicketEvent]] = defaultdict(list)
        for event in events[len(created) :]:
            by_version[event.ticket_version].append(event)
        for version in sorted(by_version):
            change = [e for e in by_version[version] if e.action not in ("commented", "noted")]
            for event in by_version[version]:
                if event.action in ("commented", "noted"):
                    comment = comments[int(event.new_value or 0)]
                    assert comment.ticket_id == ticket.id and comment.author_id == event.actor_id
                    assert comment.created_at == event.created_at
                    assert comment.internal == (event.action == "noted")
                    if comment.internal:
                        assert users[comment.author_id].role != Role.reporter
                    seen_comments.add(comment.id)
            if not change:
                continue
            assert len({(e.actor_id, e.created_at) for e in change}) == 1, "one write, one actor, one time"
            moves = [e for e in change if e.action == "status_changed"]
            if moves:
                move = moves[0]
                assert change[0] is move, "status_changed comes first"
                transition = lifecycle.find(S(move.old_value), S(move.new_value))
                assert transition is not None, (ticket.id, move.old_value, move.new_value)
                assert move.old_value == state["status"]
                assert (move.reason is not None) == (lifecycle.REASON in transition.requires)
                actor = users[move.actor_id]
                if actor.role == Role.reporter:
                    assert transition.reporter_may and actor.id == ticket.reporter_id
                state["status"] = move.new_value
                reopens += transition.reopen
                if lifecycle.RESOLUTION in transition.requires:
                    resolved_at = move.created_at
                if transition.reopen:
                    resolved_at = None
                if transition.target in lifecycle.FINAL:
                    closed_at = move.created_at
            else:
                assert state["status"] not in {s.value for s in lifecycle.FINAL}, "no edits once final"
            for event in change[1:] if moves else change:
                assert event.action in ("assigned", "updated")
                assert (event.action == "assigned") == (event.field == "assignee_id")
                assert event.old_value == state[event.field or ""], (ticket.id, event.field)
                state[event.field or ""] = event.new_value
            if moves and transition.requires and lifecycle.ASSIGNEE in transition.requires:
                assert state["assignee_id"] is not None
        expected = {
            "title": ticket.title,
            "description": ticket.description,
            "priority": ticket.priority.value,
            "status": ticket.status.value,
            "reporter_id": str(ticket.reporter_id),
            "assignee_id": None if ticket.assignee_id is None else str(ticket.assignee_id),
            "team_id": None if ticket.team_id is None else str(ticket.team_id),
            "resolution": ticket.resolution,
        }
        assert {k: state[k] for k in expected} == expected, ticket.id
        assert (ticket.reopen_count, ticket.resolved_at, ticket.closed_at) == (
            reopens,
            resolved_at,
            closed_at,
        )
        # A new version (a write, or the SLA clock's warning or breach) sets updated_at; a comment
        # and what its reply meets do not.
        made = {}  # each version's first event: the write (or the clock's pass) that made it
        for event in data["events"][ticket.id]:
            made.setdefault(event.ticket_version, event.created_at)
        assert ticket.updated_at == made[ticket.version] == max(made.values()), ticket.id
        if ticket.closed_at is not None:  # nobody comments on a closed or cancelled ticket
            assert events[-1].created_at == ticket.closed_at, ticket.id
    assert seen_comments == set(comments), "every comment has its event"
