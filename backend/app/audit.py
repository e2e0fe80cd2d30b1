"""How a ticket write is recorded in its audit trail (ticket_events), as pure functions.

app.crud writes events this way and app.seed builds its histories the same way, so a seeded
history reads like one the API wrote: a new ticket records its CREATED_FIELDS that are set; any
later write records one event per field whose value changes, in the order the write sets them,
as `status_changed` (the status, with the move's reason), `assigned` (the assignee) or `updated`
(anything else). The fields a move sets alongside its status (UNRECORDED) have no event: they
follow from the status event. Values are text (`text_value`).
"""

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from app.models import EventAction

# Fields recorded by the `created` events, i.e. what a ticket's history starts from.
CREATED_FIELDS = ("title", "description", "priority", "status", "reporter_id", "assignee_id", "team_id")
UNRECORDED = frozenset({"resolved_at", "closed_at", "reopen_count"})
_ACTIONS = {"status": EventAction.status_changed, "assignee_id": EventAction.assigned}


def text_value(value: Any) -> str | None:
    """Event values are text: enums by value, ids as digits, timestamps in ISO 8601, None as NULL."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value.value if hasattr(value, "value") else value)


def created(fields: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, value) for each `created` event of a ticket filed with `fields`."""
    for name in CREATED_FIELDS:
        if (value := fields.get(name)) is not None:
            yield name, value


def recorded(
    current: Mapping[str, Any], changes: Mapping[str, Any]
) -> Iterator[tuple[EventAction, str, Any]]:
    """(action, field, old value) for each event that applying `changes` to a ticket whose fields
    are `current` records, in the order of `changes`."""
    for name, value in changes.items():
        old = current[name]
        if name not in UNRECORDED and old != value:
            yield _ACTIONS.get(name, EventAction.updated), name, old
