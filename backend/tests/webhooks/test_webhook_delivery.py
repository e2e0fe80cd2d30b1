"""Deliveries to a real HTTP receiver: signed per Standard Webhooks (checked with the library's own
verifier), retried on the Svix schedule, honouring Retry-After, never following a redirect, 410
disabling the endpoint, five days of failures disabling it and telling its owner."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from werkzeug import Response

from app import webhooks
from app.crud import common, webhook_delivery
from app.models import (
    Notification,
    NotificationKind,
    User,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)
from tests.conftest import RunDb
from tests.utils import API, create_ticket, move
from tests.webhooks.conftest import Headers, register, url_of


def received(server: HTTPServer) -> list[tuple[dict[str, str], bytes]]:
    return [(dict(request.headers), request.get_data()) for request, _ in server.log]


def test_a_ticket_write_is_delivered_signed_and_verifiable(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    agent: User,
) -> None:
    receiver.expect_request("/hook", method="POST").respond_with_data("thanks", status=200)
    endpoint = register(client, as_admin, url_of(receiver))
    ticket = create_ticket(client, as_agent, title="Mail queue stuck", priority="high")
    assert deliver() == 1
    [(headers, body)] = received(receiver)
    payload = Webhook(endpoint["secret"]).verify(body, headers)  # raises unless the signature is right
    assert payload["type"] == "ticket.created"
    assert payload["id"] == headers["Webhook-Id"] and payload["id"].startswith("msg_")
    assert payload["data"]["ticket"]["id"] == ticket["id"]
    assert payload["data"]["ticket"]["title"] == "Mail queue stuck"
    assert payload["data"]["ticket"]["reporter_id"] == agent.id
    assert payload["changes"] == {} and payload["sequence"] >= 1
    assert headers["Content-Type"] == "application/json"
    log = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()
    assert log["count"] == 1
    [delivery] = log["data"]
    assert delivery["state"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_attempt"]["status_code"] == 200 and delivery["last_attempt"]["response"] == "thanks"
    assert delivery["last_attempt"]["latency_ms"] >= 0 and delivery["last_attempt"]["error"] is None


def test_each_event_type_and_a_growing_sequence(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    agent2: User,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver))
    ticket = create_ticket(client, as_agent, title="Printer")
    tid = ticket["id"]
    client.patch(
        f"{API}/tickets/{tid}", json={"title": "Printer 2", "assignee_id": agent2.id}, headers=as_agent
    )
    client.post(f"{API}/tickets/{tid}/comments", json={"body": "public words"}, headers=as_agent)
    client.post(
        f"{API}/tickets/{tid}/comments", json={"body": "secret words", "internal": True}, headers=as_agent
    )
    assert move(client, as_agent, tid, "in_progress").status_code == 200, "moved"
    deliver()
    payloads = [Webhook(endpoint["secret"]).verify(body, headers) for headers, body in received(receiver)]
    assert [p["type"] for p in payloads] == [
        "ticket.created",
        "ticket.updated",
        "ticket.assigned",
        "ticket.commented",
        "ticket.status_changed",
    ]
    updated, assigned = payloads[1], payloads[2]
    assert updated["changes"] == {"title": {"old": "Printer", "new": "Printer 2"}}
    assert assigned["changes"] == {"assignee_id": {"old": None, "new": str(agent2.id)}}
    assert updated["sequence"] == assigned["sequence"]  # one write
    sequences = [p["sequence"] for p in payloads]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4
    assert payloads[3]["data"]["comment"]["body"] == "public words"
    assert all("secret words" not in json.dumps(p) for p in payloads)
    assert payloads[4]["changes"]["status"] == {"old": "open", "new": "in_progress"}


def test_event_types_and_filters_choose_what_an_endpoint_gets(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    agent: User,
) -> None:
    receiver.expect_request("/urgent").respond_with_data("ok")
    receiver.expect_request("/moves").respond_with_data("ok")
    register(client, as_admin, url_of(receiver, "/urgent"), filter={"priorities": ["urgent"]})
    register(client, as_admin, url_of(receiver, "/moves"), event_types=["ticket.status_changed"])
    register(client, as_admin, url_of(receiver, "/off"), active=False)
    low = create_ticket(client, as_agent, title="Low", priority="low")
    create_ticket(client, as_agent, title="Urgent", priority="urgent")
    assert move(client, as_agent, low["id"], "in_progress", assignee_id=agent.id).status_code == 200
    deliver()
    got = sorted((request.path, json.loads(request.get_data())["type"]) for request, _ in receiver.log)
    assert got == [("/moves", "ticket.status_changed"), ("/urgent", "ticket.created")]
    assert session.exec(select(WebhookDelivery)).all().__len__() == 2


def test_a_failing_receiver_is_retried_on_the_schedule_then_the_delivery_is_dead(
    client: TestClient,
    receiver: HTTPServer,
    run_db: RunDb,
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("boom", status=500)
    endpoint = register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    now = common.utcnow()
    waits = []
    for attempt in range(len(webhooks.RETRY_SCHEDULE)):
        monkeypatch.setattr(common, "utcnow", lambda now=now: now)
        assert run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10)) == 1, attempt
        session.expire_all()
        delivery = session.exec(select(WebhookDelivery)).one()
        if delivery.state == WebhookDeliveryState.dead:
            break
        waits.append(delivery.next_attempt_at - now)
        assert run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10)) == 0  # not due yet
        now = delivery.next_attempt_at
    assert waits == list(webhooks.RETRY_SCHEDULE[1:])
    assert delivery.state == WebhookDeliveryState.dead and delivery.attempts == 8
    detail = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries/{delivery.id}", headers=as_admin).json()
    assert [a["status_code"] for a in detail["log"]] == [500] * 8
    assert detail["payload"]["type"] == "ticket.created"
    # every attempt was signed afresh: eight different timestamps
    assert len({headers["Webhook-Timestamp"] for headers, _ in received(receiver)}) == 8
    assert len({headers["Webhook-Id"] for headers, _ in received(receiver)}) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    status: int,
) -> None:
    receiver.expect_request("/hook").respond_with_response(
        Response("slow down", status=status, headers={"Retry-After": "600"})
    )
    register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    before = common.utcnow()
    deliver()
    delivery = session.exec(select(WebhookDelivery)).one()
    assert delivery.state == WebhookDeliveryState.pending
    assert timedelta(seconds=599) <= delivery.next_attempt_at - before <= timedelta(seconds=660)


def test_a_redirect_is_not_followed(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
) -> None:
    receiver.expect_request("/hook").respond_with_response(
        Response("", status=307, headers={"Location": "/elsewhere"})
    )
    receiver.expect_request("/elsewhere").respond_with_data("should not be reached")
    register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    deliver()
    assert [request.path for request, _ in receiver.log] == ["/hook"]
    assert session.exec(select(WebhookDelivery)).one().state == WebhookDeliveryState.pending


def test_gone_disables_the_endpoint(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
) -> None:
    receiver.expect_request("/hook").respond_with_data("", status=410)
    endpoint = register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    deliver()
    create_ticket(client, as_agent)
    assert deliver() == 0  # a disabled endpoint gets nothing
    shown = client.get(f"{API}/webhooks/{endpoint['id']}", headers=as_admin).json()
    assert shown["active"] is False and shown["disabled_reason"] == "the receiver answered 410 Gone"
    states = [
        d["state"]
        for d in client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()["data"]
    ]
    assert states == ["dead"]  # nothing is queued for a disabled endpoint
    assert len(receiver.log) == 1


def test_five_days_of_failures_disable_the_endpoint_and_tell_its_owner(
    client: TestClient,
    receiver: HTTPServer,
    run_db: RunDb,
    as_admin: Headers,
    as_agent: Headers,
    admin: User,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("down", status=502)
    endpoint = register(client, as_admin, url_of(receiver))
    start = common.utcnow()
    for day in range(6):
        at = start + timedelta(days=day)
        monkeypatch.setattr(common, "utcnow", lambda at=at: at)
        create_ticket(client, as_agent, title=f"Day {day}")
        run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10))
    admin_id = admin.id
    row = session.get(WebhookEndpoint, endpoint["id"])
    assert row is not None
    session.refresh(row)
    assert row.active is False
    assert row.disabled_reason == "every delivery failed for 5 days" and row.failing_since == start
    [mail] = session.exec(
        select(Notification).where(col(Notification.kind) == NotificationKind.webhook_disabled)
    ).all()
    assert mail.recipient_id == admin_id
    assert json.loads(mail.payload) == {
        "endpoint_id": endpoint["id"],
        "reason": "every delivery failed for 5 days",
        "url": url_of(receiver),
    }


def test_one_success_resets_the_failing_streak(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
) -> None:
    receiver.expect_oneshot_request("/hook").respond_with_data("down", status=500)
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    deliver()
    row = session.get(WebhookEndpoint, endpoint["id"])
    assert row is not None and row.failing_since is not None
    create_ticket(client, as_agent)
    deliver()
    session.refresh(row)
    assert row.failing_since is None


def test_a_rotated_secret_signs_with_both_keys_for_a_day(
    client: TestClient,
    receiver: HTTPServer,
    run_db: RunDb,
    as_admin: Headers,
    as_agent: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver))
    rotated = client.post(f"{API}/webhooks/{endpoint['id']}/rotate-secret", headers=as_admin)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != endpoint["secret"]
    create_ticket(client, as_agent)
    run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10))
    headers, body = received(receiver)[0]
    assert len(headers["Webhook-Signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(endpoint["secret"]).verify(body, headers)
    later = common.utcnow() + timedelta(hours=24, seconds=1)
    monkeypatch.setattr(common, "utcnow", lambda: later)
    create_ticket(client, as_agent)
    run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10))
    headers, _ = received(receiver)[1]
    assert len(headers["Webhook-Signature"].split(" ")) == 1


def test_a_worker_that_died_mid_send_leaves_the_delivery_to_be_retried(
    client: TestClient,
    receiver: HTTPServer,
    run_db: RunDb,
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    now = common.utcnow()
    claimed = run_db(lambda db: webhook_delivery.claim(db, batch=10, now=now))  # then the worker dies
    assert len(claimed) == 1
    assert run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10)) == 0  # leased
    later = now + webhook_delivery.LEASE + timedelta(seconds=1)
    monkeypatch.setattr(common, "utcnow", lambda: later)
    assert run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10)) == 1
    delivery = session.exec(select(WebhookDelivery)).one()
    session.refresh(delivery)
    assert delivery.state == WebhookDeliveryState.delivered and delivery.attempts == 2
    assert len(receiver.log) == 1


def test_no_answer_within_the_timeout_is_a_failed_attempt(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    def slow(_request: Any) -> Response:
        time.sleep(1.0)
        return Response("late")

    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    receiver.expect_request("/hook").respond_with_handler(slow)
    endpoint = register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    deliver()
    [delivery] = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()["data"]
    assert delivery["state"] == "pending"
    assert delivery["last_attempt"]["status_code"] is None
    assert delivery["last_attempt"]["error"] == "no answer within 0 s"


def test_a_refused_connection_is_a_failed_attempt(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
) -> None:
    endpoint = register(client, as_admin, "http://127.0.0.1:9/nothing-listens")
    create_ticket(client, as_agent)
    deliver()
    [delivery] = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()["data"]
    assert delivery["state"] == "pending" and delivery["last_attempt"]["error"].startswith("ConnectError")


def test_the_sla_clock_announces_warnings_and_breaches(
    client: TestClient,
    receiver: HTTPServer,
    run_db: RunDb,
    as_admin: Headers,
    as_agent: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.crud import sla_clock

    receiver.expect_request("/hook").respond_with_data("ok")
    policy = client.post(
        f"{API}/sla-policies/",
        json={
            "name": "Urgent",
            "position": 10,
            "priority": "urgent",
            "calendar_id": 1,
            "first_response_minutes": 10,
        },
        headers=as_admin,
    )
    assert policy.status_code == 201, policy.text
    endpoint = register(client, as_admin, url_of(receiver), event_types=["sla.warning", "sla.breached"])
    ticket = create_ticket(client, as_agent, title="Core switch down", priority="urgent")
    later = common.utcnow() + timedelta(minutes=11)
    monkeypatch.setattr(common, "utcnow", lambda: later)
    assert run_db(lambda db: sla_clock.clock_pass(db, now=later)) == 1
    run_db(lambda db: webhook_delivery.delivery_pass(db, batch=10))
    payloads = [json.loads(body) for _, body in received(receiver)]
    assert [p["type"] for p in payloads] == ["sla.warning", "sla.breached"]
    assert {p["data"]["ticket"]["id"] for p in payloads} == {ticket["id"]}
    assert set(payloads[1]["changes"]) == {"first_response"}
    assert payloads[1]["data"]["ticket"]["sla_state"] == "breached"
    assert endpoint["event_types"] == ["sla.warning", "sla.breached"]
