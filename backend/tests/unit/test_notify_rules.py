"""app.notifications: which events notify whom, as pure functions."""

import itertools

import pytest

from app import notifications as n
from app import permissions
from app.models import (
    EventAction,
    NotificationKind,
    Role,
    Ticket,
    TicketEvent,
    TicketStatus,
    User,
    WatchReason,
)
from app.notifications import Audience, Notice, Person

K, S, A = NotificationKind, TicketStatus, EventAction
ACTOR, REPORTER, ASSIGNEE = 1, 2, 3


def ev(
    action: EventAction, field: str | None = None, old: str | None = None, new: str | None = None
) -> TicketEvent:
    return TicketEvent(
        id=100,
        ticket_id=9,
        actor_id=ACTOR,
        action=action,
        field=field,
        old_value=old,
        new_value=new,
        ticket_version=2,
    )


def ticket(**fields: object) -> Ticket:
    return Ticket.model_construct(
        **{"id": 9, "reporter_id": REPORTER, "assignee_id": ASSIGNEE, "team_id": 5, **fields}
    )


EXPECTED_MOVES = {
    **{(source, S.resolved): K.ticket_resolved for source in S},
    **{(source, S.closed): K.ticket_closed for source in S},
    (S.resolved, S.open): K.ticket_reopened,
    (S.resolved, S.in_progress): K.ticket_reopened,
    (S.closed, S.open): K.ticket_reopened,
    (S.closed, S.in_progress): K.ticket_reopened,
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)))
def test_status_moves_that_notify(old: TicketStatus, new: TicketStatus) -> None:
    assert n.status_kind(old.value, new.value) == EXPECTED_MOVES.get((old, new))


def test_the_notices_of_each_event() -> None:
    events = [
        ev(A.created, "assignee_id", None, "7"),
        ev(A.created, "title", None, "Printer"),
        ev(A.assigned, "assignee_id", "7", "8"),
        ev(A.assigned, "assignee_id", "8", None),  # unassigned: nobody to tell
        ev(A.commented, None, None, "55"),
        ev(A.noted, None, None, "56"),
        ev(A.status_changed, "status", "in_progress", "resolved"),
        ev(A.status_changed, "status", "open", "in_progress"),
        ev(A.updated, "title", "a", "b"),
        ev(A.sla_warning, "resolution", None, "2026-11-30T10:00:00+00:00"),
        ev(A.sla_breached, "first_response", None, "2026-11-30T09:00:00+00:00"),
        ev(A.sla_met, "first_response", None, None),
    ]
    assert n.notices(events) == [
        Notice(
            K.ticket_assigned, Audience.assignee, False, {"event_id": 100, "actor_id": ACTOR}, assignee_id=7
        ),
        Notice(
            K.ticket_assigned, Audience.assignee, False, {"event_id": 100, "actor_id": ACTOR}, assignee_id=8
        ),
        Notice(
            K.ticket_commented,
            Audience.watchers,
            False,
            {"event_id": 100, "comment_id": 55, "internal": False, "actor_id": ACTOR},
        ),
        Notice(
            K.ticket_commented,
            Audience.watchers,
            True,
            {"event_id": 100, "comment_id": 56, "internal": True, "actor_id": ACTOR},
        ),
        Notice(
            K.ticket_resolved,
            Audience.watchers,
            False,
            {"event_id": 100, "from": "in_progress", "to": "resolved", "actor_id": ACTOR},
        ),
        Notice(
            K.sla_warning,
            Audience.sla,
            False,
            {"event_id": 100, "timer": "resolution", "due_at": "2026-11-30T10:00:00+00:00"},
        ),
        Notice(
            K.sla_breached,
            Audience.sla,
            False,
            {"event_id": 100, "timer": "first_response", "due_at": "2026-11-30T09:00:00+00:00"},
        ),
    ]


def test_most_edits_make_no_notice() -> None:
    assert n.notices([ev(A.updated, "priority", "low", "high"), ev(A.sla_recomputed, "resolution")]) == []


def people(*persons: Person) -> dict[int, Person]:
    return {p.id: p for p in persons}


COMMENT = Notice(K.ticket_commented, Audience.watchers, False, {})
NOTE = Notice(K.ticket_commented, Audience.watchers, True, {})


def test_watchers_but_the_actor_the_inactive_the_unwatched_and_who_cannot_see() -> None:
    everyone = people(
        Person(ACTOR, Role.agent, True, commented=True),
        Person(REPORTER, Role.reporter, True),
        Person(ASSIGNEE, Role.agent, True),
        Person(4, Role.agent, True, commented=True),
        Person(5, Role.agent, False, commented=True),  # inactive
        Person(6, Role.agent, True, commented=True, watching=False),  # unwatched
        Person(7, Role.reporter, True, commented=True),  # a reporter now: not their ticket
        Person(8, Role.admin, True, watching=True),
        Person(9, Role.agent, True),  # no reason to watch
        Person(10, Role.agent, True, commented=True, disabled=frozenset({K.ticket_commented})),
        Person(11, Role.agent, True, commented=True, is_service_account=True),  # an integration
    )
    assert n.recipients(COMMENT, everyone, ticket(), ACTOR) == [REPORTER, ASSIGNEE, 4, 8]
    assert n.recipients(NOTE, everyone, ticket(), ACTOR) == [ASSIGNEE, 4, 8]  # never the reporter
    assert n.recipients(COMMENT, everyone, ticket(), None) == [ACTOR, REPORTER, ASSIGNEE, 4, 8]


def test_the_reasons_to_watch() -> None:
    t = ticket()
    assert n.watch_reasons(Person(REPORTER, Role.reporter, True, commented=True), t) == [
        WatchReason.reporter,
        WatchReason.commenter,
    ]
    assert n.watch_reasons(Person(ASSIGNEE, Role.agent, True, watching=True), t) == [
        WatchReason.assignee,
        WatchReason.explicit,
    ]
    assert n.watch_reasons(Person(REPORTER, Role.reporter, True, watching=False), t) == []
    assert n.watch_reasons(Person(4, Role.agent, True), t) == []


def test_an_assignment_goes_to_the_assignee_alone() -> None:
    notice = Notice(K.ticket_assigned, Audience.assignee, False, {}, assignee_id=ASSIGNEE)
    everyone = people(Person(ASSIGNEE, Role.agent, True), Person(REPORTER, Role.reporter, True))
    assert n.recipients(notice, everyone, ticket(), ACTOR) == [ASSIGNEE]
    assert n.recipients(notice, everyone, ticket(), ASSIGNEE) == []  # they assigned themselves
    off = people(Person(ASSIGNEE, Role.agent, True, disabled=frozenset({K.ticket_assigned})))
    assert n.recipients(notice, off, ticket(), ACTOR) == []


def test_an_sla_notice_goes_to_the_assignee_else_to_the_teams_agents_and_admins() -> None:
    notice = Notice(K.sla_breached, Audience.sla, False, {})
    everyone = people(
        Person(ASSIGNEE, Role.agent, True, team_id=5),
        Person(4, Role.agent, True, team_id=5),
        Person(5, Role.admin, True, team_id=5),
        Person(6, Role.agent, False, team_id=5),
        Person(7, Role.reporter, True, team_id=5),
        Person(8, Role.agent, True, team_id=6),
    )
    assert n.recipients(notice, everyone, ticket(), None) == [ASSIGNEE]
    assert n.recipients(notice, everyone, ticket(assignee_id=None), None) == [ASSIGNEE, 4, 5]
    assert n.recipients(notice, everyone, ticket(assignee_id=None, team_id=None), None) == []


def test_what_the_query_must_read() -> None:
    t = ticket()
    assigned = Notice(K.ticket_assigned, Audience.assignee, False, {}, assignee_id=7)
    assert n.needs([assigned], t) == n.Needs(False, False, frozenset({7}), frozenset({K.ticket_assigned}))
    assert n.needs([COMMENT], t) == n.Needs(
        True, False, frozenset({REPORTER, ASSIGNEE}), frozenset({K.ticket_commented})
    )
    sla = Notice(K.sla_warning, Audience.sla, False, {})
    assert n.needs([sla], ticket(assignee_id=None)).team
    assert not n.needs([sla], t).team and n.needs([sla], t).users == {ASSIGNEE}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("own", [True, False])
def test_a_person_sees_what_the_policy_table_lets_their_role_see(role: Role, own: bool) -> None:
    t = ticket(reporter_id=4 if own else REPORTER)
    person = Person(4, role, True)
    user = User.model_construct(id=4, role=role, is_active=True)
    assert person.can_see(t) == permissions.can_see(user, t)
    assert person.may(permissions.P.note_internal) == permissions.sees_internal_notes(user)
