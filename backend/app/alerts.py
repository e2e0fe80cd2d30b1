"""Alerts from monitoring: the rules, as tables and pure functions (app.crud.alerts applies them).

An alert names its problem by a dedup key; the key's ticket is where its alerts go:

| the key's ticket is          | trigger                                   | acknowledge          | resolve                 |
|------------------------------|-------------------------------------------|----------------------|-------------------------|
| none (new key, or deleted)   | created: a new ticket                     | 404                  | 404                     |
| open                         | deduplicated: an internal note, counted   | in_progress if it has an assignee, else a note | resolved, unless a person took it over (then a note) |
| in_progress                  | deduplicated                              | ignored (already)    | resolved, or a note     |
| on_hold                      | deduplicated                              | in_progress          | resolved, or a note     |
| resolved                     | reopened within the reopen window, else created | ignored        | ignored                 |
| closed, cancelled            | created                                   | ignored              | ignored                 |

"A person took it over": the ticket has an assignee who is not a service account. Moves are the
lifecycle's own (app.lifecycle): acknowledging asks for in_progress, resolving for resolved, and a
reopen is its resolved -> in_progress move.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.models import (
    ALERT_SOURCE_MAX,
    ALERT_SUMMARY_MAX,
    ALERT_TYPES,
    TEXT_MAX,
    TITLE_MAX,
    AlertAction,
    AlertmanagerAlert,
    AlertResult,
    AlertSeverity,
    AnyAlert,
    Priority,
    TicketStatus,
    compact_json,
)

R, S = AlertResult, TicketStatus

# The priority of a ticket an alert opens.
SEVERITY_PRIORITY: dict[AlertSeverity, Priority] = {
    AlertSeverity.critical: Priority.urgent,
    AlertSeverity.error: Priority.high,
    AlertSeverity.warning: Priority.medium,
    AlertSeverity.info: Priority.low,
}

# The statuses in which alerts act on the key's ticket ("open" in the sense).
ACTIVE: frozenset[TicketStatus] = frozenset({S.open, S.in_progress, S.on_hold})

# A trigger, by the status of the key's ticket (None: no ticket). `reopened` holds within the
# reopen window only (`trigger_result`).
TRIGGER: dict[TicketStatus | None, AlertResult] = {
    None: R.created,
    S.open: R.deduplicated,
    S.in_progress: R.deduplicated,
    S.on_hold: R.deduplicated,
    S.resolved: R.reopened,
    S.closed: R.created,
    S.cancelled: R.created,
}

# Where acknowledging and resolving move an active ticket (if the lifecycle has the move).
TARGET: dict[AlertAction, TicketStatus] = {
    AlertAction.acknowledge: S.in_progress,
    AlertAction.resolve: S.resolved,
}
DONE: dict[AlertAction, AlertResult] = {
    AlertAction.acknowledge: R.acknowledged,
    AlertAction.resolve: R.resolved,
}


def within_reopen_window(resolved_at: datetime | None, *, now: datetime, window_seconds: int) -> bool:
    return resolved_at is not None and now - resolved_at <= timedelta(seconds=window_seconds)


def trigger_result(
    status: TicketStatus | None, *, resolved_at: datetime | None, now: datetime, window_seconds: int
) -> AlertResult:
    result = TRIGGER[status]
    if result == R.reopened and not within_reopen_window(resolved_at, now=now, window_seconds=window_seconds):
        return R.created
    return result


def taken_over(assignee_is_service_account: bool | None) -> bool:
    """Whether a person has taken the ticket over (None: it has no assignee): then a resolve only
    notes itself."""
    return assignee_is_service_account is False


def resolution(source: str) -> str:
    return f"resolved by {source}"


# --- Texts ----------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(summary: str) -> str:
    return clip(summary, TITLE_MAX)


def description(
    *, summary: str, severity: AlertSeverity, source: str, dedup_key: str, details: object
) -> str:
    parts = [f"Alert from {source}, severity {severity.value} (dedup key {dedup_key})."]
    if len(summary) > TITLE_MAX:
        parts.append(summary)
    if details:
        parts.append("Details: " + compact_json(details))
    return clip("\n\n".join(parts), TEXT_MAX)


def repeat_note(*, count: int, summary: str, severity: AlertSeverity, source: str, details: object) -> str:
    note = f"Alert repeated (#{count}): {summary} (severity {severity.value}, from {source})."
    if details:
        note += "\n\nDetails: " + compact_json(details)
    return clip(note, TEXT_MAX)


# --- Prometheus Alertmanager ----------------------------------------------------------------------
# Each alert of a notification is one event: its fingerprint is the dedup key.

ALERTMANAGER_ACTION: dict[str, AlertAction] = {"firing": AlertAction.trigger, "resolved": AlertAction.resolve}
# labels.severity (lower-cased) -> severity; anything else (or none) is the default.
ALERTMANAGER_SEVERITY: dict[str, AlertSeverity] = {
    "critical": AlertSeverity.critical,
    "page": AlertSeverity.critical,
    "error": AlertSeverity.error,
    "high": AlertSeverity.error,
    "major": AlertSeverity.error,
    "warning": AlertSeverity.warning,
    "warn": AlertSeverity.warning,
    "minor": AlertSeverity.warning,
    "info": AlertSeverity.info,
    "low": AlertSeverity.info,
    "none": AlertSeverity.info,
}
ALERTMANAGER_DEFAULT_SEVERITY = AlertSeverity.warning
# The first of these that is present and not blank: (where, name).
ALERTMANAGER_SUMMARY: tuple[tuple[str, str], ...] = (("annotations", "summary"), ("labels", "alertname"))
ALERTMANAGER_SOURCE: tuple[tuple[str, str], ...] = (("labels", "instance"), ("labels", "job"))
ALERTMANAGER_DEFAULT_SOURCE = "alertmanager"
ALERTMANAGER_TEAM_LABEL = "team"  # names a team by its name; an unknown name: no team


def _first(alert: AlertmanagerAlert, places: tuple[tuple[str, str], ...]) -> str | None:
    for where, name in places:
        found: Mapping[str, str] = getattr(alert, where)
        value = found.get(name, "").strip()
        if value:
            return value
    return None


def from_alertmanager(alert: AlertmanagerAlert, *, team_id: int | None) -> AnyAlert:
    """The event an Alertmanager alert is (the team already looked up from ALERTMANAGER_TEAM_LABEL)."""
    severity = ALERTMANAGER_SEVERITY.get(alert.labels.get("severity", "").strip().lower())
    summary = _first(alert, ALERTMANAGER_SUMMARY) or f"Alert {alert.fingerprint}"
    source = _first(alert, ALERTMANAGER_SOURCE) or ALERTMANAGER_DEFAULT_SOURCE
    details = {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.startsAt,
        "generatorURL": alert.generatorURL,
    }
    # Built from values already checked (a label may be longer than a summary: clipped, not refused).
    action = ALERTMANAGER_ACTION[alert.status]
    fields: dict[str, Any] = {
        "action": action.value,
        "dedup_key": alert.fingerprint,
        "summary": clip(summary, ALERT_SUMMARY_MAX),
        "severity": severity or ALERTMANAGER_DEFAULT_SEVERITY,
        "source": clip(source, ALERT_SOURCE_MAX),
        "details": {name: value for name, value in details.items() if value},
        "team_id": team_id,
    }
    return ALERT_TYPES[action].model_construct(**fields)
