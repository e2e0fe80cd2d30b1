"""Who is told about what: the notification rules as tables, and pure functions that apply them.

A ticket write's events (app.crud.ticket_writes.TicketWrite.events) become notices:

| event                                   | kind               | audience                          |
|-----------------------------------------|--------------------|-----------------------------------|
| created, field assignee_id              | ticket_assigned    | the new assignee                  |
| assigned (to someone, not to nobody)    | ticket_assigned    | the new assignee                  |
| commented                               | ticket_commented   | the watchers                      |
| noted (an internal note)                | ticket_commented   | the watchers who are agents/admins|
| status_changed -> resolved              | ticket_resolved    | the watchers                      |
| status_changed -> closed                | ticket_closed      | the watchers                      |
| status_changed resolved/closed -> open/in_progress | ticket_reopened | the watchers              |
| sla_warning / sla_breached              | sla_warning / sla_breached | the assignee; unassigned: the active agents and admins of the ticket's team |

Other events notify nobody. Whoever the audience, a recipient is dropped when they are the actor,
inactive, cannot see the ticket (app.permissions.can_see: a reporter sees only their own), would
get an internal note without being an agent or admin, or switched the kind off (PREFERENCE_KINDS;
no setting = on).

The watchers of a ticket: its reporter, its assignee, everyone who commented on it (a note
included) and everyone who watches it explicitly, minus everyone who unwatched it (an explicit
`watching = false` beats every automatic reason).
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.models import (
    EventAction,
    NotificationKind,
    Role,
    Ticket,
    TicketEvent,
    TicketStatus,
    WatchReason,
)
from app.permissions import ROLE_PERMISSIONS, Permission

S = TicketStatus
K = NotificationKind


class Audience(StrEnum):
    assignee = "assignee"  # the user the event assigns the ticket to
    watchers = "watchers"
    sla = "sla"  # the ticket's assignee; unassigned: the active agents and admins of its team


@dataclass(frozen=True)
class Rule:
    kind: NotificationKind
    audience: Audience
    internal: bool = False  # only agents and admins may receive it


# Events that notify whatever their values (besides the status moves below).
EVENT_RULES: dict[EventAction, Rule] = {
    EventAction.assigned: Rule(K.ticket_assigned, Audience.assignee),
    EventAction.commented: Rule(K.ticket_commented, Audience.watchers),
    EventAction.noted: Rule(K.ticket_commented, Audience.watchers, internal=True),
    EventAction.sla_warning: Rule(K.sla_warning, Audience.sla),
    EventAction.sla_breached: Rule(K.sla_breached, Audience.sla),
}
# A ticket filed with an assignee: its `created` event for this field.
CREATED_RULES: dict[str, Rule] = {"assignee_id": Rule(K.ticket_assigned, Audience.assignee)}

ANY: frozenset[TicketStatus] = frozenset(TicketStatus)
DONE: frozenset[TicketStatus] = frozenset({S.resolved, S.closed})
# Status moves that notify the watchers: (from any of, to) -> kind. Other moves notify nobody.
STATUS_RULES: tuple[tuple[frozenset[TicketStatus], TicketStatus, NotificationKind], ...] = (
    (ANY, S.resolved, K.ticket_resolved),
    (ANY, S.closed, K.ticket_closed),
    (DONE, S.open, K.ticket_reopened),
    (DONE, S.in_progress, K.ticket_reopened),
)
# Who may receive a notice for a team's SLA (the ticket unassigned).
SLA_TEAM_ROLES: frozenset[Role] = frozenset({Role.agent, Role.admin})


@dataclass(frozen=True)
class Notice:
    """One kind of message to one audience, from one event. `assignee_id`: the Audience.assignee
    recipient. `payload`: what the outbox row carries (ids and values, never a secret)."""

    kind: NotificationKind
    audience: Audience
    internal: bool
    payload: Mapping[str, Any]
    assignee_id: int | None = None


def status_kind(old: str | None, new: str | None) -> NotificationKind | None:
    """The kind a status move from `old` to `new` notifies, or None."""
    if old is None or new is None:
        return None
    source, target = TicketStatus(old), TicketStatus(new)
    for sources, to, kind in STATUS_RULES:
        if target == to and source in sources:
            return kind
    return None


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def notices(events: Iterable[TicketEvent]) -> list[Notice]:
    """The notices a write's events make, in event order (none for most edits)."""
    found = []
    for event in events:
        base = {"event_id": event.id}
        if event.action == EventAction.status_changed:
            kind = status_kind(event.old_value, event.new_value)
            if kind is not None:
                payload = {**base, "from": event.old_value, "to": event.new_value, "actor_id": event.actor_id}
                found.append(Notice(kind, Audience.watchers, False, payload))
            continue
        rule = CREATED_RULES.get(event.field or "") if event.action == EventAction.created else None
        rule = rule or EVENT_RULES.get(event.action)
        if rule is None:
            continue
        if rule.audience == Audience.assignee:
            assignee = _int(event.new_value)
            if assignee is not None:
                payload = {**base, "actor_id": event.actor_id}
                found.append(Notice(rule.kind, rule.audience, rule.internal, payload, assignee_id=assignee))
        elif rule.audience == Audience.watchers:  # a comment or a note: new_value is its id
            payload = {
                **base,
                "comment_id": _int(event.new_value),
                "internal": rule.internal,
                "actor_id": event.actor_id,
            }
            found.append(Notice(rule.kind, rule.audience, rule.internal, payload))
        else:  # an SLA event: `field` names the timer, new_value its due time
            payload = {**base, "timer": event.field, "due_at": event.new_value}
            found.append(Notice(rule.kind, rule.audience, rule.internal, payload))
    return found


@dataclass(frozen=True)
class Person:
    """Someone who may be told about a ticket, as the enqueue query reads them."""

    id: int
    role: Role
    is_active: bool
    team_id: int | None = None
    watching: bool | None = None  # an explicit row: True watch, False unwatch, None no row
    commented: bool = False
    email: str | None = None
    full_name: str | None = None
    disabled: frozenset[NotificationKind] = field(default_factory=frozenset)
    is_service_account: bool = False  # an integration's account: never e-mailed

    def may(self, permission: Permission) -> bool:
        """Whether their role has `permission` (app.permissions' table; no User is built: this runs
        for every candidate of every notifying write)."""
        return permission in ROLE_PERMISSIONS[self.role]

    def can_see(self, ticket: Ticket) -> bool:
        """app.permissions.can_see, for a Person."""
        return self.may(Permission.ticket_read_all) or ticket.reporter_id == self.id


def watch_reasons(person: Person, ticket: Ticket) -> list[WatchReason]:
    """Why `person` watches `ticket` (empty: they do not, e.g. they unwatched it)."""
    if person.watching is False:
        return []
    reasons = {
        WatchReason.reporter: person.id == ticket.reporter_id,
        WatchReason.assignee: person.id == ticket.assignee_id,
        WatchReason.commenter: person.commented,
        WatchReason.explicit: person.watching is True,
    }
    return [reason for reason, applies in reasons.items() if applies]


def may_receive(person: Person, notice: Notice, ticket: Ticket, actor_id: int | None) -> bool:
    """Whether `person` gets `notice`: not the actor, a person (not a service account: the tickets
    an alert opens have one as reporter), active, sees the ticket (and, for an internal note,
    internal notes), and has not switched the kind off."""
    return (
        person.id != actor_id
        and not person.is_service_account
        and person.is_active
        and person.can_see(ticket)
        and (not notice.internal or person.may(Permission.note_internal))
        and notice.kind not in person.disabled
    )


def audience(notice: Notice, people: Mapping[int, Person], ticket: Ticket) -> Iterator[Person]:
    """Everyone in `notice`'s audience, before may_receive (people: everyone the query read)."""
    if notice.audience == Audience.assignee:
        person = people.get(notice.assignee_id) if notice.assignee_id is not None else None
        yield from [person] if person is not None else []
    elif notice.audience == Audience.watchers:
        yield from (person for person in people.values() if watch_reasons(person, ticket))
    elif ticket.assignee_id is not None:
        person = people.get(ticket.assignee_id)
        yield from [person] if person is not None else []
    elif ticket.team_id is not None:
        yield from (
            person
            for person in people.values()
            if person.team_id == ticket.team_id and person.role in SLA_TEAM_ROLES
        )


def recipients(
    notice: Notice, people: Mapping[int, Person], ticket: Ticket, actor_id: int | None
) -> list[int]:
    """The user ids that get `notice`, in id order."""
    return sorted(
        person.id
        for person in audience(notice, people, ticket)
        if may_receive(person, notice, ticket, actor_id)
    )


@dataclass(frozen=True)
class Needs:
    """What the enqueue query must read for a write's notices."""

    watchers: bool  # the ticket's commenters and explicit watch rows
    team: bool  # the agents and admins of the ticket's team (an SLA notice, the ticket unassigned)
    users: frozenset[int]  # these users (assignees, the reporter)
    kinds: frozenset[NotificationKind]


def needs(found: Sequence[Notice], ticket: Ticket) -> Needs:
    watchers = any(n.audience == Audience.watchers for n in found)
    sla = any(n.audience == Audience.sla for n in found)
    users = {n.assignee_id for n in found if n.assignee_id is not None}
    if watchers:
        users |= {ticket.reporter_id}
    if (watchers or sla) and ticket.assignee_id is not None:
        users.add(ticket.assignee_id)
    return Needs(
        watchers=watchers,
        team=sla and ticket.assignee_id is None and ticket.team_id is not None,
        users=frozenset(users),
        kinds=frozenset(n.kind for n in found),
    )
