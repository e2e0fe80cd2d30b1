"""The ticket lifecycle as data: which moves exist, what each requires, who may make it.

`TRANSITIONS` is the whole rule set. The status endpoint, the transitions listing, the seeder and
the tests all read it; nothing else decides whether a move is allowed.
"""

from dataclasses import dataclass

from app.models import TicketStatus

S = TicketStatus

# What a move can require: text in the request body, or an assignee on the ticket after the move
# (already set, or given as `assignee_id` in the same request).
RESOLUTION, REASON, ASSIGNEE = "resolution", "reason", "assignee_id"
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


def find(source: TicketStatus, target: TicketStatus) -> Transition | None:
    return _BY_MOVE.get((source, target))


def moves_from(source: TicketStatus) -> list[Transition]:
    return [t for t in TRANSITIONS if t.source == source]


def required_fields(transition: Transition, *, has_assignee: bool) -> list[str]:
    """What a request must carry for this move, given the ticket as it is now."""
    return [f for f in transition.requires if not (f == ASSIGNEE and has_assignee)]
