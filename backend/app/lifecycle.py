"""The ticket lifecycle: which moves exist, who may make them, what they require and what they do.

`TRANSITIONS` is the whole rule set, and the functions below are everything a move means, as pure
functions over plain values (no session, no ORM object): the status endpoint and the transitions
listing (app.crud.tickets), the seeder (app.seed) and the tests all ask them; nothing else decides
whether a move is allowed or what it changes. The role policy stays in app.permissions: callers
pass what it says as a plain `Mover`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.models import TicketStatus

S = TicketStatus

# What a move can require: text in the request body, or an assignee on the ticket after the move
# (already set, or given as `assignee_id` in the same request).
RESOLUTION, REASON, ASSIGNEE = "resolution", "reason", "assignee_id"
# Final states: no move leaves them, and the ticket can no longer be edited.
FINAL: frozenset[TicketStatus] = frozenset({S.closed, S.cancelled})


@dataclass(frozen=True)
class Transition:
    source: TicketStatus
    target: TicketStatus
    requires: tuple[str, ...] = ()
    reopen: bool = False  # reopen_count + 1; resolution and resolved_at cleared
    reporter_may: bool = False  # a reporter may make this move on their own ticket


TRANSITIONS: tuple[Transition, ...] = (
    #          from           to               requires        flags
    Transition(S.open,        S.in_progress,   (ASSIGNEE,)),
    Transition(S.open,        S.resolved,      (RESOLUTION,)),
    Transition(S.open,        S.cancelled,     (REASON,),      reporter_may=True),
    Transition(S.in_progress, S.on_hold,       (REASON,)),
    Transition(S.in_progress, S.resolved,      (RESOLUTION,)),
    Transition(S.in_progress, S.cancelled,     (REASON,)),
    Transition(S.on_hold,     S.in_progress),
    Transition(S.on_hold,     S.resolved,      (RESOLUTION,)),
    Transition(S.on_hold,     S.cancelled,     (REASON,)),
    Transition(S.resolved,    S.closed,                        reporter_may=True),
    Transition(S.resolved,    S.in_progress,   (REASON,),      reopen=True, reporter_may=True),
)  # fmt: skip

_BY_MOVE = {(t.source, t.target): t for t in TRANSITIONS}


# --- Which moves exist ----------------------------------------------------------------------------


def find(source: TicketStatus, target: TicketStatus) -> Transition | None:
    return _BY_MOVE.get((source, target))


def moves_from(source: TicketStatus) -> list[Transition]:
    return [t for t in TRANSITIONS if t.source == source]


def editable(status: TicketStatus) -> bool:
    """Whether a ticket in this state takes edits (PATCH): final states refuse them."""
    return status not in FINAL


# --- Who may make them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mover:
    """Who asks for a move, as plain facts about them and the ticket."""

    may_move_any: bool  # their role may move any ticket they see (app.permissions: ticket.move)
    is_reporter: bool  # they filed the ticket
    is_assignee: bool = False  # the ticket is assigned to them (no rule of the table reads it yet)


def may_make(transition: Transition, mover: Mover) -> bool:
    return mover.may_move_any or (transition.reporter_may and mover.is_reporter)


def moves_for(source: TicketStatus, mover: Mover) -> list[Transition]:
    """The moves from `source` this mover may make, in the table's order."""
    return [t for t in moves_from(source) if may_make(t, mover)]


# --- What they require ----------------------------------------------------------------------------


def required_fields(transition: Transition, *, has_assignee: bool) -> list[str]:
    """What a request must carry for this move, given the ticket as it is now."""
    return [f for f in transition.requires if not (f == ASSIGNEE and has_assignee)]


def refused_field(
    transition: Transition, *, has_assignee: bool, given: Mapping[str, Any]
) -> tuple[str, str, str] | None:
    """The first problem with the fields a request `given` for this move, as (field, message, kind),
    or None: a required field missing, or a resolution on a move that does not resolve."""
    move = f"{transition.source.value} to {transition.target.value}"
    for field in required_fields(transition, has_assignee=has_assignee):
        if given.get(field) is None:
            return field, f"required to move from {move}", "missing"
    if given.get(RESOLUTION) is not None and RESOLUTION not in transition.requires:
        return RESOLUTION, f"only given when moving to {S.resolved.value}", "value_error"
    return None


# --- What they do ---------------------------------------------------------------------------------


def changes(
    transition: Transition,
    *,
    at: datetime,
    reopen_count: int,
    assignee_id: int | None = None,
    resolution: str | None = None,
) -> dict[str, Any]:
    """The ticket fields this move sets when made at `at`, by column name, in the order app.audit
    records them: the status; the assignee, when the request gives one; resolving stores the
    resolution and `resolved_at`; a reopen clears them and counts itself; a final state stamps
    `closed_at`. `reopen_count` is the ticket's now; the version and `updated_at` are the write's."""
    result: dict[str, Any] = {"status": transition.target}
    if assignee_id is not None:
        result["assignee_id"] = assignee_id
    if RESOLUTION in transition.requires:
        result |= {"resolution": resolution, "resolved_at": at}
    if transition.reopen:
        result |= {"resolution": None, "resolved_at": None, "reopen_count": reopen_count + 1}
    if transition.target in FINAL:
        result["closed_at"] = at
    return result
