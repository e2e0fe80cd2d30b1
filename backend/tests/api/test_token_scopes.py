"""Every operation x every API-token scope: the scope an operation needs is the one app.permissions
lists (or `admin`, which has them all), and no other scope gets in.

The tokens belong to an admin, so the role never refuses; a scope that may call the operation gets
whatever answer the operation gives (200, 404, 422: anything but the scope's 403), one that may not
gets 403 naming the scope it lacks. Read it against OPERATION_SCOPES in app/permissions.py.
"""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.crud import api_tokens, common
from app.main import app
from app.models import ApiToken, TokenScope, User
from tests.conftest import stored

ANY = "any"
# operationId -> the scope it needs (ANY: every token may call it).
NEEDS: dict[str, str] = {
    "list_tickets": "tickets:read",
    "read_ticket": "tickets:read",
    "read_ticket_sla": "tickets:read",
    "list_transitions": "tickets:read",
    "list_events": "tickets:read",
    "list_comments": "tickets:read",
    "list_teams": "tickets:read",
    "read_team": "tickets:read",
    "create_ticket": "tickets:write",
    "update_ticket": "tickets:write",
    "move_ticket": "tickets:write",
    "delete_ticket": "tickets:write",
    "add_comment": "comments:write",
    "list_watchers": "tickets:read",
    "add_watcher": "tickets:write",
    "remove_watcher": "tickets:write",
    "read_my_notifications": "admin",
    "update_my_notifications": "admin",
    "read_me": ANY,
    "list_tokens": ANY,
    "update_me": "admin",
    "update_my_password": "admin",
    "list_users": "admin",
    "create_user": "admin",
    "read_user": "admin",
    "update_user": "admin",
    "delete_user": "admin",
    "create_team": "admin",
    "update_team": "admin",
    "delete_team": "admin",
    "list_calendars": "admin",
    "create_calendar": "admin",
    "read_calendar": "admin",
    "update_calendar": "admin",
    "delete_calendar": "admin",
    "fill_holidays": "admin",
    "list_sla_policies": "admin",
    "create_sla_policy": "admin",
    "read_sla_policy": "admin",
    "update_sla_policy": "admin",
    "delete_sla_policy": "admin",
    "create_token": "admin",
    "revoke_token": "admin",
    "create_service_account": "admin",
    "list_service_accounts": "admin",
    "create_webhook": "webhooks:manage",
    "list_webhooks": "webhooks:manage",
    "read_webhook": "webhooks:manage",
    "update_webhook": "webhooks:manage",
    "delete_webhook": "webhooks:manage",
    "rotate_webhook_secret": "webhooks:manage",
    "test_webhook": "webhooks:manage",
    "list_webhook_deliveries": "webhooks:manage",
    "read_webhook_delivery": "webhooks:manage",
    "redeliver_webhook": "webhooks:manage",
    "replay_webhooks": "webhooks:manage",
    "send_alert": "alerts:write",
    "receive_alertmanager": "alerts:write",
    # the notification outbox: not in OPERATION_SCOPES, so `admin` only
    "list_notifications": "admin",
    "requeue_notification": "admin",
}


def operations() -> list[tuple[str, str, str]]:
    found = []
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            if operation.get("security"):
                found.append((operation["operationId"], method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(found)


def test_the_table_names_every_operation_that_takes_a_token() -> None:
    assert sorted(name for name, _, _ in operations()) == sorted(NEEDS)


@pytest.fixture
def tokens(session: Session, admin: User) -> dict[str, str]:
    """One token per scope, each with only that scope, owned by an admin."""
    secrets = {}
    for scope in TokenScope:
        secret = api_tokens.new_secret()
        assert admin.id is not None
        stored(
            session,
            ApiToken(
                user_id=admin.id,
                name=scope.value,
                scopes=[scope.value],
                prefix=secret[:12],
                token_hash=api_tokens.digest(secret),
                expires_at=common.utcnow().replace(year=common.utcnow().year + 1),
            ),
        )
        secrets[scope.value] = secret
    return secrets


@pytest.mark.parametrize(("name", "method", "path"), operations(), ids=[o[0] for o in operations()])
def test_each_scope_reaches_exactly_the_operations_it_names(
    client: TestClient, tokens: dict[str, str], name: str, method: str, path: str
) -> None:
    needed = NEEDS[name]
    seen: dict[str, Any] = {}
    for scope, secret in tokens.items():
        response = client.request(method, path, json={}, headers={"Authorization": f"Bearer {secret}"})
        lacks = response.status_code == 403 and "lacks the scope" in response.json()["detail"]
        seen[scope] = lacks
        if needed == ANY or scope in (needed, "admin"):
            assert not lacks, (scope, response.status_code, response.text)
        else:
            assert response.json()["detail"] == f"this API token lacks the scope {needed}", scope
    allowed = sorted(scope for scope, lacks in seen.items() if not lacks)
    expected = sorted(s.value for s in TokenScope) if needed == ANY else sorted({needed, "admin"})
    assert allowed == expected
