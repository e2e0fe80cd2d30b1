"""From an API request to a mailbox: the change queues its notifications in its transaction, the
worker's outbox job renders and sends them to a real SMTP server (aiosmtpd), and what arrives is
checked as a recipient would read it: who, subject, both parts, the Message-ID, and that nothing
internal leaked."""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.crud import delivery
from app.factories import DEMO_PASSWORD
from app.models import Notification, User
from tests.conftest import RunDb
from tests.smtp import Received, SmtpServer, smtp_server
from tests.utils import API, auth, create_ticket, move

Headers = dict[str, str]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def deliver(run_db: RunDb, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[Received]]:
    """One pass of the worker's outbox job; the mails received so far."""
    settings = Settings(**smtp.env())
    monkeypatch.setattr(get_settings(), "FRONTEND_HOST", "https://desk.example.com")

    def run() -> list[Received]:
        run_db(lambda db: delivery.delivery_pass(db, batch=100, settings=settings))
        return list(smtp.received)

    return run


def mails_to(received: list[Received], user: User) -> list[Received]:
    return [mail for mail in received if mail.rcpt_tos == [user.email]]


def parts(mail: Received) -> dict[str, str]:
    """The text and HTML parts with the line ends a reader's client shows."""
    return {kind: text.replace("\r\n", "\n") for kind, text in mail.parts().items()}


def test_an_assignment_reaches_the_assignee_and_nobody_else(
    client: TestClient,
    session: Session,
    deliver: Callable[[], list[Received]],
    agent: User,
    agent2: User,
    as_agent: Headers,
) -> None:
    ticket = create_ticket(client, as_agent, title='VPN <b>down</b> & "slow"', assignee_id=agent2.id)
    received = deliver()
    assert [mail.rcpt_tos for mail in received] == [[agent2.email]]  # never the actor
    [mail] = received
    row = session.exec(select(Notification)).one()
    assert mail.message_id == row.message_id and row.state == "sent"
    assert (
        mail.message["Subject"]
        == f'[Incident Desk] #{ticket["id"]} assigned to you: VPN <b>down</b> & "slow"'
    )
    assert mail.message["From"] == "Incident Desk <desk@example.com>"
    shown = parts(mail)
    assert set(shown) == {"text/plain", "text/html"}
    assert f"{agent.full_name} assigned this ticket to you." in shown["text/plain"]
    assert f"https://desk.example.com/tickets/{ticket['id']}" in shown["text/plain"]
    assert "VPN &lt;b&gt;down&lt;/b&gt; &amp; &#34;slow&#34;" in shown["text/html"]
    assert "<b>down</b>" not in shown["text/html"]


def test_an_internal_note_never_reaches_the_reporter(
    client: TestClient,
    deliver: Callable[[], list[Received]],
    reporter: User,
    agent: User,
    agent2: User,
    as_reporter: Headers,
    as_agent: Headers,
) -> None:
    ticket = create_ticket(client, as_reporter, title="Printer on floor 3")
    watched = client.post(f"{API}/tickets/{ticket['id']}/watchers", json={}, headers=auth(agent2))
    assert watched.status_code == 200
    note = {"body": "Root cause: the vendor's expired certificate SECRET-4711", "internal": True}
    assert (
        client.post(f"{API}/tickets/{ticket['id']}/comments", json=note, headers=as_agent).status_code == 201
    )
    public = {"body": "We are on it, a technician comes at 14:00"}
    assert (
        client.post(f"{API}/tickets/{ticket['id']}/comments", json=public, headers=as_agent).status_code
        == 201
    )
    received = deliver()
    [to_reporter] = mails_to(received, reporter)
    text = str(to_reporter.message)
    assert "SECRET-4711" not in text and "internal note" not in text
    assert "We are on it, a technician comes at 14:00" in parts(to_reporter)["text/plain"]
    assert (
        to_reporter.message["Subject"] == f"[Incident Desk] #{ticket['id']} new comment: Printer on floor 3"
    )
    to_agent2 = mails_to(received, agent2)
    assert sorted(mail.message["Subject"].split(" ")[3] for mail in to_agent2) == ["internal", "new"]
    assert any("SECRET-4711" in parts(mail)["text/plain"] for mail in to_agent2)
    assert mails_to(received, agent) == []  # the author


def test_the_reporter_reads_the_resolution(
    client: TestClient,
    deliver: Callable[[], list[Received]],
    reporter: User,
    agent: User,
    as_reporter: Headers,
    as_agent: Headers,
) -> None:
    ticket = create_ticket(client, as_reporter, title="Wi-Fi drops")
    moved = move(
        client,
        as_agent,
        ticket["id"],
        "resolved",
        resolution="Replaced the <access point>",
        assignee_id=agent.id,
    )
    assert moved.status_code == 200, moved.text
    [mail] = mails_to(deliver(), reporter)
    assert mail.message["Subject"] == f"[Incident Desk] #{ticket['id']} resolved: Wi-Fi drops"
    shown = parts(mail)
    assert "Resolution:\nReplaced the <access point>" in shown["text/plain"]
    assert "Replaced the &lt;access point&gt;" in shown["text/html"]


def test_password_recovery_from_the_mail_to_a_new_password(
    client: TestClient,
    deliver: Callable[[], list[Received]],
    reporter: User,
) -> None:
    asked = client.post(f"{API}/password-recovery", json={"email": reporter.email})
    assert asked.status_code == 202
    [mail] = mails_to(deliver(), reporter)
    assert mail.message["Subject"] == "[Incident Desk] Reset your Incident Desk password"
    text = parts(mail)["text/plain"]
    link = next(
        line
        for line in text.splitlines()
        if line.startswith("https://desk.example.com/reset-password?token=")
    )
    token = link.split("token=", 1)[1]
    assert token in parts(mail)["text/html"]
    reset = {"token": token, "new_password": "a brand new passphrase 77"}
    assert client.post(f"{API}/reset-password", json=reset).status_code == 200
    assert client.post(f"{API}/reset-password", json=reset).status_code == 400  # single use
    logged_in = client.post(
        f"{API}/login/access-token",
        data={"username": reporter.email, "password": "a brand new passphrase 77"},
    )
    assert logged_in.status_code == 200
    old = client.post(
        f"{API}/login/access-token", data={"username": reporter.email, "password": DEMO_PASSWORD}
    )
    assert old.status_code == 400


def test_nothing_is_sent_for_a_refused_change(
    client: TestClient,
    session: Session,
    deliver: Callable[[], list[Received]],
    agent2: User,
    as_agent: Headers,
    as_reporter: Headers,
) -> None:
    ticket = create_ticket(client, as_reporter)
    stale = client.patch(
        f"{API}/tickets/{ticket['id']}",
        json={"assignee_id": agent2.id},
        headers={**as_agent, "If-Match": '"99"'},
    )
    assert stale.status_code == 412
    assert deliver() == []
    assert session.exec(select(Notification).where(col(Notification.recipient_id) == agent2.id)).all() == []
