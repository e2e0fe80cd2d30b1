"""app.lifecycle and app.audit as pure functions: what a move means, and what a write records."""

from datetime import UTC, datetime

import pytest

from app import audit, lifecycle
from app.lifecycle import Mover
from app.models import EventAction, TicketStatus

S = TicketStatus
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAFF = Mover(may_move_any=True, is_reporter=False)
REPORTER = Mover(may_move_any=False, is_reporter=True)
STRANGER = Mover(may_move_any=False, is_reporter=False, is_assignee=True)


def _move(source: TicketStatus, target: TicketStatus) -> lifecycle.Transition:
    transition = lifecycle.find(source, target)
    assert transition is not None
    return transition


def test_what_each_kind_of_move_changes() -> None:
    resolve = lifecycle.changes(_move(S.in_progress, S.resolved), at=AT, reopen_count=0, resolution="Fixed")
    assert resolve == {"status": S.resolved, "resolution": "Fixed", "resolved_at": AT}
    reopen = lifecycle.changes(_move(S.resolved, S.in_progress), at=AT, reopen_count=1)
    assert reopen == {"status": S.in_progress, "resolution": None, "resolved_at": None, "reopen_count": 2}
    close = lifecycle.changes(_move(S.resolved, S.closed), at=AT, reopen_count=0)
    assert close == {"status": S.closed, "closed_at": AT}
    cancel = lifecycle.changes(_move(S.open, S.cancelled), at=AT, reopen_count=0)
    assert cancel == {"status": S.cancelled, "closed_at": AT}
    start = lifecycle.changes(_move(S.open, S.in_progress), at=AT, reopen_count=0, assignee_id=7)
    assert list(start.items()) == [("status", S.in_progress), ("assignee_id", 7)]  # the events' order


def test_who_may_make_a_move() -> None:
    for transition in lifecycle.TRANSITIONS:
        assert lifecycle.may_make(transition, STAFF)
        assert lifecycle.may_make(transition, REPORTER) == transition.reporter_may
        assert not lifecycle.may_make(transition, STRANGER)
    assert [t.target for t in lifecycle.moves_for(S.resolved, REPORTER)] == [S.closed, S.in_progress]
    assert [t.target for t in lifecycle.moves_for(S.open, REPORTER)] == [S.cancelled]
    assert lifecycle.moves_for(S.closed, STAFF) == []


@pytest.mark.parametrize(
    ("source", "target", "has_assignee", "given", "refused"),
    [
        (S.open, S.in_progress, False, {}, ("assignee_id", "required to move from open to in_progress", "missing")),
        (S.open, S.in_progress, True, {}, None),
        (S.open, S.in_progress, False, {"assignee_id": 3}, None),
        (S.open, S.resolved, False, {"resolution": None}, ("resolution", "required to move from open to resolved", "missing")),
        (S.in_progress, S.on_hold, True, {"reason": "Vendor", "resolution": "x"}, ("resolution", "only given when moving to resolved", "value_error")),
        (S.resolved, S.closed, True, {}, None),
    ],
)  # fmt: skip
def test_what_a_move_requires(
    source: TicketStatus,
    target: TicketStatus,
    has_assignee: bool,
    given: dict[str, object],
    refused: tuple[str, str, str] | None,
) -> None:
    assert lifecycle.refused_field(_move(source, target), has_assignee=has_assignee, given=given) == refused


def test_final_states_refuse_edits() -> None:
    assert [s for s in S if not lifecycle.editable(s)] == [S.closed, S.cancelled]


def test_what_a_write_records() -> None:
    current = {
        "status": S.resolved,
        "assignee_id": None,
        "resolution": "Fixed",
        "resolved_at": AT,
        "reopen_count": 0,
    }
    changes = lifecycle.changes(_move(S.resolved, S.in_progress), at=AT, reopen_count=0) | {"assignee_id": 4}
    assert list(audit.recorded(current, changes)) == [
        (EventAction.status_changed, "status", S.resolved),
        (EventAction.updated, "resolution", "Fixed"),
        (EventAction.assigned, "assignee_id", None),
    ]  # resolved_at and reopen_count follow from the status event
    assert list(audit.recorded({"title": "Same"}, {"title": "Same"})) == []  # no change, no event
    assert list(audit.created({"title": "T", "description": None, "status": S.open, "reporter_id": 3})) == [
        ("title", "T"),
        ("status", S.open),
        ("reporter_id", 3),
    ]
    assert [audit.text_value(v) for v in (S.open, 7, None, "x")] == ["open", "7", None, "x"]
