"""GET/PUT /users/me/notifications: every kind a user may switch off, on by default."""

from fastapi.testclient import TestClient

from app.models import PREFERENCE_KINDS, NotificationSettingsPublic, NotificationSettingsUpdate, User
from tests.utils import API, auth, error_body

Headers = dict[str, str]
URL = f"{API}/users/me/notifications"
ALL_ON = {kind.value: True for kind in PREFERENCE_KINDS}


def test_the_schemas_name_exactly_the_kinds_one_may_switch_off() -> None:
    kinds = [kind.value for kind in PREFERENCE_KINDS]
    assert list(NotificationSettingsPublic.model_fields) == kinds
    assert list(NotificationSettingsUpdate.model_fields) == kinds


def test_every_kind_is_on_until_switched_off(client: TestClient, as_reporter: Headers) -> None:
    response = client.get(URL, headers=as_reporter)
    assert response.status_code == 200
    assert response.json() == ALL_ON
    assert "password_reset" not in response.json() and "invitation" not in response.json()


def test_a_partial_put_changes_only_the_kinds_given_and_is_per_user(
    client: TestClient, as_reporter: Headers, agent: User
) -> None:
    response = client.put(URL, json={"ticket_commented": False, "sla_warning": False}, headers=as_reporter)
    assert response.status_code == 200, response.text
    expected = {**ALL_ON, "ticket_commented": False, "sla_warning": False}
    assert response.json() == expected
    assert client.get(URL, headers=as_reporter).json() == expected
    response = client.put(URL, json={"sla_warning": True, "ticket_closed": False}, headers=as_reporter)
    expected = {**ALL_ON, "ticket_commented": False, "ticket_closed": False}
    assert response.json() == expected
    assert client.put(URL, json={}, headers=as_reporter).json() == expected  # nothing given, nothing changes
    assert client.get(URL, headers=auth(agent)).json() == ALL_ON


def test_a_full_put_sets_every_kind(client: TestClient, as_agent: Headers) -> None:
    off = dict.fromkeys(ALL_ON, False)
    assert client.put(URL, json=off, headers=as_agent).json() == off
    assert client.put(URL, json=ALL_ON, headers=as_agent).json() == ALL_ON


def test_unknown_kinds_non_booleans_and_nulls_are_refused(client: TestClient, as_agent: Headers) -> None:
    bad = [
        ({"password_reset": False}, "password_reset", "extra_forbidden"),
        ({"ticket_deleted": False}, "ticket_deleted", "extra_forbidden"),
        ({"ticket_assigned": "no"}, "ticket_assigned", "bool_type"),
        ({"ticket_assigned": 0}, "ticket_assigned", "bool_type"),
        ({"ticket_assigned": None}, "ticket_assigned", "value_error"),
    ]
    for body, field, kind in bad:
        response = client.put(URL, json=body, headers=as_agent)
        assert response.status_code == 422, body
        (error,) = error_body(response)["detail"]
        assert (error["loc"], error["type"]) == (["body", field], kind), error
    assert client.put(URL, json=["ticket_assigned"], headers=as_agent).status_code == 422
    assert client.get(URL, headers=as_agent).json() == ALL_ON  # nothing written half-way


def test_anonymous_is_401(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
    assert client.put(URL, json={}).status_code == 401
