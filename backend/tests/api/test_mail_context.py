"""What a notification e-mail may show, decided when it is sent (app.crud.mail_context): the
recipient's access then, the comment's visibility then, an account link's state then."""

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import account_tokens
from app.core.config import get_settings
from app.crud import common
from app.crud.mail_context import Skip, context_for
from app.models import (
    AccountToken,
    AccountTokenPurpose,
    Notification,
    NotificationKind,
    Role,
    User,
)
from tests.conftest import MakeUser, RunDb, stored
from tests.utils import API, create_ticket, move

K = NotificationKind


def row(kind: NotificationKind, ticket_id: int | None, recipient: User, **payload: Any) -> Notification:
    assert recipient.id is not None
    return Notification(
        kind=kind,
        recipient_id=recipient.id,
        ticket_id=ticket_id,
        payload=json.dumps(payload),
        message_id="<t@x>",
    )


def context(run_db: RunDb, notification: Notification, recipient: User) -> dict[str, Any] | Skip:
    async def work(db: Any) -> Any:
        return await context_for(await db.reader(), notification, recipient)

    result: dict[str, Any] | Skip = run_db(work)
    return result


def test_an_assignment_names_the_actor_and_the_ticket(
    client: TestClient, run_db: RunDb, agent: User, agent2: User, as_agent: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_agent, title="Printer on fire", priority="urgent")
    shown = context(run_db, row(K.ticket_assigned, ticket["id"], agent2, actor_id=agent.id), agent2)
    assert isinstance(shown, dict)
    assert shown["actor"] == (agent.full_name or agent.email)
    assert shown["ticket"]["title"] == "Printer on fire"
    assert shown["ticket"]["priority"] == "urgent"
    assert shown["ticket"]["url"].endswith(f"/tickets/{ticket['id']}")
    assert shown["recipient"]["email"] == agent2.email


def test_the_system_is_the_actor_of_the_clock(
    client: TestClient, run_db: RunDb, agent: User, as_agent: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_agent)
    due = "2026-12-01T09:30:00+00:00"
    shown = context(
        run_db, row(K.sla_breached, ticket["id"], agent, timer="first_response", due_at=due), agent
    )
    assert isinstance(shown, dict)
    assert (shown["timer"], shown["due_at"]) == ("first response", "2026-12-01 09:30 UTC")


def test_a_deactivated_recipient_gets_nothing(
    client: TestClient, session: Session, run_db: RunDb, agent2: User, as_agent: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_agent)
    agent2.is_active = False
    stored(session, agent2)
    assert context(run_db, row(K.ticket_assigned, ticket["id"], agent2, actor_id=None), agent2) == Skip(
        "the recipient is deactivated"
    )


def test_a_reporter_gets_nothing_about_a_ticket_they_cannot_see(
    client: TestClient, run_db: RunDb, reporter: User, other_reporter: User, as_reporter: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_reporter)
    mine = context(run_db, row(K.ticket_closed, ticket["id"], reporter, actor_id=None), reporter)
    assert isinstance(mine, dict)
    theirs = context(
        run_db, row(K.ticket_closed, ticket["id"], other_reporter, actor_id=None), other_reporter
    )
    assert theirs == Skip("the recipient can no longer see the ticket")


def test_a_deleted_ticket_sends_nothing(run_db: RunDb, agent: User) -> None:
    assert context(run_db, row(K.ticket_resolved, 987_654, agent, actor_id=None), agent) == Skip(
        "the ticket was deleted"
    )


def test_an_internal_note_never_reaches_someone_who_became_a_reporter(
    client: TestClient, session: Session, run_db: RunDb, agent: User, agent2: User, as_agent: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_agent)
    note = client.post(
        f"{API}/tickets/{ticket['id']}/comments",
        json={"body": "root cause: expired cert", "internal": True},
        headers=as_agent,
    ).json()
    notice = row(
        K.ticket_commented, ticket["id"], agent2, comment_id=note["id"], internal=True, actor_id=agent.id
    )
    shown = context(run_db, notice, agent2)
    assert isinstance(shown, dict)
    assert shown["comment"] == {
        "author": agent.full_name or agent.email,
        "body": "root cause: expired cert",
        "internal": True,
    }
    # agent2 is made a reporter of this very ticket's kind before the worker sends: no note for them
    agent2.role = Role.reporter
    stored(session, agent2)
    assert context(run_db, notice, agent2) == Skip("the recipient can no longer see the ticket")


def test_an_internal_note_is_skipped_for_a_reporter_who_sees_the_ticket(
    client: TestClient, run_db: RunDb, reporter: User, as_reporter: dict[str, str], as_agent: dict[str, str]
) -> None:
    ticket = create_ticket(client, as_reporter)
    note = client.post(
        f"{API}/tickets/{ticket['id']}/comments", json={"body": "secret", "internal": True}, headers=as_agent
    ).json()
    notice = row(K.ticket_commented, ticket["id"], reporter, comment_id=note["id"], internal=True)
    assert context(run_db, notice, reporter) == Skip(
        "an internal note, and the recipient may not see internal notes"
    )
    missing = row(K.ticket_commented, ticket["id"], reporter, comment_id=note["id"] + 1000, internal=False)
    assert context(run_db, missing, reporter) == Skip("the comment was deleted")


def test_reopened_names_the_previous_status(
    client: TestClient,
    run_db: RunDb,
    reporter: User,
    agent: User,
    as_reporter: dict[str, str],
    as_agent: dict[str, str],
) -> None:
    ticket = create_ticket(client, as_reporter)
    assigned = client.patch(f"{API}/tickets/{ticket['id']}", json={"assignee_id": agent.id}, headers=as_agent)
    assert assigned.status_code == 200, assigned.text
    assert (
        move(client, as_agent, ticket["id"], "resolved", resolution="Replaced the cable").status_code == 200
    )
    resolved = context(run_db, row(K.ticket_resolved, ticket["id"], reporter, actor_id=agent.id), reporter)
    assert isinstance(resolved, dict) and resolved["ticket"]["resolution"] == "Replaced the cable"
    reopened = context(
        run_db,
        row(K.ticket_reopened, ticket["id"], agent, actor_id=reporter.id, **{"from": "resolved"}),
        agent,
    )
    assert isinstance(reopened, dict) and reopened["previous_status"] == "resolved"


def token_for(session: Session, user: User, *, minutes: int = 60) -> AccountToken:
    nonce = account_tokens.new_nonce()
    secret = account_tokens.derive(get_settings().SECRET_KEY, "password_reset", nonce)
    assert user.id is not None
    return stored(
        session,
        AccountToken(
            user_id=user.id,
            purpose=AccountTokenPurpose.password_reset,
            nonce=nonce,
            token_hash=account_tokens.digest(secret),
            auth_stamp=user.auth_stamp,
            expires_at=common.utcnow() + timedelta(minutes=minutes),
        ),
    )


def test_an_account_link_carries_the_derived_token(session: Session, run_db: RunDb, reporter: User) -> None:
    token = token_for(session, reporter)
    shown = context(run_db, row(K.password_reset, None, reporter, token_id=token.id), reporter)
    assert isinstance(shown, dict)
    link = shown["link"]
    assert link.startswith(get_settings().FRONTEND_HOST.rstrip("/") + "/reset-password?token=")
    secret = link.split("token=", 1)[1]
    assert account_tokens.digest(secret) == token.token_hash
    assert secret not in token.nonce and len(secret) == 43


@pytest.mark.parametrize("spoil", ["used", "expired", "password changed", "someone else's"])
def test_a_spent_account_link_is_not_sent(
    session: Session, run_db: RunDb, make_user: MakeUser, reporter: User, spoil: str
) -> None:
    token = token_for(session, reporter, minutes=-1 if spoil == "expired" else 60)
    recipient = reporter
    if spoil == "used":
        token.used_at = common.utcnow()
        stored(session, token)
    elif spoil == "password changed":
        reporter.auth_stamp = "another-stamp"
        stored(session, reporter)
    elif spoil == "someone else's":
        recipient = make_user(Role.reporter)
    reason = {
        "used": "the link was already used",
        "expired": "the link expired",
        "password changed": "the password or account changed since the link was made",
        "someone else's": "the link no longer exists",
    }[spoil]
    assert context(run_db, row(K.password_reset, None, recipient, token_id=token.id), recipient) == Skip(
        reason
    )


def test_a_disabled_webhook_tells_its_owner_what_the_worker_saw(run_db: RunDb, admin: User) -> None:
    about = {
        "endpoint_id": 3,
        "url": "https://hooks.example.com/in",
        "reason": "every delivery failed for 5 days",
    }
    shown = context(run_db, row(K.webhook_disabled, None, admin, **about), admin)
    assert isinstance(shown, dict)
    assert shown["endpoint"] == {"id": 3, "url": "https://hooks.example.com/in", "reason": about["reason"]}
