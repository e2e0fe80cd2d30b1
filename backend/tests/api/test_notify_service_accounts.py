"""Service accounts (integrations) are never e-mailed: a ticket a monitoring tool filed is watched by
the people who work it, not by the tool's account."""

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models import Notification, User
from tests.utils import API, create_ticket


def test_a_service_account_reporter_gets_no_notification_but_a_person_does(
    client: TestClient,
    session: Session,
    as_admin: dict[str, str],
    as_agent: dict[str, str],
    reporter: User,
    as_reporter: dict[str, str],
) -> None:
    account = client.post(
        f"{API}/service-accounts/", json={"email": "nagios@ops.example.com"}, headers=as_admin
    )
    assert account.status_code == 201, account.text
    token = client.post(
        f"{API}/tokens/",
        json={"name": "nagios", "scopes": ["tickets:write"], "user_id": account.json()["id"]},
        headers=as_admin,
    ).json()
    by_tool = client.post(
        f"{API}/tickets/",
        json={"title": "Disk 95% on db2"},
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert by_tool.status_code == 201, by_tool.text
    by_person = create_ticket(client, as_reporter, title="Laptop will not boot")
    for ticket_id in (by_tool.json()["id"], by_person["id"]):
        comment = client.post(
            f"{API}/tickets/{ticket_id}/comments", json={"body": "Looking"}, headers=as_agent
        )
        assert comment.status_code == 201
    told = session.exec(
        select(Notification.recipient_id, Notification.ticket_id).order_by(col(Notification.id))
    ).all()
    assert told == [(reporter.id, by_person["id"])]
