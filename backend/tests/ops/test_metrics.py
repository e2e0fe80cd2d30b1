"""GET /metrics: Prometheus text, by route template, with pool use and tickets by status."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from app import crud
from app.main import app, create_app
from tests.conftest import METRICS_TOKEN
from tests.utils import API, create_ticket, move

Headers = dict[str, str]


SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def scrape(client: TestClient) -> dict[str, list[Any]]:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list[Any], name: str, **labels: str) -> float | None:
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


def test_requests_are_counted_by_route_template_method_and_status(
    client: TestClient, as_agent: Headers
) -> None:
    before = scrape(client)
    labels = {"method": "GET", "route": "/api/v1/tickets/{ticket_id}", "status": "404"}
    start = (
        value(before.get("incident_desk_http_requests", []), "incident_desk_http_requests_total", **labels)
        or 0
    )
    for ticket_id in (900001, 900002, 900003):
        assert client.get(f"{API}/tickets/{ticket_id}", headers=as_agent).status_code == 404
    metrics = scrape(client)
    assert (
        value(metrics["incident_desk_http_requests"], "incident_desk_http_requests_total", **labels)
        == start + 3
    )
    latency = metrics["incident_desk_http_request_duration_seconds"]
    assert value(latency, "incident_desk_http_request_duration_seconds_count", **labels) == start + 3
    assert (
        value(latency, "incident_desk_http_request_duration_seconds_bucket", le="+Inf", **labels) == start + 3
    )
    routes = {s.labels["route"] for s in metrics["incident_desk_http_requests"]}
    assert not any("900001" in route for route in routes)  # never the raw path


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    for n in range(3):
        client.get(f"/random/{n}")
    routes = {s.labels["route"] for s in scrape(client)["incident_desk_http_requests"]}
    assert "unmatched" in routes and not any(r.startswith("/random") for r in routes)


def test_in_flight_and_pool_gauges(client: TestClient) -> None:
    metrics = scrape(client)
    assert (
        value(metrics["incident_desk_http_requests_in_flight"], "incident_desk_http_requests_in_flight") == 1
    )
    for name in ("size", "checked_out", "checked_in", "overflow"):
        family = f"incident_desk_db_pool_{name}"
        reading = value(metrics[family], family)
        assert reading is not None and reading >= 0


def test_tickets_by_status(client: TestClient, as_agent: Headers, agent: Any) -> None:
    for _ in range(3):
        create_ticket(client, as_agent)
    started = create_ticket(client, as_agent, assignee_id=agent.id)
    assert move(client, as_agent, started["id"], "in_progress").status_code == 200
    tickets = scrape(client)["incident_desk_tickets"]
    assert value(tickets, "incident_desk_tickets", status="open") == 3
    assert value(tickets, "incident_desk_tickets", status="in_progress") == 1
    assert value(tickets, "incident_desk_tickets", status="closed") == 0


def test_a_database_failure_leaves_out_only_the_ticket_counts(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "incident_desk_tickets" in scrape(client)

    def outage(**_: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(crud, "count_tickets_by_status", outage)
    metrics = scrape(client)
    assert metrics["incident_desk_tickets"] == []
    errors = metrics["incident_desk_metrics_scrape_errors"]
    assert value(errors, "incident_desk_metrics_scrape_errors_total") == 1
    assert metrics["incident_desk_http_requests"] and metrics["incident_desk_db_pool_size"]


def test_metrics_are_not_in_the_api_schema(client: TestClient) -> None:
    assert "/metrics" not in client.get(f"{API}/openapi.json").json()["paths"]


def test_each_app_has_its_own_registry(client: TestClient) -> None:
    ping = {"method": "GET", "route": "/ping", "status": "200"}
    before = value(scrape(client)["incident_desk_http_requests"], "incident_desk_http_requests_total", **ping)
    other_app = create_app()
    other_app.dependency_overrides = dict(app.dependency_overrides)  # the test's transaction
    other = TestClient(other_app)
    other.get("/ping")
    other.get("/ping")
    theirs = {
        f.name: f.samples for f in text_string_to_metric_families(other.get("/metrics", headers=SCRAPER).text)
    }
    assert value(theirs["incident_desk_http_requests"], "incident_desk_http_requests_total", **ping) == 2
    after = value(scrape(client)["incident_desk_http_requests"], "incident_desk_http_requests_total", **ping)
    assert after == before
