"""What the API shows about itself: security headers, no server banner, /metrics behind a token,
and whose address it believes (FORWARDED_ALLOW_IPS, nobody by default)."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.routes import ops
from app.core import migrations
from app.core.config import BACKEND_DIR, get_settings
from scripts.benchkit import dockerfile_command, free_port, wait_until_healthy
from tests.databases import scratch_database
from tests.utils import API

Headers = dict[str, str]


def test_api_responses_carry_security_headers(client: TestClient, as_agent: Headers) -> None:
    responses = [
        client.get(f"{API}/tickets/", headers=as_agent),  # 200
        client.get(f"{API}/tickets/999999", headers=as_agent),  # 404
        client.get(f"{API}/tickets/"),  # 401
        client.post(f"{API}/tickets/", json={}, headers=as_agent),  # 422
        client.get("/health"),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    for response in responses[:4]:
        assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in responses[0].headers  # plain HTTP here


def test_hsts_over_https(as_agent: Headers) -> None:
    from app.main import app

    with TestClient(app, base_url="https://testserver") as secure:
        response = secure.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.fixture
def metrics_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    def use(**values: Any) -> None:
        settings = get_settings().model_copy(update=values)
        monkeypatch.setattr(ops, "get_settings", lambda: settings)

    return use


def test_metrics_need_a_token_by_default(client: TestClient, metrics_settings: Any) -> None:
    metrics_settings(METRICS_PUBLIC=False, METRICS_TOKEN="")
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "METRICS_TOKEN" in anonymous.json()["detail"]
    assert "incident_desk" not in anonymous.text
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_metrics_with_the_scrape_token(client: TestClient, metrics_settings: Any) -> None:
    metrics_settings(METRICS_PUBLIC=False, METRICS_TOKEN="scrape-token-for-prometheus")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-prometheus"})
    assert scraped.status_code == 200
    assert "incident_desk_http_requests_total" in scraped.text


def test_metrics_with_an_admins_token_but_not_an_agents(
    client: TestClient, metrics_settings: Any, as_admin: Headers, as_agent: Headers
) -> None:
    metrics_settings(METRICS_PUBLIC=False, METRICS_TOKEN="")
    assert client.get("/metrics", headers=as_admin).status_code == 200
    assert client.get("/metrics", headers=as_agent).status_code == 401


def test_metrics_public_when_the_setting_says_so(client: TestClient, metrics_settings: Any) -> None:
    metrics_settings(METRICS_PUBLIC=True, METRICS_TOKEN="")
    assert client.get("/metrics").status_code == 200


# --- Through the container's command ---------------------------------------------------------------


@contextmanager
def container_server(**env_extra: str) -> Iterator[str]:
    with scratch_database() as url:
        migrations.upgrade(url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
        env.update(DATABASE_URL=url, LOG_LEVEL="WARNING", **env_extra)
        server = subprocess.Popen(
            dockerfile_command(port),
            cwd=BACKEND_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_until_healthy(base, server), "the server did not start"
            yield base
        finally:
            server.terminate()
            server.wait(timeout=15)


def failed_login(base: str, forwarded_for: str, username: str) -> int:
    """One wrong password (for its own account each time, so that only the address limit applies)."""
    form = {"username": username, "password": "wrong-password"}
    headers = {"X-Forwarded-For": forwarded_for}
    return httpx.post(f"{base}{API}/login/access-token", data=form, headers=headers).status_code


CLIENT_LIMIT = 3  # a low per-address limit for these servers: fewer logins to show it


def test_the_container_sends_no_server_banner_and_ignores_forwarded_for_by_default() -> None:
    limit = CLIENT_LIMIT
    with container_server(LOGIN_MAX_FAILURES_PER_CLIENT=str(limit)) as base:
        assert "server" not in httpx.get(f"{base}/health").headers
        # Each attempt claims another address; the peer (127.0.0.1) is what counts.
        statuses = [failed_login(base, f"203.0.113.{n}", f"u{n}@example.com") for n in range(limit + 1)]
        assert statuses == [400] * limit + [429], statuses


def test_a_trusted_proxy_gives_the_client_address() -> None:
    limit = CLIENT_LIMIT
    with container_server(FORWARDED_ALLOW_IPS="127.0.0.1", LOGIN_MAX_FAILURES_PER_CLIENT=str(limit)) as base:
        # Behind the trusted proxy, each client has its own count (per-account limits aside).
        statuses = [failed_login(base, f"203.0.113.{n}", f"u{n}@example.com") for n in range(limit + 1)]
        assert statuses == [400] * (limit + 1), statuses
        # ... and one client's failures add up, whatever accounts it tries.
        mine = [failed_login(base, "198.51.100.7", f"v{n}@example.com") for n in range(limit + 1)]
        assert mine == [400] * limit + [429], mine
