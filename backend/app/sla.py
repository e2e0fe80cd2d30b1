"""Service levels: the rules, whole, and what they make of a ticket's history.

`TIMER_RULES` says for each target what pauses its clock, what meets it and what cancels it;
`choose_policy` says which policy a ticket gets; `evaluate` rebuilds a ticket's timers from its
creation and its append-only status history (never from the current row alone), so a priority or
team change re-chosen from creation keeps every pause already taken, and the same function serves
the request path, the SLA clock, a policy change and the seeder. `changes` compares the stored
timers with the rebuilt ones and names the events the audit trail records. No database here:
app.crud.sla loads the facts and stores the result.

Business time is counted by app.business_time on the policy's calendar: a pause moves the due time
out by exactly the business time it lasted.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app import business_time
from app.models import EventAction, Priority, SlaState, TicketStatus, TimerKind, TimerState

S = TicketStatus


@dataclass(frozen=True)
class TimerRule:
    kind: TimerKind
    counts_in: frozenset[TicketStatus]  # the clock runs (any other status before the end pauses it)
    pauses_in: frozenset[TicketStatus]  # the clock stops; the due time moves out by the pause
    met_on_entering: frozenset[TicketStatus]  # the first move into one of these meets the target
    met_by_reply: bool  # a public comment by an agent or admin meets it
    final_when_met: bool  # once met it stays met (else a reopen resumes it)
    cancelled_in: frozenset[TicketStatus]


TIMER_RULES: tuple[TimerRule, ...] = (
    #         target                    counts in                    paused in               met by entering                         reply  final  cancelled in
    TimerRule(TimerKind.first_response, frozenset({S.open, S.in_progress}), frozenset({S.on_hold}), frozenset({S.in_progress, S.resolved}), True,  True,  frozenset({S.cancelled})),
    TimerRule(TimerKind.resolution,     frozenset({S.open, S.in_progress}), frozenset({S.on_hold}), frozenset({S.resolved}),                False, False, frozenset({S.cancelled})),
)  # fmt: skip
# Roles whose public comment is a response (a reporter's own comment is not).
RESPONDING_ROLES = frozenset({"agent", "admin"})


# --- Which policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A policy as the rules read it (app.crud.sla builds it from the rows)."""

    id: int
    name: str
    position: int
    priority: Priority | None
    team_id: int | None
    calendar_name: str
    calendar: business_time.WorkingTime
    targets: dict[TimerKind, int]  # business minutes; a kind left out has no target
    warn_at_percent: int | None


def matches(policy: Policy, priority: Priority, team_id: int | None) -> bool:
    return (policy.priority is None or policy.priority == priority) and (
        policy.team_id is None or policy.team_id == team_id
    )


def choose_policy(policies: Sequence[Policy], priority: Priority, team_id: int | None) -> Policy | None:
    """The first policy by position that matches the ticket's priority and team (a policy matching
    neither specifically is the fallback: it matches everything)."""
    for policy in sorted(policies, key=lambda p: p.position):
        if matches(policy, priority, team_id):
            return policy
    return None


# --- A ticket's history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the timers are rebuilt from: the ticket's creation, its status moves in order, and the
    first public comment by an agent or admin."""

    created_at: datetime
    moves: tuple[tuple[datetime, TicketStatus], ...]  # (when, the status entered), in order
    first_reply_at: datetime | None = None

    def segments(self, now: datetime) -> list[tuple[datetime, datetime, TicketStatus]]:
        """[start, end) per status held, the last ending at `now` (or at its start if later)."""
        points = [(self.created_at, S.open), *self.moves]
        out = []
        for index, (start, status) in enumerate(points):
            end = points[index + 1][0] if index + 1 < len(points) else max(now, start)
            out.append((start, end, status))
        return out


# --- Timers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    started_at: datetime
    ended_at: datetime | None
    reason: str
    business: timedelta


@dataclass(frozen=True)
class Timer:
    """One target of one ticket, as the rules make it at `now`."""

    kind: TimerKind
    policy_id: int
    target_minutes: int
    state: TimerState
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    paused_since: datetime | None
    paused: timedelta
    pauses: tuple[Pause, ...] = field(default=(), compare=False)

    @property
    def next_check_at(self) -> datetime | None:
        """When the clock must look again: the warning, then the due time, while it runs."""
        if self.state != TimerState.running:
            return None
        if self.warn_at is not None and self.warned_at is None:
            return self.warn_at
        return self.due_at

    @property
    def counting(self) -> bool:
        return self.state in (TimerState.running, TimerState.breached)


def _reach(
    calendar: business_time.WorkingTime,
    start: datetime,
    spans: Iterable[tuple[datetime, datetime | None]],
    amount: timedelta,
) -> datetime:
    """The instant the counted business time reaches `amount`, counting over `spans` in order (the
    last may be open: None); past the spans, as if counting resumed at the end of the last (at
    `start` when there are none)."""
    remaining, last_end = amount, start
    for start, end in spans:
        # Reached inside this span exactly when the instant `remaining` after its start is not past
        # its end: one short walk, where the span's own business time would walk all of it.
        reached = business_time.add(calendar, start, remaining)
        if end is None or reached <= end:
            return reached
        remaining -= business_time.between(calendar, start, end)
        last_end = end
    return business_time.add(calendar, last_end, remaining)


def _timer(rule: TimerRule, policy: Policy, facts: Facts, now: datetime) -> Timer:
    target = policy.targets[rule.kind]
    calendar = policy.calendar
    segments = facts.segments(now)
    # Where the timer stops: met, or cancelled (nothing after that counts).
    met_at: datetime | None = None
    cancelled_at: datetime | None = None
    if rule.met_by_reply and facts.first_reply_at is not None:
        met_at = facts.first_reply_at
    for start, _end, status in segments[1:]:
        if status in rule.met_on_entering:
            if rule.final_when_met:
                met_at = start if met_at is None else min(met_at, start)
                break
            met_at = start  # the last resolve counts; a reopen clears it below
        elif status in rule.cancelled_in and (met_at is None or not rule.final_when_met):
            cancelled_at = start
            break
        elif status in rule.counts_in and met_at is not None and not rule.final_when_met:
            met_at = None  # reopened: the timer resumes with its elapsed time kept
    end = met_at if met_at is not None else cancelled_at
    counting: list[tuple[datetime, datetime | None]] = []
    pauses: list[Pause] = []
    for index, (start, seg_end, status) in enumerate(segments):
        if end is not None and start >= end:
            break
        stop = seg_end if end is None else min(seg_end, end)
        is_last = end is None and index == len(segments) - 1
        if status not in rule.counts_in:
            reason = status.value
            pauses.append(
                Pause(start, None if is_last else stop, reason, business_time.between(calendar, start, stop))
            )
        else:
            counting.append((start, None if is_last else stop))
    paused_now = bool(pauses) and pauses[-1].ended_at is None
    due_at = _reach(calendar, facts.created_at, counting, timedelta(minutes=target))
    warn_at = None
    if policy.warn_at_percent is not None:
        warn_at = _reach(
            calendar,
            facts.created_at,
            counting,
            timedelta(seconds=target * 60 * policy.warn_at_percent / 100),
        )
    # How far the clock has counted: a paused timer stopped at its pause (its due time, projected
    # as if counting resumed there, has not come while it is paused).
    horizon = end if end is not None else (pauses[-1].started_at if paused_now else now)
    warned_at = warn_at if warn_at is not None and warn_at <= horizon else None
    breached_at = due_at if due_at <= horizon and not (met_at is not None and met_at <= due_at) else None
    if met_at is not None:
        state = TimerState.met_late if met_at > due_at else TimerState.met
    elif cancelled_at is not None:
        state = TimerState.cancelled
    elif paused_now:
        state = TimerState.paused
    elif breached_at is not None:
        state = TimerState.breached
    else:
        state = TimerState.running
    if met_at is not None and met_at > due_at:
        breached_at = due_at
    return Timer(
        kind=rule.kind,
        policy_id=policy.id,
        target_minutes=target,
        state=state,
        started_at=facts.created_at,
        due_at=due_at,
        warn_at=warn_at,
        warned_at=warned_at,
        breached_at=breached_at,
        met_at=met_at,
        paused_since=pauses[-1].started_at if paused_now else None,
        paused=sum((p.business for p in pauses), timedelta()),
        pauses=tuple(pauses),
    )


def evaluate(policy: Policy | None, facts: Facts, now: datetime) -> dict[TimerKind, Timer]:
    """The ticket's timers at `now` under `policy`, rebuilt from its whole history."""
    if policy is None:
        return {}
    return {
        rule.kind: _timer(rule, policy, facts, now) for rule in TIMER_RULES if rule.kind in policy.targets
    }


def summary(timers: Iterable[Timer]) -> tuple[SlaState, datetime | None]:
    """The ticket's sla_state and sla_due_at: breached (breached, met late, or paused after its
    breach) over at risk over running over paused over met; the due time is the nearest among the
    timers still counting."""
    timers = list(timers)
    states = {t.state for t in timers}
    due = min((t.due_at for t in timers if t.counting), default=None)
    if not timers:
        return SlaState.none, None
    if states & {TimerState.breached, TimerState.met_late} or any(
        t.state == TimerState.paused and t.breached_at is not None for t in timers
    ):
        return SlaState.breached, due
    if any(t.state == TimerState.running and t.warned_at is not None for t in timers):
        return SlaState.at_risk, due
    if TimerState.running in states:
        return SlaState.running, due
    if TimerState.paused in states:
        return SlaState.paused, due
    if TimerState.met in states:
        return SlaState.met, due
    return SlaState.cancelled, due


# --- What changed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A timer as stored (the fields the comparison reads)."""

    kind: TimerKind
    policy_id: int | None
    target_minutes: int
    state: TimerState
    due_at: datetime
    warned_at: datetime | None
    breached_at: datetime | None

    @classmethod
    def of(cls, timer: Any) -> "Stored":
        """From anything holding a timer's fields: a stored row, or a Timer about to be stored."""
        return cls(
            timer.kind,
            timer.policy_id,
            timer.target_minutes,
            timer.state,
            timer.due_at,
            timer.warned_at,
            timer.breached_at,
        )


def _minutes(delta: timedelta) -> str:
    minutes = round(abs(delta.total_seconds()) / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def changes(
    old: dict[TimerKind, Stored], new: dict[TimerKind, Timer], policy: Policy | None
) -> list[tuple[EventAction, TimerKind, Any, Any, str]]:
    """The events (action, timer, old due time, new due time, reason) that take the stored timers
    to the rebuilt ones: each warning and breach once, each state change, and a recompute when
    the due time moved for another reason (a policy, priority, team or calendar change)."""
    events: list[tuple[EventAction, TimerKind, Any, Any, str]] = []
    for rule in TIMER_RULES:
        kind, before, after = rule.kind, old.get(rule.kind), new.get(rule.kind)
        if after is None:
            if before is not None and before.state not in (TimerState.cancelled,):
                why = f"policy {policy.name!r} sets no {kind.value} target" if policy else "no policy applies"
                events.append((EventAction.sla_cancelled, kind, before.due_at, None, why))
            continue
        assert policy is not None
        if before is None:
            events.append(
                (
                    EventAction.sla_attached,
                    kind,
                    None,
                    after.due_at,
                    f"policy {policy.name!r}: {after.target_minutes} business minutes on calendar "
                    f"{policy.calendar_name!r}",
                )
            )
            before = Stored(
                kind, policy.id, after.target_minutes, TimerState.running, after.due_at, None, None
            )
        moved = before.due_at != after.due_at
        if before.policy_id != after.policy_id or before.target_minutes != after.target_minutes:
            why = (
                f"policy {policy.name!r}: {after.target_minutes} business minutes, from the ticket's creation"
            )
            events.append((EventAction.sla_recomputed, kind, before.due_at, after.due_at, why))
            moved = False
        if after.warned_at is not None and before.warned_at is None:
            events.append((EventAction.sla_warning, kind, None, after.due_at, "warning point passed"))
        if after.breached_at is not None and before.breached_at is None:
            events.append((EventAction.sla_breached, kind, None, after.due_at, "due time passed"))
        if before.state == after.state:
            if moved:
                events.append((EventAction.sla_recomputed, kind, before.due_at, after.due_at, "recomputed"))
            continue
        if after.state == TimerState.paused:
            events.append(
                (EventAction.sla_paused, kind, before.due_at, None, f"ticket {after.pauses[-1].reason}")
            )
        elif after.state in (TimerState.met, TimerState.met_late):
            assert after.met_at is not None
            how = "late" if after.state == TimerState.met_late else "early"
            reason = f"met {_minutes(after.met_at - after.due_at)} {how}"
            events.append((EventAction.sla_met, kind, before.due_at, after.due_at, reason))
        elif after.state == TimerState.cancelled:
            events.append((EventAction.sla_cancelled, kind, before.due_at, None, "ticket cancelled"))
        elif before.state in (TimerState.paused, TimerState.met, TimerState.met_late):
            last = after.pauses[-1] if after.pauses else None
            why = (
                f"paused ({last.reason}) for {_minutes(last.business)} of business time"
                if last is not None
                else "resumed"
            )
            events.append((EventAction.sla_resumed, kind, before.due_at, after.due_at, why))
        elif moved:
            events.append((EventAction.sla_recomputed, kind, before.due_at, after.due_at, "recomputed"))
    return events


# --- The defaults `db sla-defaults` and `db seed` install -----------------------------------------


@dataclass(frozen=True)
class DefaultPolicy:
    name: str
    position: int
    priority: Priority
    first_response_minutes: int
    resolution_minutes: int

    def fields(self) -> dict[str, Any]:
        """The policy's column values (all but its calendar), as `db sla-defaults` and `db seed`
        store them."""
        return {
            "name": self.name,
            "position": self.position,
            "priority": self.priority,
            "team_id": None,
            "first_response_minutes": self.first_response_minutes,
            "resolution_minutes": self.resolution_minutes,
            "warn_at_percent": DEFAULT_WARN_AT_PERCENT,
        }


BUSINESS_DAY = 8 * 60  # business minutes in a day of the default calendar (09:00-17:00)
DEFAULT_CALENDAR = "Business hours"  # Monday to Friday 09:00-17:00 in SLA_TIME_ZONE
DEFAULT_POLICIES: tuple[DefaultPolicy, ...] = (
    #             name       position  priority         first response    resolution
    DefaultPolicy("Urgent",  10,       Priority.urgent, 30,               4 * 60),
    DefaultPolicy("High",    20,       Priority.high,   60,               8 * 60),
    DefaultPolicy("Medium",  30,       Priority.medium, 4 * 60,           3 * BUSINESS_DAY),
    DefaultPolicy("Low",     40,       Priority.low,    BUSINESS_DAY,     5 * BUSINESS_DAY),
)  # fmt: skip
DEFAULT_WARN_AT_PERCENT = 75
