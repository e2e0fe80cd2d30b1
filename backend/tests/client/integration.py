"""What an integrator writes against the Python client generated from /api/v1/openapi.json.

tests/client/test_generated_client.py generates the client (openapi-python-client), type-checks this
file with mypy --strict against it, then runs it against a live server. It logs in, files a ticket
with an Idempotency-Key and retries it, moves it with If-Match from the ETag, pages with next_cursor
and reads the audit trail: every field read is typed as present (no `Unset`).
"""

import sys

from incident_desk_client import AuthenticatedClient, Client
from incident_desk_client.api.login import login_access_token
from incident_desk_client.api.tickets import create_ticket, list_events, list_tickets, move_ticket
from incident_desk_client.models import (
    LoginForm,
    StaleVersionError,
    StatusChange,
    TicketCreate,
    TicketEventsPublic,
    TicketPublic,
    TicketSort,
    TicketsPublic,
    TicketStatus,
    Token,
)


def run(base_url: str, email: str, password: str, assignee_id: int) -> list[str]:
    token = login_access_token.sync(
        client=Client(base_url=base_url), body=LoginForm(username=email, password=password)
    )
    assert isinstance(token, Token), token
    client = AuthenticatedClient(base_url=base_url, token=token.access_token)

    body = TicketCreate(title="Printer on fire")
    created = create_ticket.sync_detailed(client=client, body=body, idempotency_key="integration-1")
    ticket = created.parsed
    assert isinstance(ticket, TicketPublic) and created.status_code == 201, created
    assert ticket.priority.value == "medium" and ticket.version == 1  # typed as present: no Unset
    etag: str = created.headers["ETag"]
    retried = create_ticket.sync_detailed(client=client, body=body, idempotency_key="integration-1")
    assert isinstance(retried.parsed, TicketPublic) and retried.parsed.id == ticket.id
    assert retried.headers["Idempotent-Replayed"] == "true"

    move = StatusChange(status=TicketStatus.IN_PROGRESS, assignee_id=assignee_id)
    moved = move_ticket.sync_detailed(ticket.id, client=client, body=move, if_match=etag)
    assert isinstance(moved.parsed, TicketPublic) and moved.parsed.status == TicketStatus.IN_PROGRESS
    assert moved.headers["ETag"] == f'"{moved.parsed.version}"'
    hold = StatusChange(status=TicketStatus.ON_HOLD, reason="Waiting for the vendor")
    stale = move_ticket.sync_detailed(ticket.id, client=client, body=hold, if_match=etag)  # the old ETag
    assert (
        isinstance(stale.parsed, StaleVersionError) and stale.parsed.current_version == moved.parsed.version
    )

    seen: list[int] = []
    page = list_tickets.sync(client=client, limit=1, sort=TicketSort.CREATED_AT_DESC)
    assert isinstance(page, TicketsPublic) and page.count is not None and page.count >= 1
    for _ in range(20):  # at most 20 pages: a cursor that never ends must not hang the script
        if not isinstance(page, TicketsPublic):
            break
        seen += [item.id for item in page.data]
        if page.next_cursor is None:
            break
        page = list_tickets.sync(
            client=client, limit=1, sort=TicketSort.CREATED_AT_DESC, cursor=page.next_cursor
        )
    assert ticket.id in seen and len(seen) == len(set(seen)), seen

    events = list_events.sync(ticket.id, client=client)
    assert isinstance(events, TicketEventsPublic)
    return [f"{event.action.value}:{event.field}:{event.created_at.isoformat()}" for event in events.data]


if __name__ == "__main__":
    print("\n".join(run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))  # noqa: T201
