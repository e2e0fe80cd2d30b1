"""The outbox's metrics: the API's /metrics reads the depth, the dead and the oldest pending age
from the table at scrape time; the worker counts what it sent, failed, gave up on and skipped, and
serves its counters on WORKER_METRICS_PORT."""

import signal
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app import crud
from app.crud import common
from app.models import Notification, NotificationKind, NotificationState, Role
from scripts.benchkit import free_port
from tests.conftest import MakeUser
from tests.ops.test_metrics import scrape, value
from tests.smtp import smtp_server, users_with_invitations
from tests.worker.conftest import Running

S = NotificationState


def add(session: Session, recipient_id: int, state: NotificationState, minutes_ago: int) -> None:
    when = common.utcnow() - timedelta(minutes=minutes_ago)
    session.add(
        Notification(
            recipient_id=recipient_id,
            kind=NotificationKind.ticket_assigned,
            message_id=f"<{state}-{minutes_ago}@example.com>",
            state=state,
            created_at=when,
            next_attempt_at=when,
        )
    )
    session.commit()


def test_the_api_reads_the_outbox_at_scrape_time(
    client: TestClient, session: Session, make_user: MakeUser
) -> None:
    empty = scrape(client)
    assert value(empty["incident_desk_outbox_pending"], "incident_desk_outbox_pending", channel="email") == 0
    oldest = "incident_desk_outbox_oldest_pending_age_seconds"
    assert value(empty[oldest], oldest, channel="email") == 0

    user = make_user(Role.agent)
    assert user.id is not None
    add(session, user.id, S.pending, minutes_ago=10)
    add(session, user.id, S.pending, minutes_ago=1)
    add(session, user.id, S.dead, minutes_ago=60)
    add(session, user.id, S.sent, minutes_ago=120)

    metrics = scrape(client)
    assert (
        value(metrics["incident_desk_outbox_pending"], "incident_desk_outbox_pending", channel="email") == 2
    )
    assert value(metrics["incident_desk_outbox_dead"], "incident_desk_outbox_dead", channel="email") == 1
    age = value(metrics[oldest], oldest, channel="email")
    assert age is not None and 600 <= age < 900  # the ten-minute-old row


def test_a_database_failure_leaves_the_outbox_families_out(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outage(**_: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(crud, "read_outbox", outage)
    metrics = scrape(client)
    assert "incident_desk_outbox_pending" not in metrics
    assert "incident_desk_outbox_oldest_pending_age_seconds" not in metrics
    assert metrics["incident_desk_tickets"]  # the rest is there
    assert metrics["incident_desk_http_requests"]


def test_the_worker_serves_its_counters(migrated: str) -> None:
    users_with_invitations(migrated, 3, bad_addresses=1)
    port = free_port()
    with smtp_server() as server:
        worker = Running(migrated, "--interval", "0.2", **server.env(WORKER_METRICS_PORT=str(port)))
        try:
            worker.wait_for("worker job notifications handled 3")
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert worker.stop(signal.SIGTERM) == 0
        finally:
            worker.kill()
    lines = dict(
        line.rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith("incident_desk_notifications_total")
    )
    assert {key: float(n) for key, n in lines.items()} == {
        'incident_desk_notifications_total{channel="email",outcome="sent"}': 2.0,
        'incident_desk_notifications_total{channel="email",outcome="failed"}': 1.0,
        'incident_desk_notifications_total{channel="email",outcome="dead"}': 0.0,
        'incident_desk_notifications_total{channel="email",outcome="skipped"}': 0.0,
    }
    assert len(server.received) == 2
