"""Registering webhook endpoints (admins, or tokens with webhooks:manage): the secret shown once,
the SSRF rules on the resolved address, test events, the delivery log, redelivery and replay."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlmodel import Session, select

from app.core.config import get_settings
from app.crud import common
from app.models import WebhookDelivery
from tests.utils import API, create_ticket, error_body
from tests.webhooks.conftest import Headers, register, url_of


def test_the_secret_is_shown_on_creation_only(
    client: TestClient, receiver: HTTPServer, as_admin: Headers
) -> None:
    made = register(
        client, as_admin, url_of(receiver), description="chat bridge", event_types=["ticket.created"]
    )
    assert made["secret"].startswith("whsec_") and len(made["secret"]) == 6 + 32
    assert made["event_types"] == ["ticket.created"] and made["filter"] == {
        "team_id": None,
        "priorities": None,
    }
    assert made["active"] is True and made["disabled_reason"] is None
    shown = client.get(f"{API}/webhooks/{made['id']}", headers=as_admin).json()
    assert "secret" not in shown and shown["description"] == "chat bridge"
    listed = client.get(f"{API}/webhooks/", headers=as_admin).json()
    assert listed["count"] == 1 and "secret" not in listed["data"][0]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hook", "resolves to a non-public address (127.0.0.1)"),
        ("http://localhost/hook", "resolves to a non-public address"),
        ("http://[::1]/hook", "resolves to a non-public address (::1)"),
        ("http://10.1.2.3/hook", "resolves to a non-public address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data", "resolves to a non-public address (169.254.169.254)"),
        ("http://[::ffff:192.168.0.1]/", "resolves to a non-public address"),
        ("ftp://hooks.example.com/", "String should match pattern"),
        ("https://user:pw@93.184.216.34/", "credentials in the URL are not allowed"),
        ("https://[nohost/", "not a valid URL"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_unsafe_urls_are_refused(client: TestClient, as_admin: Headers, url: str, message: str) -> None:
    assert get_settings().WEBHOOKS_ALLOW_PRIVATE_NETWORKS is False
    response = client.post(f"{API}/webhooks/", json={"url": url}, headers=as_admin)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "url"] and message in problem["msg"]


def test_a_public_address_is_accepted(client: TestClient, as_admin: Headers) -> None:
    response = client.post(f"{API}/webhooks/", json={"url": "https://93.184.216.34/hook"}, headers=as_admin)
    assert response.status_code == 201, response.text


def test_the_address_is_checked_again_before_each_delivery(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver))
    monkeypatch.setattr(get_settings(), "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False)
    create_ticket(client, as_agent)
    deliver()
    assert len(receiver.log) == 0
    [delivery] = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()["data"]
    assert delivery["last_attempt"]["error"].startswith(
        "refused: the host '127.0.0.1' resolves to a non-public"
    )


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ({"event_types": ["ticket.exploded"]}, "event_types", "Input should be 'ticket.created'"),
        ({"filter": {"priorities": ["huge"]}}, "filter", "Input should be"),
        ({"filter": {"team_id": "1"}}, "filter", "Input should be a valid integer"),
        ({"active": "yes"}, "active", "Input should be a valid boolean"),
    ],
)
def test_bad_endpoint_bodies_are_422(
    client: TestClient,
    receiver: HTTPServer,
    as_admin: Headers,
    body: dict[str, object],
    where: str,
    message: str,
) -> None:
    response = client.post(f"{API}/webhooks/", json={"url": url_of(receiver), **body}, headers=as_admin)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"][:2] == ["body", where] and message in problem["msg"]


def test_switching_an_endpoint_back_on_clears_why_it_was_off(
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
    on = client.patch(f"{API}/webhooks/{endpoint['id']}", json={"active": True}, headers=as_admin).json()
    assert on["active"] is True and on["disabled_reason"] is None and on["failing_since"] is None
    moved = client.patch(
        f"{API}/webhooks/{endpoint['id']}", json={"url": "http://10.0.0.1/"}, headers=as_admin
    )
    assert moved.status_code == 200  # private networks are allowed in this test (the receiver)
    assert (
        client.patch(f"{API}/webhooks/{endpoint['id']}", json={"url": None}, headers=as_admin).status_code
        == 422
    )


def test_a_test_event_reaches_even_a_narrow_endpoint(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver), event_types=["sla.breached"])
    queued = client.post(f"{API}/webhooks/{endpoint['id']}/test", headers=as_admin)
    assert queued.status_code == 202 and queued.json()["event_type"] == "webhook.test"
    assert deliver() == 1
    [(request, _)] = receiver.log
    assert request.get_json()["type"] == "webhook.test"
    assert request.get_json()["data"] == {"endpoint_id": endpoint["id"]}


def test_redeliver_sends_the_same_message_again(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    endpoint = register(client, as_admin, url_of(receiver))
    create_ticket(client, as_agent)
    deliver()
    [delivery] = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=as_admin).json()["data"]
    again = client.post(
        f"{API}/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", headers=as_admin
    )
    assert again.status_code == 202 and again.json()["state"] == "pending"
    deliver()
    ids = [request.headers["Webhook-Id"] for request, _ in receiver.log]
    assert len(ids) == 2 and ids[0] == ids[1] == delivery["message_id"]
    detail = client.get(
        f"{API}/webhooks/{endpoint['id']}/deliveries/{delivery['id']}", headers=as_admin
    ).json()
    assert detail["state"] == "delivered" and len(detail["log"]) == 2


def test_replay_queues_the_failed_deliveries_since_a_time(
    client: TestClient,
    receiver: HTTPServer,
    deliver: Callable[[], int],
    as_admin: Headers,
    as_agent: Headers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.expect_request("/hook").respond_with_data("", status=410)
    endpoint = register(client, as_admin, url_of(receiver))
    start = common.utcnow()
    create_ticket(client, as_agent)
    deliver()  # dead, endpoint disabled
    client.patch(f"{API}/webhooks/{endpoint['id']}", json={"active": True}, headers=as_admin)
    receiver.clear()
    receiver.expect_request("/hook").respond_with_data("ok")
    future = client.post(
        f"{API}/webhooks/{endpoint['id']}/replay",
        json={"since": (start + timedelta(hours=1)).isoformat()},
        headers=as_admin,
    )
    assert future.json() == {"queued": 0}
    replayed = client.post(
        f"{API}/webhooks/{endpoint['id']}/replay", json={"since": start.isoformat()}, headers=as_admin
    )
    assert replayed.status_code == 202 and replayed.json() == {"queued": 1}
    assert deliver() == 1
    assert session.exec(select(WebhookDelivery)).one().state == "delivered"
    bad = client.post(
        f"{API}/webhooks/{endpoint['id']}/replay", json={"since": "yesterday"}, headers=as_admin
    )
    assert bad.status_code == 422


def test_unknown_endpoints_and_deliveries_are_404(
    client: TestClient, receiver: HTTPServer, as_admin: Headers
) -> None:
    other = register(client, as_admin, url_of(receiver, "/a"))
    queued = client.post(f"{API}/webhooks/{other['id']}/test", headers=as_admin).json()
    mine = register(client, as_admin, url_of(receiver, "/b"))
    for method, path in [
        ("GET", "/webhooks/999999"),
        ("DELETE", "/webhooks/999999"),
        ("POST", "/webhooks/999999/rotate-secret"),
        ("POST", "/webhooks/999999/test"),
        ("GET", "/webhooks/999999/deliveries"),
        ("GET", f"/webhooks/{mine['id']}/deliveries/{queued['id']}"),
        ("POST", f"/webhooks/{mine['id']}/deliveries/{queued['id']}/redeliver"),
    ]:
        response = client.request(method, API + path, headers=as_admin)
        assert response.status_code == 404, (method, path)
        assert error_body(response)["detail"] in ("Webhook endpoint not found", "Delivery not found")
    assert client.delete(f"{API}/webhooks/{other['id']}", headers=as_admin).status_code == 204
    assert client.get(f"{API}/webhooks/{other['id']}", headers=as_admin).status_code == 404


def test_only_admins_and_their_webhook_tokens_manage_webhooks(
    client: TestClient, receiver: HTTPServer, as_agent: Headers, as_admin: Headers
) -> None:
    refused = client.post(f"{API}/webhooks/", json={"url": url_of(receiver)}, headers=as_agent)
    assert error_body(refused) == {"detail": "agents may not manage webhooks"}
    token = client.post(
        f"{API}/tokens/", json={"name": "ops", "scopes": ["webhooks:manage"]}, headers=as_admin
    ).json()
    made = client.post(
        f"{API}/webhooks/",
        json={"url": url_of(receiver)},
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert made.status_code == 201, made.text
