"""Demo data for `db seed`: rows built by the factories, histories walked on the lifecycle table.

What a seed holds (ids are assigned here, 1..N per table, on the empty schema `db seed` resets to):

- `teams` teams (TeamFactory) and `users` users (UserFactory), every one in a team. Users 1-3 are
  the demo logins (DEMO_LOGINS, password factories.DEMO_PASSWORD); the rest are about 2% admins,
  25% agents and the others reporters (3% of reporters inactive).
- `tickets` tickets (TicketFactory text), created at even intervals over HISTORY_DAYS before the
  anchor, oldest first. Each gets a final status (recent tickets are more often still open), then a
  path to it from `open` over app.lifecycle.TRANSITIONS (all walks of up to MAX_MOVES moves,
  shorter ones likelier). Its history is built from the functions app.crud uses, so it is written
  the way the API writes one: each move is made by someone app.lifecycle lets make it, with the
  fields it requires, and changes what `lifecycle.changes` says; the events are app.audit's:
  `created` events at version 1, one version per later change with `status_changed`, `assigned`
  and `updated` events in crud's order, `commented`/`noted` events for comments (CommentFactory
  text) at the version current then. Every timestamp is at or before the anchor, in id order per
  ticket.
- The statuses a move into requires an assignee (in the table: in_progress) are only ever entered
  with one, so every in_progress ticket has an assignee, reopened ones included.
- Service levels: the default calendar and policies (app.sla DEFAULT_CALENDAR, DEFAULT_POLICIES,
  DEFAULT_WARN_AT_PERCENT; calendars.office_hours() in the plan's SLA time zone, SLA_TIME_ZONE by
  default) as rows, and every ticket's timers kept along its history by the code the API runs
  (`_Service`): at each write the policy is chosen (app.sla.choose_policy) and the timers rebuilt
  (app.sla.evaluate) from the facts so far, and the events app.sla.changes names join that write
  at its version, with its actor (attached at creation, paused, resumed, met at the moves and
  replies, recomputed when the priority changes); the warnings and breaches the SLA clock would
  record are versions of their own at their instants, without an actor. The stored timers and the
  ticket's sla_state/sla_due_at are the timers as a refresh at the anchor makes them (the seed's
  "now"), so the request path finds nothing left to record. A write that changes neither the facts
  nor the policy is not re-evaluated: between writes only the clock's check times change a timer
  (the contract app.crud.sla_clock relies on), and those are recorded first.

Speed: factory objects are built once into pools (at most POOL_SIZE each) and sampled with a seeded
random.Random; the rows are tuples keyed by column name (TicketRow and the others, checked against
the tables by `check_rows`) handed to the bulk loader (app.seed_load) BATCH_TICKETS tickets at a time,
so memory stays flat whatever the count. The same seed, counts and anchor give the same rows.
"""

import bisect
import dataclasses
import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, Protocol

from sqlmodel import Session, SQLModel

from app import audit, calendars, factories, lifecycle, sla
from app.audit import text_value
from app.core import migrations
from app.core.config import get_settings
from app.crud.sla_timers import policy_rule
from app.lifecycle import Transition
from app.models import (
    Calendar,
    Comment,
    EventAction,
    Priority,
    Role,
    SlaPolicy,
    SlaTimer,
    Team,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimerKind,
    TimerState,
    User,
)
from app.seed_load import bulk_insert, reset_id_sequences

S = TicketStatus

MAX_TEAMS, MAX_USERS, MAX_TICKETS = 10_000, 1_000_000, 5_000_000
# Without --anchor, a seeded run (--seed N) ends its history here, so the rows never depend on the
# day it ran; an unseeded run ends at the current minute.
DEFAULT_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
EARLIEST_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 365
MAX_MOVES = 6  # longest lifecycle path a seeded ticket takes
MAX_REOPENS = 2
BATCH_TICKETS = 2_000
CHECK_EVERY = 100  # tickets between two checks for a stop request
BATCH_USERS = 10_000
POOL_SIZE = 2_000
DEMO_LOGINS: dict[Role, str] = {
    Role.admin: "demo.admin@example.com",
    Role.agent: "demo.agent@example.com",
    Role.reporter: "demo.reporter@example.com",
}
# The tables a seed fills, parents first (the order they are loaded in).
TABLES: tuple[type[SQLModel], ...] = (Team, User, Calendar, SlaPolicy, Ticket, Comment, TicketEvent, SlaTimer)
# The seeded business calendar: the migration made the built-in "24x7" (id 1).
CALENDAR_ID = 2


# The rows, keyed by column name: one field per column of the table (computed columns aside), built
# with keywords. `check_rows()` compares them with the models, so a column added to a table fails
# `db seed` (and its tests) with its name until the seeder says what goes in it.
class TeamRow(NamedTuple):
    id: int
    name: str
    description: str | None
    created_at: datetime


class UserRow(NamedTuple):
    id: int
    email: str
    full_name: str | None
    hashed_password: str
    auth_stamp: str
    role: str
    is_active: bool
    team_id: int | None
    created_at: datetime
    is_service_account: bool


class TicketRow(NamedTuple):
    id: int
    title: str
    description: str | None
    priority: str
    assignee_id: int | None
    team_id: int | None
    status: str
    reporter_id: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    reopen_count: int
    version: int
    sla_due_at: datetime | None
    sla_state: str


class CommentRow(NamedTuple):
    id: int
    ticket_id: int
    author_id: int
    body: str
    internal: bool
    created_at: datetime


class EventRow(NamedTuple):
    id: int
    ticket_id: int
    actor_id: int | None
    action: str
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str | None
    ticket_version: int
    created_at: datetime
    request_id: str | None  # the API request's X-Request-ID: none for seeded events


class CalendarRow(NamedTuple):
    id: int
    name: str
    time_zone: str
    working_hours: dict[str, list[str]]
    holidays: list[dict[str, str]]
    builtin: bool
    created_at: datetime
    updated_at: datetime


class PolicyRow(NamedTuple):
    id: int
    name: str
    position: int
    priority: str | None
    team_id: int | None
    calendar_id: int
    first_response_minutes: int | None
    resolution_minutes: int | None
    warn_at_percent: int | None
    created_at: datetime
    updated_at: datetime


class TimerRow(NamedTuple):
    id: int
    ticket_id: int
    kind: str
    state: str
    policy_id: int | None
    target_minutes: int
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    paused_since: datetime | None
    paused_seconds: int
    next_check_at: datetime | None


ROWS: dict[type[SQLModel], Any] = {
    Team: TeamRow,
    User: UserRow,
    Calendar: CalendarRow,
    SlaPolicy: PolicyRow,
    Ticket: TicketRow,
    Comment: CommentRow,
    TicketEvent: EventRow,
    SlaTimer: TimerRow,
}


def check_rows() -> None:
    """Raise SeedError unless each row type has exactly the columns of its table (computed aside)."""
    for model, row in ROWS.items():
        table = model.__table__  # type: ignore[attr-defined]
        columns = {c.name for c in table.columns if c.computed is None}
        if missing := sorted(columns - set(row._fields)):
            raise SeedError(f"the seeder has no value for {table.name}.{', '.join(missing)}")
        if extra := sorted(set(row._fields) - columns):
            raise SeedError(f"the seeder fills {table.name}.{', '.join(extra)}, which is no column")


# How likely each final status is, for tickets younger and older than two weeks.
RECENT_WEIGHTS = {S.open: 30, S.in_progress: 25, S.on_hold: 10, S.resolved: 15, S.closed: 12, S.cancelled: 8}
OLD_WEIGHTS = {S.open: 4, S.in_progress: 6, S.on_hold: 5, S.resolved: 8, S.closed: 65, S.cancelled: 12}
# How many comments a ticket gets: 0, 1, 2, ...
COMMENT_WEIGHTS = (30, 25, 20, 12, 8, 5)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = 86_400


class SeedError(ValueError):
    """Counts or options that cannot make a seed; the message is one line for the operator."""


@dataclass(frozen=True)
class Plan:
    teams: int
    users: int
    tickets: int
    seed: int
    anchor: datetime
    sla_time_zone: str = field(default_factory=lambda: get_settings().SLA_TIME_ZONE)


def make_plan(*, teams: int, users: int, tickets: int, seed: int | None, anchor: datetime | None) -> Plan:
    """Check the counts and the row types (`check_rows`); choose the seed (random when None) and the
    anchor (see DEFAULT_ANCHOR)."""
    check_rows()
    checks = (
        ("--teams", teams, 1, MAX_TEAMS, "every user belongs to a team"),
        ("--users", users, len(DEMO_LOGINS), MAX_USERS, "one demo login per role"),
        ("--tickets", tickets, 0, MAX_TICKETS, ""),
    )
    for option, value, low, high, why in checks:
        if value < low:
            raise SeedError(f"{option} must be at least {low}{f' ({why})' if why else ''}, not {value}")
        if value > high:
            raise SeedError(f"{option} must be at most {high:,}, not {value:,}")
    if seed is not None and not 0 <= seed < 2**63:
        raise SeedError(f"--seed must be between 0 and 2**63-1, not {seed}")
    now = datetime.now(UTC)
    if anchor is None:
        anchor = DEFAULT_ANCHOR if seed is not None else now.replace(second=0, microsecond=0)
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    if not EARLIEST_ANCHOR <= anchor <= now:
        raise SeedError(
            f"--anchor must be between {EARLIEST_ANCHOR:%Y-%m-%d} and now, not {anchor.isoformat()}"
        )
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    return Plan(teams=teams, users=users, tickets=tickets, seed=seed, anchor=anchor.astimezone(UTC))


# --- Paths through the lifecycle ------------------------------------------------------------------


@cache
def lifecycle_paths() -> dict[TicketStatus, tuple[tuple[Transition, ...], ...]]:
    """Every walk from `open` over lifecycle.TRANSITIONS, by the status it ends in, shortest first.

    Breadth-first, up to MAX_MOVES moves and MAX_REOPENS reopens; `open` itself is the empty walk.
    """
    paths: dict[TicketStatus, list[tuple[Transition, ...]]] = defaultdict(list)
    paths[S.open].append(())
    frontier: list[tuple[Transition, ...]] = [()]
    for _ in range(MAX_MOVES):
        longer = []
        for path in frontier:
            status = path[-1].target if path else S.open
            for move in lifecycle.moves_from(status):
                walk = (*path, move)
                if sum(m.reopen for m in walk) <= MAX_REOPENS:
                    paths[move.target].append(walk)
                    longer.append(walk)
        frontier = longer
    return {status: tuple(walks) for status, walks in paths.items()}


@cache
def _path_weights() -> dict[TicketStatus, list[float]]:
    """Cumulative weights: each move beyond the shortest path makes a walk four times less likely."""
    weights = {}
    for status, walks in lifecycle_paths().items():
        shortest = len(walks[0])
        cumulative, total = [], 0.0
        for walk in walks:
            total += 4.0 ** (shortest - len(walk))
            cumulative.append(total)
        weights[status] = cumulative
    return weights


@cache
def staffed_statuses() -> frozenset[TicketStatus]:
    """Statuses the table only lets a ticket enter with an assignee (from some source)."""
    return frozenset(t.target for t in lifecycle.TRANSITIONS if lifecycle.ASSIGNEE in t.requires)


def reachable_statuses() -> list[TicketStatus]:
    return [s for s in TicketStatus if s in lifecycle_paths()]


# --- The people -----------------------------------------------------------------------------------


@dataclass
class People:
    """Who is who, by id: what the ticket histories pick their actors from."""

    reporters: list[int] = field(default_factory=list)
    staff: list[int] = field(default_factory=list)  # agents and admins (active: they get assigned)
    staff_ids: set[int] = field(default_factory=set)
    staff_by_team: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    demo: dict[Role, int] = field(default_factory=dict)


def _roles(plan: Plan, rng: random.Random) -> list[Role]:
    """Role per user id (index 0 is id 1): the demo logins first, then a shuffled mix."""
    rest = plan.users - len(DEMO_LOGINS)
    admins = max(0, plan.users // 50 - 1)
    agents = min(rest - admins, max(0, plan.users // 4 - 1))
    mix = [Role.admin] * admins + [Role.agent] * agents + [Role.reporter] * (rest - admins - agents)
    rng.shuffle(mix)
    return [*DEMO_LOGINS, *mix]


def _when(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def build_teams(plan: Plan, start: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for team_id in range(1, plan.teams + 1):
        team = factories.TeamFactory.build(id=team_id, created_at=_when(start - 60 * DAY + team_id))
        rows.append(TeamRow(**{name: getattr(team, name) for name in TeamRow._fields}))
    return rows


def build_users(
    plan: Plan, rng: random.Random, start: int, people: People
) -> Iterator[list[tuple[Any, ...]]]:
    """Users in chunks of BATCH_USERS; fills `people` as it goes.

    The first POOL_SIZE users are UserFactory builds; later ones reuse a factory-made name from them
    with a new address (building a million factory objects would take minutes).
    """
    rows: list[tuple[Any, ...]] = []
    names: list[str] = []
    password = factories.demo_password_hash()
    demo = len(DEMO_LOGINS)
    for user_id, role in enumerate(_roles(plan, rng), start=1):
        team_id = 1 if user_id <= demo else rng.randint(1, plan.teams)
        active = role != Role.reporter or user_id <= demo or rng.random() >= 0.03
        created_at = _when(start - 30 * DAY + user_id % (29 * DAY))
        if user_id > demo and len(names) >= POOL_SIZE:
            name = names[rng.randrange(len(names))]
            email = factories.unique_email(name)
        else:
            fields: dict[str, Any] = {"role": role, "team_id": team_id, "is_active": active}
            if user_id <= demo:
                fields |= {"email": DEMO_LOGINS[role], "full_name": f"Demo {role.value.capitalize()}"}
                people.demo[role] = user_id
            user = factories.UserFactory.build(id=user_id, created_at=created_at, **fields)
            name, email, password = user.full_name or "", user.email, user.hashed_password
            if user_id > demo:
                names.append(name)
        stamp = hashlib.sha256(f"{plan.seed}:{user_id}".encode()).hexdigest()[:32]  # repeatable
        rows.append(
            UserRow(
                id=user_id,
                email=email,
                full_name=name,
                hashed_password=password,
                auth_stamp=stamp,
                role=role.value,
                is_active=active,
                team_id=team_id,
                created_at=created_at,
                is_service_account=False,
            )
        )
        if role == Role.reporter:
            people.reporters.append(user_id)
        else:
            people.staff.append(user_id)
            people.staff_ids.add(user_id)
            people.staff_by_team[team_id].append(user_id)
        if len(rows) == BATCH_USERS:
            yield rows
            rows = []
    if rows:
        yield rows


# --- The tickets ----------------------------------------------------------------------------------


# --- Service levels ------------------------------------------------------------------------------


def build_service_levels(plan: Plan, start: int) -> tuple[list[CalendarRow], list[PolicyRow]]:
    """The default calendar and policies (app.sla's defaults), as `db sla-defaults` describes them."""
    moment = _when(start - 60 * DAY)
    calendar = CalendarRow(
        id=CALENDAR_ID,
        name=sla.DEFAULT_CALENDAR,
        time_zone=plan.sla_time_zone,
        working_hours=calendars.office_hours(),
        holidays=[],
        builtin=False,
        created_at=moment,
        updated_at=moment,
    )
    policies = [
        PolicyRow(
            **{**default.fields(), "priority": default.priority.value},
            id=policy_id,
            calendar_id=CALENDAR_ID,
            created_at=moment,
            updated_at=moment,
        )
        for policy_id, default in enumerate(sla.DEFAULT_POLICIES, start=1)
    ]
    return [calendar], policies


def policy_rules(calendar: CalendarRow, policies: Sequence[PolicyRow]) -> list[sla.Policy]:
    """The rows as the rules read them, converted by the request path's own code."""
    calendar_model = Calendar(**calendar._asdict())
    return [policy_rule(SlaPolicy(**row._asdict()), calendar_model) for row in policies]


SlaEvent = tuple[str, str | None, str | None, str | None, str | None]


class _Service:
    """One ticket's service level along its history, as app.crud.sla_timers.refresh keeps it: the
    facts so far, the priority and team, the timers last stored, and whether a write changed what
    they are rebuilt from."""

    __slots__ = (
        "changed",
        "created_at",
        "moves",
        "policies",
        "priority",
        "reply",
        "stored",
        "team_id",
        "timers",
    )

    def __init__(
        self, policies: list[sla.Policy], created_at: datetime, priority: str, team_id: int | None
    ) -> None:
        self.policies, self.created_at = policies, created_at
        self.priority, self.team_id = Priority(priority), team_id
        self.moves: list[tuple[datetime, TicketStatus]] = []
        self.reply: datetime | None = None
        self.stored: dict[TimerKind, sla.Stored] = {}
        self.timers: dict[TimerKind, sla.Timer] = {}
        self.changed = True

    def saw(self, moment: datetime, action: str, field_name: str | None, new: str | None) -> None:
        """A write's event: a status move or a priority or team change changes the timers' input."""
        if action == EventAction.status_changed.value and new is not None:
            self.moves.append((moment, TicketStatus(new)))
        elif field_name == "priority" and new is not None:
            self.priority = Priority(new)
        elif field_name == "team_id":
            self.team_id = None if new is None else int(new)
        else:
            return
        self.changed = True

    def replied(self, moment: datetime) -> None:
        if self.reply is None:
            self.reply, self.changed = moment, True

    def refresh(self, now: datetime) -> list[SlaEvent]:
        """The timers rebuilt at `now` and stored; the events that explain the difference."""
        self.changed = False
        policy = sla.choose_policy(self.policies, self.priority, self.team_id)
        if policy is None and not self.stored:
            return []
        facts = sla.Facts(created_at=self.created_at, moves=tuple(self.moves), first_reply_at=self.reply)
        timers = sla.evaluate(policy, facts, now)
        events = sla.changes(self.stored, timers, policy)
        stored = {kind: sla.Stored.of(timer) for kind, timer in timers.items()}
        for kind, before in self.stored.items():
            if kind not in stored:  # a policy without this target now: the row is kept, cancelled
                stored[kind] = dataclasses.replace(before, state=TimerState.cancelled)
        self.stored, self.timers = stored, timers
        return [
            (a.value, kind.value, text_value(old), text_value(new), reason)
            for a, kind, old, new, reason in events
        ]

    def next_check(self) -> datetime | None:
        """When the SLA clock looks at the ticket next (the earliest of its timers' next_check_at)."""
        return min(
            (t.next_check_at for t in self.timers.values() if t.next_check_at is not None), default=None
        )


@dataclass
class Batch:
    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    comments: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    timers: list[tuple[Any, ...]] = field(default_factory=list)


class _Change:
    """One versioned write in a ticket's history: who, when, and the events it records in order."""

    __slots__ = ("actor", "at", "events")

    def __init__(self, actor: int, at: int = 0) -> None:
        self.actor, self.at = actor, at
        self.events: list[tuple[str, str | None, str | None, str | None, str | None]] = []

    def apply(self, fields: dict[str, Any], changes: dict[str, Any], reason: str | None = None) -> None:
        """Set the ticket's `fields` and record the events app.audit says the changes make, the way
        app.crud's Change.apply does (`reason` goes on the status event)."""
        for action, name, old in audit.recorded(fields, changes):
            why = reason if action == EventAction.status_changed else None
            self.events.append((action.value, name, text_value(old), text_value(changes[name]), why))
        fields.update(changes)


class _Ticket:
    """A ticket while its history is written: its fields by column name, as crud would hold them."""

    __slots__ = ("created_at", "fields", "id")

    def __init__(self, ticket_id: int, created_at: int, fields: dict[str, Any]) -> None:
        self.id, self.created_at, self.fields = ticket_id, created_at, fields


# A reporter asking for a move on their own ticket.
_REPORTER = lifecycle.Mover(may_move_any=False, is_reporter=True)


class TicketHistories:
    """Builds tickets with their events and comments, BATCH_TICKETS at a time."""

    def __init__(
        self, plan: Plan, rng: random.Random, people: People, policies: list[sla.Policy] | None = None
    ) -> None:
        self.plan, self.rng, self.people = plan, rng, people
        self.policies = policies or []
        self.end = int((plan.anchor - EPOCH).total_seconds())
        self.start = self.end - HISTORY_DAYS * DAY
        self.step = max(1, HISTORY_DAYS * DAY // max(1, plan.tickets))
        self.next_event = self.next_comment = self.next_timer = 1
        pool = min(POOL_SIZE, max(1, plan.tickets))
        self.texts = [self._ticket_text() for _ in range(pool)]
        self.replies = [factories.CommentFactory.build(internal=False).body for _ in range(min(pool, 500))]
        self.notes = [factories.CommentFactory.build(internal=True).body for _ in range(min(pool, 500))]
        self.resolutions = [factories.resolution_text() for _ in range(min(pool, 200))]
        self.reasons = {s: [factories.move_reason(s) for _ in range(min(pool, 100))] for s in TicketStatus}
        self.forced = reachable_statuses()  # the first tickets take each status once
        self.paths, self.path_weights = lifecycle_paths(), _path_weights()
        self.staffed = staffed_statuses()
        self.statuses = list(RECENT_WEIGHTS)
        self.recent = list(_cumulate([RECENT_WEIGHTS[s] for s in self.statuses]))
        self.old = list(_cumulate([OLD_WEIGHTS[s] for s in self.statuses]))
        self.comment_counts = list(_cumulate(list(COMMENT_WEIGHTS)))
        self.demo_share = min(0.05, 100 / max(1, plan.tickets))

    @staticmethod
    def _ticket_text() -> tuple[str, str | None, str]:
        ticket = factories.TicketFactory.build(reporter_id=1)
        return ticket.title, ticket.description, ticket.priority.value

    def batches(self, check: Callable[[], None] = lambda: None) -> Iterator[Batch]:
        batch = Batch()
        for ticket_id in range(1, self.plan.tickets + 1):
            if ticket_id % CHECK_EVERY == 0:
                check()
            self._ticket(ticket_id, batch)
            if len(batch.tickets) == BATCH_TICKETS:
                yield batch
                batch = Batch()
        if batch.tickets:
            yield batch

    # Who: demo logins get a steady share of the work so their views are never empty.

    def _staff(self, team_id: int | None) -> int:
        rng, people = self.rng, self.people
        if rng.random() < self.demo_share:
            return people.demo[Role.agent]
        members = people.staff_by_team.get(team_id or 0) or people.staff
        return members[rng.randrange(len(members))]

    def _reporter(self) -> int:
        rng, people = self.rng, self.people
        if rng.random() < self.demo_share:
            return people.demo[Role.reporter]
        pool = people.reporters if rng.random() < 0.85 else people.staff
        return pool[rng.randrange(len(pool))]

    # What: one ticket, from its creation to its final status.

    def _ticket(self, ticket_id: int, batch: Batch) -> None:
        rng = self.rng
        span = HISTORY_DAYS * DAY
        created_at = (
            self.start + (ticket_id - 1) * span // max(1, self.plan.tickets) + rng.randrange(self.step)
        )
        created_at = min(self.end, created_at)  # ids follow creation time
        if ticket_id <= len(self.forced):
            target = self.forced[ticket_id - 1]
        else:
            weights = self.recent if self.end - created_at < 14 * DAY else self.old
            target = rng.choices(self.statuses, cum_weights=weights)[0]
        path = rng.choices(self.paths[target], cum_weights=self.path_weights[target])[0]
        title, description, priority = self.texts[rng.randrange(len(self.texts))]
        team = rng.randint(1, self.plan.teams) if rng.random() < 0.9 else None
        reporter = self._reporter()
        assignee = None
        if reporter in self.people.staff_ids and rng.random() < 0.3:
            assignee = reporter  # an agent filing a ticket takes it
        fields: dict[str, Any] = {
            "title": title,
            "description": description,
            "priority": priority,
            "status": S.open,
            "reporter_id": reporter,
            "assignee_id": assignee,
            "team_id": team,
            "resolution": None,
            "resolved_at": None,
            "closed_at": None,
            "reopen_count": 0,
        }
        ticket = _Ticket(ticket_id, created_at, fields)
        created_with = dict(audit.created(fields))
        changes = self._triage(ticket, path)
        times = self._times(created_at, len(changes) + len(path))
        for change, at in zip(changes, times, strict=False):
            change.at = at
        for move, at in zip(path, times[len(changes) :], strict=True):
            changes.append(self._move(ticket, move, at))
        self._write(ticket, created_with, changes, batch)

    def _triage(self, ticket: _Ticket, path: tuple[Transition, ...]) -> list[_Change]:
        """An edit before the first move, as crud.update_ticket records it: priority, then assignee."""
        rng, fields = self.rng, ticket.fields
        priority = None
        if rng.random() < 0.12:
            priority = rng.choice([p.value for p in Priority if p.value != fields["priority"]])
        assignee = None
        enters_staffed = bool(path) and path[0].target in self.staffed
        if fields["assignee_id"] is None and not enters_staffed and rng.random() < 0.45:
            assignee = self._staff(fields["team_id"])
        if priority is None and assignee is None:
            return []
        change = _Change(assignee or self._staff(fields["team_id"]))
        edits: dict[str, Any] = {}  # in TicketUpdate's field order, as crud applies an edit
        if priority is not None:
            edits["priority"] = priority
        if assignee is not None:
            edits["assignee_id"] = assignee
        change.apply(fields, edits)
        return [change]

    def _times(self, created_at: int, count: int) -> list[int]:
        """When each write happens: random gaps, squeezed to end by the anchor when they would not."""
        gaps = [self.rng.randint(300, 2 * DAY) for _ in range(count)]
        total, room = sum(gaps), self.end - created_at
        times, elapsed = [], 0
        for gap in gaps:
            elapsed += gap
            times.append(created_at + (elapsed if total <= room else elapsed * room // total))
        return times

    def _move(self, ticket: _Ticket, move: Transition, at: int) -> _Change:
        """A status move, as a request to crud.move_ticket would make it: an actor who may, the fields
        the move requires, and the changes and events app.lifecycle and app.audit say it makes."""
        rng, fields = self.rng, ticket.fields
        needs_assignee = move.target in self.staffed and fields["assignee_id"] is None
        if lifecycle.may_make(move, _REPORTER) and not needs_assignee and rng.random() < 0.5:
            actor = fields["reporter_id"]
        else:
            actor = (
                fields["assignee_id"] if fields["assignee_id"] is not None else self._staff(fields["team_id"])
            )
        given: dict[str, Any] = {}
        if lifecycle.REASON in move.requires:
            reasons = self.reasons[move.target]
            given[lifecycle.REASON] = reasons[rng.randrange(len(reasons))]
        if needs_assignee:
            staff = actor in self.people.staff_ids
            given[lifecycle.ASSIGNEE] = actor if staff else self._staff(fields["team_id"])
        if lifecycle.RESOLUTION in move.requires:
            given[lifecycle.RESOLUTION] = self.resolutions[rng.randrange(len(self.resolutions))]
        has_assignee = fields["assignee_id"] is not None or lifecycle.ASSIGNEE in given
        assert lifecycle.refused_field(move, has_assignee=has_assignee, given=given) is None, move
        change = _Change(actor, at)
        moved = lifecycle.changes(
            move,
            at=_when(at),
            reopen_count=fields["reopen_count"],
            assignee_id=given.get(lifecycle.ASSIGNEE),
            resolution=given.get(lifecycle.RESOLUTION),
        )
        change.apply(fields, moved, given.get(lifecycle.REASON))
        return change

    def _write(
        self, ticket: _Ticket, created_with: dict[str, Any], changes: list[_Change], batch: Batch
    ) -> None:
        """The rows: `created` events, then the changes and the comments merged in time order."""
        rng, ticket_id, fields = self.rng, ticket.id, ticket.fields
        last = changes[-1].at if changes else ticket.created_at
        bound = last if fields["status"] in lifecycle.FINAL else self.end  # no comments after closing
        count = bisect.bisect_right(self.comment_counts, rng.random() * self.comment_counts[-1])
        comment_times = sorted(rng.randint(ticket.created_at, bound) for _ in range(count))

        moments: dict[int, datetime] = {}

        def when(seconds: int) -> datetime:
            moment = moments.get(seconds)
            if moment is None:
                moment = moments[seconds] = EPOCH + timedelta(seconds=seconds)
            return moment

        add, event_id = batch.events.append, self.next_event
        created, reporter = when(ticket.created_at), fields["reporter_id"]
        for created_field, value in created_with.items():
            add(
                EventRow(
                    id=event_id,
                    ticket_id=ticket_id,
                    actor_id=reporter,
                    action=EventAction.created.value,
                    field=created_field,
                    old_value=None,
                    new_value=text_value(value),
                    reason=None,
                    ticket_version=1,
                    created_at=created,
                    request_id=None,
                )
            )
            event_id += 1
        service = _Service(
            self.policies, created, text_value(created_with["priority"]) or "", created_with.get("team_id")
        )
        version, updated = 1, when(last)

        def record(events: list[SlaEvent], actor: int | None, moment: datetime) -> None:
            nonlocal event_id
            for action, timer, old, new, reason in events:
                add(
                    EventRow(
                        id=event_id,
                        ticket_id=ticket_id,
                        actor_id=actor,
                        action=action,
                        field=timer,
                        old_value=old,
                        new_value=new,
                        reason=reason,
                        ticket_version=version,
                        created_at=moment,
                        request_id=None,
                    )
                )
                event_id += 1

        def clock(until: datetime, *, inclusive: bool) -> None:
            """The SLA clock's passes before `until`: each warning or breach a version of its own."""
            nonlocal version, updated
            while (check := service.next_check()) is not None and (
                check < until or (inclusive and check == until)
            ):
                events = service.refresh(check)
                if not events:
                    return
                version += 1
                updated = max(updated, check)
                record(events, None, check)

        record(service.refresh(created), reporter, created)
        c = 0
        for change in [*changes, None]:
            while c < count and (change is None or comment_times[c] < change.at):
                moment = when(comment_times[c])
                clock(moment, inclusive=False)
                event_id, author, internal = self._comment(ticket, event_id, version, moment, batch)
                if not internal and author in self.people.staff_ids:
                    service.replied(moment)
                if service.changed:
                    record(service.refresh(moment), author, moment)
                c += 1
            if change is None:
                break
            moment = when(change.at)
            clock(moment, inclusive=False)
            version += 1
            for action, changed_field, old, new, reason in change.events:
                add(
                    EventRow(
                        id=event_id,
                        ticket_id=ticket_id,
                        actor_id=change.actor,
                        action=action,
                        field=changed_field,
                        old_value=old,
                        new_value=new,
                        reason=reason,
                        ticket_version=version,
                        created_at=moment,
                        request_id=None,
                    )
                )
                event_id += 1
                service.saw(moment, action, changed_field, new)
            if service.changed:
                record(service.refresh(moment), change.actor, moment)
        # Up to the anchor: the clock's passes, then the timers as a refresh there stores them.
        anchor = when(self.end)
        clock(anchor, inclusive=True)
        final = service.refresh(anchor)
        if final:  # (the clock recorded everything due: nothing is left)
            version += 1
            updated = anchor
            record(final, None, anchor)
        self.next_event = event_id
        sla_state, sla_due_at = sla.summary(service.timers.values())
        for kind, timer in service.timers.items():
            batch.timers.append(
                TimerRow(
                    id=self.next_timer,
                    ticket_id=ticket_id,
                    kind=kind.value,
                    state=timer.state.value,
                    policy_id=timer.policy_id,
                    target_minutes=timer.target_minutes,
                    started_at=timer.started_at,
                    due_at=timer.due_at,
                    warn_at=timer.warn_at,
                    warned_at=timer.warned_at,
                    breached_at=timer.breached_at,
                    met_at=timer.met_at,
                    paused_since=timer.paused_since,
                    paused_seconds=int(timer.paused.total_seconds()),
                    next_check_at=timer.next_check_at,
                )
            )
            self.next_timer += 1
        batch.tickets.append(
            TicketRow(
                id=ticket_id,
                title=fields["title"],
                description=fields["description"],
                priority=fields["priority"],
                assignee_id=fields["assignee_id"],
                team_id=fields["team_id"],
                status=fields["status"].value,
                reporter_id=reporter,
                created_at=created,
                updated_at=updated,
                resolved_at=fields["resolved_at"],
                closed_at=fields["closed_at"],
                resolution=fields["resolution"],
                reopen_count=fields["reopen_count"],
                version=version,
                sla_due_at=sla_due_at,
                sla_state=sla_state.value,
            )
        )

    def _comment(
        self, ticket: _Ticket, event_id: int, version: int, moment: datetime, batch: Batch
    ) -> tuple[int, int, bool]:
        """A comment (reporter or staff) or an internal note (staff), and the event that records it;
        returns the next event id, the author and whether it is internal."""
        rng, fields = self.rng, ticket.fields
        if rng.random() < 0.4:
            author, internal = fields["reporter_id"], False
        else:
            assignee = fields["assignee_id"]
            use_assignee = assignee is not None and rng.random() < 0.7
            author = assignee if use_assignee and assignee else self._staff(fields["team_id"])
            internal = rng.random() < 0.35
        bodies = self.notes if internal else self.replies
        comment_id = self.next_comment
        self.next_comment += 1
        body = bodies[rng.randrange(len(bodies))]
        batch.comments.append(
            CommentRow(
                id=comment_id,
                ticket_id=ticket.id,
                author_id=author,
                body=body,
                internal=internal,
                created_at=moment,
            )
        )
        action = EventAction.noted if internal else EventAction.commented
        batch.events.append(
            EventRow(
                id=event_id,
                ticket_id=ticket.id,
                actor_id=author,
                action=action.value,
                field=None,
                old_value=None,
                new_value=str(comment_id),
                reason=None,
                ticket_version=version,
                created_at=moment,
                request_id=None,
            )
        )
        return event_id + 1, author, internal


def _cumulate(weights: list[int]) -> Iterator[int]:
    total = 0
    for weight in weights:
        total += weight
        yield total


# --- Running a seed -------------------------------------------------------------------------------


# What seed_database is doing, as Progress.phase reports it (in this order).
PHASE_PEOPLE, PHASE_POOLS, PHASE_TICKETS = "teams and users", "factory pools", "tickets, events, comments"
PHASE_INDEXES, PHASE_COMMIT = "indexes and constraints", "commit"


@dataclass
class Progress:
    """Callbacks the CLI uses to show progress (all optional)."""

    phase: Callable[[str], None] = lambda _text: None
    tickets_done: Callable[[int], None] = lambda _count: None
    # Called every CHECK_EVERY tickets while a batch is built: raises to stop the seed (the CLI's
    # SIGTERM / Ctrl-C), so a stop does not wait for a whole batch.
    check: Callable[[], None] = lambda: None


Chunk = tuple[type[SQLModel], tuple[str, ...], list[tuple[Any, ...]]]


class Loader(Protocol):
    def __call__(
        self,
        *,
        session: Session,
        model: type[SQLModel],
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> int: ...


def generate(plan: Plan, progress: Progress | None = None) -> Iterator[Chunk]:
    """The plan's rows, parents first, as (model, columns, rows) chunks of bounded size."""
    progress = progress or Progress()
    check_rows()
    factories.seed_factories(plan.seed)
    rng = random.Random(plan.seed)
    end = int((plan.anchor - EPOCH).total_seconds())
    start = end - HISTORY_DAYS * DAY
    progress.phase(PHASE_PEOPLE)
    yield Team, TeamRow._fields, build_teams(plan, start)
    people = People()
    for users in build_users(plan, rng, start, people):
        yield User, UserRow._fields, users
    calendar_rows, policy_rows = build_service_levels(plan, start)
    yield Calendar, CalendarRow._fields, list[tuple[Any, ...]](calendar_rows)
    yield SlaPolicy, PolicyRow._fields, list[tuple[Any, ...]](policy_rows)
    progress.phase(PHASE_POOLS)
    histories = TicketHistories(plan, rng, people, policy_rules(calendar_rows[0], policy_rows))
    progress.phase(PHASE_TICKETS)
    for batch in histories.batches(progress.check):
        yield Ticket, TicketRow._fields, batch.tickets
        yield Comment, CommentRow._fields, batch.comments
        yield TicketEvent, EventRow._fields, batch.events
        yield SlaTimer, TimerRow._fields, batch.timers
        progress.tickets_done(len(batch.tickets))


def seed_database(
    session: Session,
    plan: Plan,
    progress: Progress | None = None,
    *,
    loader: Loader = bulk_insert,
    defer_indexes: bool = True,
) -> None:
    """Insert the plan's rows into the empty schema `session` is bound to, in ONE transaction.

    The caller resets the schema first; this commits only at the very end, so an interrupted seed
    leaves the empty schema behind, never a part of the data. On PostgreSQL the secondary indexes and
    foreign keys are rebuilt once at the end (migrations.indexes_deferred), inside that transaction.
    `loader` and `defer_indexes` exist for scripts/bench_seed.py's naive path.
    """
    progress = progress or Progress()
    tables = [str(model.__tablename__) for model in TABLES]
    with migrations.indexes_deferred(session.connection(), tables) if defer_indexes else nullcontext():
        for model, columns, rows in generate(plan, progress):
            loader(session=session, model=model, columns=columns, rows=rows)
        progress.phase(PHASE_INDEXES)
    reset_id_sequences(session=session, models=TABLES)
    progress.phase(PHASE_COMMIT)
    session.commit()
