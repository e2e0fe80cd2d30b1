"""Small helpers for tests that speak HTTP."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.core import security
from app.core.config import get_settings
from app.models import User

API = "/api/v1"
# A loop that follows pages gives up after this many and fails: a paging or cursor bug (a page that
# repeats, a cursor that never ends) must fail its test, not hang the suite.
MAX_PAGES = 50


def auth(user: User) -> dict[str, str]:
    assert user.id is not None
    token = security.create_access_token(
        user.id, user.auth_stamp, secret=get_settings().SECRET_KEY, expires=timedelta(hours=1)
    )
    return {"Authorization": f"Bearer {token}"}


def create_ticket(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("title", "VPN drops every few minutes")
    response = client.post(f"{API}/tickets/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def move(client: TestClient, headers: dict[str, str], ticket_id: int, status: str, **body: Any) -> Any:
    return client.patch(f"{API}/tickets/{ticket_id}/status", json={"status": status, **body}, headers=headers)


def error_body(response: Any) -> dict[str, Any]:
    """An error response's body without its `request_id`, which must equal the X-Request-ID header."""
    body = dict(response.json())
    assert body.pop("request_id") == response.headers["X-Request-ID"], body
    return body
