"""Alerts from monitoring (the rules: app.alerts): each alert is one ticket write.

An alert runs in one `ticket_writes.transaction`, which first locks its dedup key's row in
`alert_keys` (inserted if absent, then SELECT ... FOR UPDATE; SQLite's write transactions are
serialized anyway) and holds it to the commit: alerts for one key queue, so concurrent triggers
open one ticket and count every repeat. The ticket is then locked as any ticket write locks it
(the key first, then the ticket: no other write takes them in the other order). What an alert does
to the ticket (a creation, an internal note, a lifecycle move) is recorded and handed to the write
hooks like any other write: audit trail, SLA timers, notifications.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import alerts, audit, lifecycle
from app.core.config import get_settings
from app.core.database import Database
from app.core.errors import Invalid, NotFound
from app.crud import common, ticket_writes
from app.crud.ticket_writes import TicketTransaction, WriteKind
from app.models import (
    AlertAction,
    AlertKey,
    AlertmanagerPayload,
    AlertOutcome,
    AlertResult,
    AnyAlert,
    Comment,
    EventAction,
    Team,
    Ticket,
    TicketStatus,
    User,
)
from app.permissions import Permission as P
from app.permissions import require

ALERT_NOT_FOUND = "No alert with this dedup_key"
_KEYS = AlertKey.__table__  # type: ignore[attr-defined]


async def _locked_key(session: AsyncSession, dedup_key: str, *, create: bool) -> AlertKey | None:
    """The key's row, locked until the transaction ends (created first when `create`)."""
    if create:
        dialect = (await session.connection()).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.exec(insert(_KEYS).values(dedup_key=dedup_key, alert_count=0).on_conflict_do_nothing())
    stmt = select(AlertKey).where(AlertKey.dedup_key == dedup_key).with_for_update()
    return (await session.exec(stmt)).first()


@dataclass
class _Alert:
    """One alert's write in progress: its transaction, the caller, its locked key and ticket."""

    tx: TicketTransaction
    caller: User
    event: AnyAlert
    key: AlertKey
    ticket: Ticket | None

    def outcome(self, result: AlertResult, message: str) -> AlertOutcome:
        return AlertOutcome(
            ticket_id=None if self.ticket is None else self.ticket.id,
            dedup_key=self.key.dedup_key,
            result=result,
            alert_count=self.key.alert_count,
            status=None if self.ticket is None else self.ticket.status,
            message=message,
        )

    @property
    def source(self) -> str:
        return self.event.source or self.key.source or self.caller.email

    async def note(self, body: str) -> None:
        """An internal note on the ticket, by the caller."""
        assert self.ticket is not None and self.ticket.id is not None and self.caller.id is not None
        session = self.tx.session
        now = common.utcnow()
        comment = Comment(
            ticket_id=self.ticket.id, author_id=self.caller.id, body=body, internal=True, created_at=now
        )
        session.add(comment)
        await session.flush()
        self.tx.change(WriteKind.commented, self.ticket, self.caller, now=now).record(
            EventAction.noted, None, None, comment.id
        )

    def move(
        self, transition: lifecycle.Transition, *, reason: str | None, resolution: str | None = None
    ) -> None:
        """A lifecycle move of the ticket, by the caller."""
        assert self.ticket is not None
        change = self.tx.change(WriteKind.moved, self.ticket, self.caller)
        change.bump()
        changes = lifecycle.changes(
            transition, at=change.now, reopen_count=self.ticket.reopen_count, resolution=resolution
        )
        change.apply(changes, reason=reason)

    def counted(self) -> None:
        self.key.alert_count += 1
        self.key.last_alert_at = common.utcnow()
        self.key.source = self.event.source


async def _team(session: AsyncSession, team_id: int | None) -> None:
    if team_id is not None and await session.get(Team, team_id) is None:
        raise Invalid("team_id", f"no team with id {team_id}")


async def _create(alert: _Alert) -> AlertOutcome:
    event, caller, session = alert.event, alert.caller, alert.tx.session
    assert event.summary is not None and event.severity is not None and event.source is not None
    assert caller.id is not None
    now = common.utcnow()
    ticket = Ticket(
        title=alerts.title(event.summary),
        description=alerts.description(
            summary=event.summary,
            severity=event.severity,
            source=event.source,
            dedup_key=alert.key.dedup_key,
            details=event.details,
        ),
        priority=alerts.SEVERITY_PRIORITY[event.severity],
        team_id=event.team_id,
        reporter_id=caller.id,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    change = alert.tx.change(WriteKind.created, ticket, caller, now=now)
    for field, value in audit.created({name: getattr(ticket, name) for name in audit.CREATED_FIELDS}):
        change.record(EventAction.created, field, None, value)
    alert.ticket = ticket
    alert.key.ticket_id, alert.key.alert_count, alert.key.first_alert_at = ticket.id, 0, now
    alert.counted()
    return alert.outcome(AlertResult.created, f"Opened ticket {ticket.id}")


async def _repeat(alert: _Alert) -> AlertOutcome:
    event = alert.event
    assert event.summary is not None and event.severity is not None and event.source is not None
    alert.counted()
    await alert.note(
        alerts.repeat_note(
            count=alert.key.alert_count,
            summary=event.summary,
            severity=event.severity,
            source=event.source,
            details=event.details,
        )
    )
    return alert.outcome(
        AlertResult.deduplicated, "Counted as a repeat on the open ticket (internal note added)"
    )


async def _reopen(alert: _Alert) -> AlertOutcome:
    assert alert.ticket is not None
    transition = lifecycle.find(alert.ticket.status, TicketStatus.in_progress)
    assert transition is not None and transition.reopen
    alert.counted()
    alert.move(transition, reason=f"Alert triggered again after its resolution: {alert.event.summary}")
    return alert.outcome(AlertResult.reopened, "Reopened: triggered again within the reopen window")


TRIGGERED = {
    AlertResult.created: _create,
    AlertResult.deduplicated: _repeat,
    AlertResult.reopened: _reopen,
}


async def _trigger(alert: _Alert) -> AlertOutcome:
    ticket = alert.ticket
    result = alerts.trigger_result(
        None if ticket is None else ticket.status,
        resolved_at=None if ticket is None else ticket.resolved_at,
        now=common.utcnow(),
        window_seconds=get_settings().ALERT_REOPEN_WINDOW_SECONDS,
    )
    return await TRIGGERED[result](alert)


async def _settle(alert: _Alert) -> AlertOutcome:
    """Acknowledge or resolve the key's ticket: the move if the rules allow it, else a note."""
    action, ticket = AlertAction(alert.event.action), alert.ticket
    if ticket is None:
        raise NotFound(ALERT_NOT_FOUND)
    verb = "acknowledged" if action == AlertAction.acknowledge else "resolved"
    if ticket.status not in alerts.ACTIVE:
        return alert.outcome(AlertResult.ignored, f"Nothing to do: the ticket is {ticket.status.value}")
    target = alerts.TARGET[action]
    transition = lifecycle.find(ticket.status, target)
    if transition is None:
        return alert.outcome(
            AlertResult.ignored, f"Nothing to do: the ticket is already {ticket.status.value}"
        )
    if action == AlertAction.resolve:
        assignee = (
            None if ticket.assignee_id is None else await alert.tx.session.get(User, ticket.assignee_id)
        )
        if alerts.taken_over(None if assignee is None else assignee.is_service_account):
            await alert.note(
                f"Alert {verb} by {alert.source}; left {ticket.status.value}: it has a person assigned."
            )
            return alert.outcome(AlertResult.noted, "A person has taken the ticket over: internal note only")
        move_resolution: str | None = alerts.resolution(alert.source)
    else:
        move_resolution = None
    given = {lifecycle.RESOLUTION: move_resolution}
    refused = lifecycle.refused_field(transition, has_assignee=ticket.assignee_id is not None, given=given)
    if refused is not None:
        await alert.note(
            f"Alert {verb} by {alert.source}; left {ticket.status.value}: {refused[0]} is {refused[1]}."
        )
        return alert.outcome(
            AlertResult.noted, f"Not moved: {refused[0]} is {refused[1]} (internal note added)"
        )
    alert.move(transition, reason=f"Alert {verb} by {alert.source}", resolution=move_resolution)
    return alert.outcome(alerts.DONE[action], f"Moved to {target.value}")


async def handle_alert(
    *, db: Database, event: AnyAlert, caller: User, unknown_ok: bool = False
) -> AlertOutcome:
    """Apply one alert (see app.alerts). `unknown_ok`: an acknowledge or resolve for an unknown key
    is `ignored` instead of a 404 (Alertmanager)."""
    require(caller, P.alert_write, "send alerts")
    dedup_key = event.dedup_key or uuid.uuid4().hex
    trigger = event.action == AlertAction.trigger
    async with ticket_writes.transaction(db) as tx:
        if trigger:  # checked on every trigger, though only a new ticket takes the team
            await _team(tx.session, event.team_id)
        key = await _locked_key(tx.session, dedup_key, create=trigger)
        ticket = None
        if key is not None and key.ticket_id is not None:
            ticket = await tx.session.get(Ticket, key.ticket_id, with_for_update=True)
        if key is None or (ticket is None and not trigger):
            if unknown_ok:
                return AlertOutcome(
                    ticket_id=None,
                    dedup_key=dedup_key,
                    result=AlertResult.ignored,
                    alert_count=0,
                    status=None,
                    message="No alert with this dedup_key: nothing to resolve",
                )
            raise NotFound(ALERT_NOT_FOUND)
        alert = _Alert(tx=tx, caller=caller, event=event, key=key, ticket=ticket)
        outcome = await (_trigger(alert) if trigger else _settle(alert))
    return outcome


async def handle_alertmanager(
    *, db: Database, payload: AlertmanagerPayload, caller: User
) -> list[AlertOutcome]:
    """Each alert of an Alertmanager notification, in order, each in its own transaction."""
    require(caller, P.alert_write, "send alerts")
    names = {
        a.labels[alerts.ALERTMANAGER_TEAM_LABEL]
        for a in payload.alerts
        if alerts.ALERTMANAGER_TEAM_LABEL in a.labels
    }
    teams: dict[str, int] = {}
    if names:
        session = await db.reader()
        rows = (await session.exec(select(Team.name, Team.id).where(col(Team.name).in_(names)))).all()
        teams = {name: team_id for name, team_id in rows if team_id is not None}
    results = []
    for item in payload.alerts:
        team_id = teams.get(item.labels.get(alerts.ALERTMANAGER_TEAM_LABEL, ""))
        event = alerts.from_alertmanager(item, team_id=team_id)
        results.append(await handle_alert(db=db, event=event, caller=caller, unknown_ok=True))
    return results
