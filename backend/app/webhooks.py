"""Outbound webhooks, the rules as data: which ticket events become which webhook events, what a
delivery looks like, how it is signed, when it is retried, and what an answer means.

- Event types: EVENT_TYPES (a write may make several: an edit that reassigns is ticket.updated and
  ticket.assigned). Internal notes never leave; the other audit events (SLA bookkeeping) neither.
- Payload: `{id, type, occurred_at, sequence, data: {ticket, comment?}, changes}`; `sequence` is the
  highest audit-event id of the write, so it grows with every write on a ticket and a receiver can
  drop an update older than one it has.
- Signature: the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature:
  `v1,<base64 HMAC-SHA256>`), computed by the `standardwebhooks` package at each attempt with a
  fresh timestamp; during the 24 hours after a secret rotation both secrets sign.
- Retries: RETRY_SCHEDULE, Svix's (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a 429
  or 503 with Retry-After waits at least that long; 410 Gone disables the endpoint; an endpoint
  whose attempts all failed for DISABLE_AFTER is disabled and its owner told by e-mail.
"""

import base64
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, get_args

from standardwebhooks import Webhook

from app.models import EventAction, TicketEvent, WebhookEventType

EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)
TEST_EVENT = "webhook.test"

A = EventAction
# The webhook event each audit event makes (None: it never leaves).
EVENT_OF_ACTION: dict[EventAction, str | None] = {
    A.created: "ticket.created",
    A.updated: "ticket.updated",
    A.assigned: "ticket.assigned",
    A.status_changed: "ticket.status_changed",
    A.commented: "ticket.commented",
    A.noted: None,  # internal notes stay inside
    A.sla_attached: None,
    A.sla_paused: None,
    A.sla_resumed: None,
    A.sla_warning: "sla.warning",
    A.sla_breached: "sla.breached",
    A.sla_met: None,
    A.sla_cancelled: None,
    A.sla_recomputed: None,
}

# Delay before each attempt (the first is immediate); after the last, the delivery is dead.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
RETRY_AFTER_MAX = timedelta(hours=24)  # a Retry-After longer than this is taken as this
TIMEOUT_SECONDS = 15.0  # success = a 2xx within this
RESPONSE_KEPT = 4096  # bytes of the response body kept in the delivery log
DISABLE_AFTER = timedelta(days=5)
SECRET_OVERLAP = timedelta(hours=24)
SECRET_BYTES = 24


@dataclass(frozen=True)
class Event:
    type: str
    changes: dict[str, dict[str, str | None]]


def events_of(kind: str, events: Sequence[TicketEvent]) -> list[Event]:
    """The webhook events a ticket write makes, in order, each with the field changes behind it.
    A created ticket is one ticket.created (its field events describe the creation)."""
    if kind == "created":
        return [Event("ticket.created", {})]
    found: dict[str, dict[str, dict[str, str | None]]] = {}
    for event in events:
        name = EVENT_OF_ACTION.get(event.action)
        if name is None:
            continue
        changes = found.setdefault(name, {})
        if event.field is not None and name != "ticket.commented":
            changes[event.field] = {"old": event.old_value, "new": event.new_value}
    return [Event(name, changes) for name, changes in found.items()]


def wants(event_types: Sequence[str], flt: Mapping[str, Any], event: str, ticket: Mapping[str, Any]) -> bool:
    """Whether an endpoint subscribed to `event_types` (empty: all) with filter `flt` gets `event`
    about `ticket` (a snapshot)."""
    if event != TEST_EVENT and event_types and event not in event_types:
        return False
    team = flt.get("team_id")
    if team is not None and ticket.get("team_id") != team:
        return False
    priorities = flt.get("priorities")
    return not priorities or ticket.get("priority") in priorities


def new_message_id() -> str:
    """An event's id: the payload's `id` and the webhook-id header, for every endpoint it goes to."""
    return f"msg_{uuid.uuid4().hex}"


def instant(value: datetime) -> str:
    """A timestamp as the payloads write it: ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body(
    message_id: str,
    event_type: str,
    *,
    occurred_at: datetime,
    sequence: int,
    data: Mapping[str, Any],
    changes: Mapping[str, Any],
) -> str:
    """A delivery's JSON body (the payload described in the module docstring)."""
    payload = {
        "id": message_id,
        "type": event_type,
        "occurred_at": instant(occurred_at),
        "sequence": sequence,
        "data": data,
        "changes": changes,
    }
    return json.dumps(payload, separators=(",", ":"))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    if previous and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]


def signature_headers(
    message_id: str, body: str, *, secrets_: Iterable[str], now: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (a fresh timestamp each time)."""
    signatures = " ".join(Webhook(secret).sign(message_id, now, body) for secret in secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }


class Outcome(StrEnum):
    delivered = "delivered"
    retry = "retry"
    gone = "gone"  # 410: the receiver says the endpoint is no more


def outcome(status: int | None) -> Outcome:
    """What an answer means; None: no answer (timeout, refused connection, unsafe address)."""
    if status is not None and 200 <= status < 300:
        return Outcome.delivered
    if status == 410:
        return Outcome.gone
    return Outcome.retry  # redirects (never followed), other 4xx, 5xx, no answer


def next_attempt_delay(attempts_made: int, retry_after: float | None = None) -> timedelta | None:
    """How long until the next attempt after `attempts_made` failed ones; None: no attempt left.
    A Retry-After (429, 503) is waited out, up to RETRY_AFTER_MAX."""
    if attempts_made >= len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempts_made]
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_MAX))
    return delay


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds (delta-seconds form; an HTTP date is read too)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None
