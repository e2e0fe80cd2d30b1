"""Alerts from monitoring (POST /alerts/): a trigger opens a ticket, repeats are counted on it, a
trigger soon after a resolve reopens it; acknowledge and resolve move it when the rules allow.
Called the normal way: a service account's API token with `alerts:write`."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import alerts, lifecycle
from app.core.config import get_settings
from app.crud import common
from app.models import AlertKey, AlertSeverity, Priority, Role, Ticket, TicketStatus, User
from app.permissions import Permission, has
from tests.conftest import MakeUser
from tests.utils import API, error_body

Headers = dict[str, str]
URL = f"{API}/alerts/"


@pytest.fixture
def bot(client: TestClient, as_admin: Headers) -> dict[str, Any]:
    """A service account (role agent) for the monitoring tool, and its `alerts:write` token."""
    account = client.post(
        f"{API}/service-accounts/",
        json={"email": "prometheus@ops.example.com", "full_name": "Prometheus"},
        headers=as_admin,
    ).json()
    token = client.post(
        f"{API}/tokens/",
        json={"name": "alerts", "scopes": ["alerts:write"], "user_id": account["id"]},
        headers=as_admin,
    )
    assert token.status_code == 201, token.text
    return {"id": account["id"], "headers": {"Authorization": f"Bearer {token.json()['token']}"}}


def send(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def trigger(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    alert = {"action": "trigger", "summary": "Disk full on db1", "severity": "critical", "source": "db1"}
    return send(client, headers, **(alert | body))


def ticket(client: TestClient, headers: Headers, ticket_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/tickets/{ticket_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def notes(client: TestClient, headers: Headers, ticket_id: int) -> list[dict[str, Any]]:
    return list(client.get(f"{API}/tickets/{ticket_id}/comments", headers=headers).json()["data"])


def later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    at = common.utcnow() + timedelta(**delta)
    monkeypatch.setattr(common, "utcnow", lambda: at)


def test_a_trigger_opens_a_ticket_reported_by_the_caller(
    client: TestClient, bot: dict[str, Any], as_agent: Headers, make_team: Any
) -> None:
    team = make_team(name="Databases")
    answer = trigger(
        client,
        bot["headers"],
        dedup_key="db1/disk",
        details={"mount": "/var", "used_percent": 99},
        team_id=team.id,
    )
    assert answer == {
        "ticket_id": answer["ticket_id"],
        "dedup_key": "db1/disk",
        "result": "created",
        "alert_count": 1,
        "status": "open",
        "message": f"Opened ticket {answer['ticket_id']}",
    }
    made = ticket(client, as_agent, answer["ticket_id"])
    assert made["title"] == "Disk full on db1"
    assert made["priority"] == "urgent"
    assert made["reporter_id"] == bot["id"] and made["team_id"] == team.id and made["assignee_id"] is None
    assert made["description"] == (
        'Alert from db1, severity critical (dedup key db1/disk).\n\nDetails: {"mount":"/var","used_percent":99}'
    )
    events = client.get(f"{API}/tickets/{made['id']}/events", headers=as_agent).json()["data"]
    assert {(e["action"], e["actor_id"]) for e in events} == {("created", bot["id"])}


def test_a_trigger_without_a_key_gets_one_and_a_long_summary_keeps_its_whole_text(
    client: TestClient, bot: dict[str, Any], as_agent: Headers
) -> None:
    summary = "CPU " + "very " * 60 + "high"
    answer = trigger(client, bot["headers"], summary=summary, severity="info")
    assert len(answer["dedup_key"]) == 32 and answer["result"] == "created"
    made = ticket(client, as_agent, answer["ticket_id"])
    assert (
        len(made["title"]) == 200 and made["title"].endswith("…") and summary.startswith(made["title"][:-1])
    )
    assert summary in made["description"] and made["priority"] == "low"
    again = trigger(client, bot["headers"], summary=summary, dedup_key=answer["dedup_key"])
    assert again["result"] == "deduplicated" and again["ticket_id"] == answer["ticket_id"]


@pytest.mark.parametrize(
    ("severity", "priority"), [(s.value, p.value) for s, p in alerts.SEVERITY_PRIORITY.items()]
)
def test_severity_sets_the_priority_by_the_table(
    client: TestClient, bot: dict[str, Any], as_agent: Headers, severity: str, priority: str
) -> None:
    answer = trigger(client, bot["headers"], severity=severity, dedup_key=f"sev-{severity}")
    assert ticket(client, as_agent, answer["ticket_id"])["priority"] == priority


def test_the_severity_table_maps_every_severity_in_rank_order() -> None:
    assert list(alerts.SEVERITY_PRIORITY) == list(AlertSeverity)
    assert list(alerts.SEVERITY_PRIORITY.values()) == list(reversed(Priority))


def test_repeats_are_counted_on_the_open_ticket_with_an_internal_note(
    client: TestClient, session: Session, bot: dict[str, Any], as_agent: Headers, as_reporter: Headers
) -> None:
    first = trigger(client, bot["headers"], dedup_key="db1/disk")
    second = trigger(
        client, bot["headers"], dedup_key="db1/disk", summary="Disk still full", details={"n": 2}
    )
    third = trigger(client, bot["headers"], dedup_key="db1/disk")
    assert [first["result"], second["result"], third["result"]] == ["created", "deduplicated", "deduplicated"]
    assert {first["ticket_id"], second["ticket_id"], third["ticket_id"]} == {first["ticket_id"]}
    assert [second["alert_count"], third["alert_count"]] == [2, 3]
    assert second["message"] == "Counted as a repeat on the open ticket (internal note added)"
    written = notes(client, as_agent, first["ticket_id"])
    assert [(n["body"], n["internal"], n["author_id"]) for n in written] == [
        (
            'Alert repeated (#2): Disk still full (severity critical, from db1).\n\nDetails: {"n":2}',
            True,
            bot["id"],
        ),
        ("Alert repeated (#3): Disk full on db1 (severity critical, from db1).", True, bot["id"]),
    ]
    key = session.exec(select(AlertKey).where(AlertKey.dedup_key == "db1/disk")).one()
    assert key.ticket_id == first["ticket_id"] and key.alert_count == 3 and key.source == "db1"
    assert key.last_alert_at is not None and key.first_alert_at is not None
    assert key.last_alert_at >= key.first_alert_at
    assert len(session.exec(select(Ticket)).all()) == 1


def test_a_trigger_soon_after_a_resolve_reopens_the_ticket(
    client: TestClient, bot: dict[str, Any], as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = trigger(client, bot["headers"], dedup_key="api/5xx")
    resolved = send(client, bot["headers"], action="resolve", dedup_key="api/5xx")
    assert resolved["result"] == "resolved" and resolved["status"] == "resolved"
    later(monkeypatch, seconds=get_settings().ALERT_REOPEN_WINDOW_SECONDS - 5)
    again = trigger(client, bot["headers"], dedup_key="api/5xx")
    assert again == {
        "ticket_id": first["ticket_id"],
        "dedup_key": "api/5xx",
        "result": "reopened",
        "alert_count": 2,
        "status": "in_progress",
        "message": "Reopened: triggered again within the reopen window",
    }
    made = ticket(client, as_agent, first["ticket_id"])
    assert made["reopen_count"] == 1 and made["resolution"] is None and made["resolved_at"] is None
    events = client.get(f"{API}/tickets/{made['id']}/events", headers=as_agent).json()["data"]
    (moved,) = [e for e in events if e["action"] == "status_changed" and e["new_value"] == "in_progress"]
    assert moved["old_value"] == "resolved" and moved["actor_id"] == bot["id"]
    assert moved["reason"] == "Alert triggered again after its resolution: Disk full on db1"


def test_a_trigger_after_the_window_or_a_closed_ticket_opens_a_new_one(
    client: TestClient, bot: dict[str, Any], as_agent: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = trigger(client, bot["headers"], dedup_key="api/5xx")
    send(client, bot["headers"], action="resolve", dedup_key="api/5xx")
    later(monkeypatch, seconds=get_settings().ALERT_REOPEN_WINDOW_SECONDS + 1)
    second = trigger(client, bot["headers"], dedup_key="api/5xx")
    assert second["result"] == "created" and second["ticket_id"] != first["ticket_id"]
    assert second["alert_count"] == 1
    assert ticket(client, as_agent, first["ticket_id"])["status"] == "resolved"
    # Resolved, then closed within the window: closed is final, so a new ticket.
    send(client, bot["headers"], action="resolve", dedup_key="api/5xx")
    closed = client.patch(
        f"{API}/tickets/{second['ticket_id']}/status", json={"status": "closed"}, headers=as_agent
    )
    assert closed.status_code == 200, closed.text
    third = trigger(client, bot["headers"], dedup_key="api/5xx")
    assert third["result"] == "created" and third["ticket_id"] not in (
        first["ticket_id"],
        second["ticket_id"],
    )


def test_a_zero_window_never_reopens(
    client: TestClient, bot: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "ALERT_REOPEN_WINDOW_SECONDS", 0)
    first = trigger(client, bot["headers"], dedup_key="k")
    send(client, bot["headers"], action="resolve", dedup_key="k")
    later(monkeypatch, seconds=1)
    assert trigger(client, bot["headers"], dedup_key="k")["ticket_id"] != first["ticket_id"]


def test_a_cancelled_tickets_key_opens_a_new_ticket(
    client: TestClient, bot: dict[str, Any], as_agent: Headers
) -> None:
    first = trigger(client, bot["headers"], dedup_key="k")
    cancelled = client.patch(
        f"{API}/tickets/{first['ticket_id']}/status",
        json={"status": "cancelled", "reason": "Noise"},
        headers=as_agent,
    )
    assert cancelled.status_code == 200
    assert trigger(client, bot["headers"], dedup_key="k")["result"] == "created"


def test_a_deleted_tickets_key_opens_a_new_ticket_and_cannot_be_resolved(
    client: TestClient, bot: dict[str, Any], as_admin: Headers
) -> None:
    first = trigger(client, bot["headers"], dedup_key="k")
    assert client.delete(f"{API}/tickets/{first['ticket_id']}", headers=as_admin).status_code == 204
    response = client.post(URL, json={"action": "resolve", "dedup_key": "k"}, headers=bot["headers"])
    assert response.status_code == 404
    assert trigger(client, bot["headers"], dedup_key="k")["result"] == "created"


def test_acknowledge_moves_to_in_progress_only_when_the_lifecycle_allows(
    client: TestClient, bot: dict[str, Any], agent: User, as_agent: Headers
) -> None:
    made = trigger(client, bot["headers"], dedup_key="k")
    ack = send(client, bot["headers"], action="acknowledge", dedup_key="k")
    # open -> in_progress needs an assignee: a note instead, and the answer says so.
    assert ack == {
        "ticket_id": made["ticket_id"],
        "dedup_key": "k",
        "result": "noted",
        "alert_count": 1,
        "status": "open",
        "message": "Not moved: assignee_id is required to move from open to in_progress (internal note added)",
    }
    assert [n["body"] for n in notes(client, as_agent, made["ticket_id"])] == [
        "Alert acknowledged by db1; left open: assignee_id is required to move from open to in_progress."
    ]
    assigned = client.patch(
        f"{API}/tickets/{made['ticket_id']}", json={"assignee_id": agent.id}, headers=as_agent
    )
    assert assigned.status_code == 200
    ack = send(client, bot["headers"], action="acknowledge", dedup_key="k", source="pagerduty")
    assert (ack["result"], ack["status"], ack["message"]) == (
        "acknowledged",
        "in_progress",
        "Moved to in_progress",
    )
    events = client.get(f"{API}/tickets/{made['ticket_id']}/events", headers=as_agent).json()["data"]
    assert (
        events[-1]["new_value"] == "in_progress" and events[-1]["reason"] == "Alert acknowledged by pagerduty"
    )
    again = send(client, bot["headers"], action="acknowledge", dedup_key="k")
    assert (again["result"], again["message"]) == (
        "ignored",
        "Nothing to do: the ticket is already in_progress",
    )


def test_resolve_uses_the_source_unless_a_person_took_the_ticket_over(
    client: TestClient, bot: dict[str, Any], agent: User, as_agent: Headers
) -> None:
    mine = trigger(client, bot["headers"], dedup_key="taken")
    client.patch(f"{API}/tickets/{mine['ticket_id']}", json={"assignee_id": agent.id}, headers=as_agent)
    kept = send(client, bot["headers"], action="resolve", dedup_key="taken")
    assert (kept["result"], kept["status"]) == ("noted", "open")
    assert kept["message"] == "A person has taken the ticket over: internal note only"
    assert [n["body"] for n in notes(client, as_agent, mine["ticket_id"])] == [
        "Alert resolved by db1; left open: it has a person assigned."
    ]
    free = trigger(client, bot["headers"], dedup_key="free", source="web3")
    done = send(client, bot["headers"], action="resolve", dedup_key="free")
    assert (done["result"], done["status"], done["message"]) == ("resolved", "resolved", "Moved to resolved")
    resolved = ticket(client, as_agent, free["ticket_id"])
    assert resolved["resolution"] == "resolved by web3" and resolved["resolved_at"] is not None
    again = send(client, bot["headers"], action="resolve", dedup_key="free")
    assert (again["result"], again["message"]) == ("ignored", "Nothing to do: the ticket is resolved")


def test_a_ticket_assigned_to_a_service_account_is_still_resolved_by_the_alert(
    client: TestClient, bot: dict[str, Any], as_agent: Headers
) -> None:
    made = trigger(client, bot["headers"], dedup_key="k")
    assigned = client.patch(
        f"{API}/tickets/{made['ticket_id']}/status",
        json={"status": "in_progress", "assignee_id": bot["id"]},
        headers=as_agent,
    )
    assert assigned.status_code == 200, assigned.text
    done = send(client, bot["headers"], action="resolve", dedup_key="k", source="alertmanager")
    assert done["result"] == "resolved"
    assert ticket(client, as_agent, made["ticket_id"])["resolution"] == "resolved by alertmanager"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_an_unknown_key_is_404(
    client: TestClient, bot: dict[str, Any], session: Session, action: str
) -> None:
    response = client.post(URL, json={"action": action, "dedup_key": "never-seen"}, headers=bot["headers"])
    assert response.status_code == 404
    assert error_body(response) == {"detail": "No alert with this dedup_key"}
    assert session.exec(select(AlertKey)).all() == []


BAD: list[tuple[dict[str, Any], list[str], str]] = [
    # Each action's required fields are in the schema (one body schema per action, by `action`).
    ({"action": "trigger", "severity": "critical", "source": "db1"}, ["trigger", "summary"], "missing"),
    ({"action": "trigger", "summary": "x", "source": "db1"}, ["trigger", "severity"], "missing"),
    ({"action": "trigger", "summary": "x", "severity": "critical"}, ["trigger", "source"], "missing"),
    ({"action": "acknowledge"}, ["acknowledge", "dedup_key"], "missing"),
    ({"action": "resolve", "summary": "x"}, ["resolve", "dedup_key"], "missing"),
    ({"action": "resolve", "dedup_key": None}, ["resolve", "dedup_key"], "string_type"),
    ({"action": "trigger", "summary": "x", "severity": "fatal", "source": "s"}, ["trigger", "severity"], "enum"),
    ({"action": "page", "dedup_key": "k"}, [], "union_tag_invalid"),
    ({"dedup_key": "k"}, [], "union_tag_not_found"),
    ({"action": "trigger", "summary": "  ", "severity": "info", "source": "s"}, ["trigger", "summary"],
     "string_too_short"),
    ({"action": "trigger", "summary": "x" * 1025, "severity": "info", "source": "s"}, ["trigger", "summary"],
     "string_too_long"),
    ({"action": "resolve", "dedup_key": "k" * 256}, ["resolve", "dedup_key"], "string_too_long"),
    ({"action": "trigger", "summary": "x", "severity": "info", "source": "s", "details": [1]},
     ["trigger", "details"], "dict_type"),
    ({"action": "trigger", "summary": "x", "severity": "info", "source": "s", "details": {"a": "b" * 8000}},
     ["trigger", "details"], "value_error"),
    ({"action": "trigger", "summary": "x", "severity": "info", "source": "s", "team_id": "1"},
     ["trigger", "team_id"], "int_type"),
    ({"action": "trigger", "summary": "x", "severity": "info", "source": "s", "team_id": 999999}, ["team_id"],
     "value_error"),
    ({"action": "trigger", "summary": "x", "severity": "info", "source": "s", "payload": {}},
     ["trigger", "payload"], "extra_forbidden"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "where", "kind"), BAD, ids=[f"{'.'.join(w)}-{k}" for _, w, k in BAD])
def test_bad_alerts_are_422_naming_the_field_and_write_nothing(
    client: TestClient,
    bot: dict[str, Any],
    session: Session,
    body: dict[str, Any],
    where: list[str],
    kind: str,
) -> None:
    response = client.post(URL, json=body, headers=bot["headers"])
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", *where], kind), error
    assert session.exec(select(Ticket)).all() == [] and session.exec(select(AlertKey)).all() == []


def test_who_may_send_alerts(
    client: TestClient, make_user: MakeUser, as_admin: Headers, as_agent: Headers, as_reporter: Headers
) -> None:
    body = {"action": "trigger", "summary": "x", "severity": "info", "source": "s"}
    assert client.post(URL, json=body, headers=as_agent).status_code == 202
    assert client.post(URL, json=body | {"dedup_key": "a"}, headers=as_admin).status_code == 202
    refused = client.post(URL, json=body, headers=as_reporter)
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "reporters may not send alerts"}
    assert client.post(URL, json=body).status_code == 401


def test_an_api_token_needs_the_alerts_write_scope(
    client: TestClient, as_admin: Headers, as_agent: Headers, reporter: User
) -> None:
    body = {"action": "trigger", "summary": "x", "severity": "info", "source": "s"}
    narrow = client.post(
        f"{API}/tokens/", json={"name": "n", "scopes": ["tickets:write"]}, headers=as_agent
    ).json()
    refused = client.post(URL, json=body, headers={"Authorization": f"Bearer {narrow['token']}"})
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "this API token lacks the scope alerts:write"}
    scoped = client.post(
        f"{API}/tokens/", json={"name": "a", "scopes": ["alerts:write"]}, headers=as_agent
    ).json()
    assert (
        client.post(URL, json=body, headers={"Authorization": f"Bearer {scoped['token']}"}).status_code == 202
    )
    # A reporter's token with the scope is still a reporter's.
    theirs = client.post(
        f"{API}/tokens/",
        json={"name": "r", "scopes": ["alerts:write"], "user_id": reporter.id},
        headers=as_admin,
    ).json()
    refused = client.post(URL, json=body, headers={"Authorization": f"Bearer {theirs['token']}"})
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "reporters may not send alerts"}


def test_rules_tables() -> None:
    now = common.utcnow()
    window = 60
    assert alerts.trigger_result(None, resolved_at=None, now=now, window_seconds=window) == "created"
    for status in alerts.ACTIVE:
        assert (
            alerts.trigger_result(status, resolved_at=None, now=now, window_seconds=window) == "deduplicated"
        )
    inside, outside = now - timedelta(seconds=60), now - timedelta(seconds=61)
    resolved = TicketStatus.resolved
    assert alerts.trigger_result(resolved, resolved_at=inside, now=now, window_seconds=window) == "reopened"
    assert alerts.trigger_result(resolved, resolved_at=outside, now=now, window_seconds=window) == "created"
    for final in lifecycle.FINAL:
        assert alerts.trigger_result(final, resolved_at=inside, now=now, window_seconds=window) == "created"
    assert alerts.taken_over(None) is False  # nobody assigned
    assert alerts.taken_over(True) is False  # a service account
    assert alerts.taken_over(False) is True  # a person


def test_agents_and_admins_may_send_alerts(make_user: MakeUser) -> None:
    assert {role for role in Role if has(make_user(role), Permission.alert_write)} == {Role.agent, Role.admin}


def test_acknowledge_takes_a_ticket_off_hold(
    client: TestClient, bot: dict[str, Any], agent: User, as_agent: Headers
) -> None:
    made = trigger(client, bot["headers"], dedup_key="k")
    url = f"{API}/tickets/{made['ticket_id']}/status"
    assert (
        client.patch(
            url, json={"status": "in_progress", "assignee_id": agent.id}, headers=as_agent
        ).status_code
        == 200
    )
    assert (
        client.patch(url, json={"status": "on_hold", "reason": "Vendor"}, headers=as_agent).status_code == 200
    )
    ack = send(client, bot["headers"], action="acknowledge", dedup_key="k")
    assert (ack["result"], ack["status"]) == ("acknowledged", "in_progress")


def test_an_unknown_team_is_refused_on_a_repeat_too(client: TestClient, bot: dict[str, Any]) -> None:
    trigger(client, bot["headers"], dedup_key="k")
    body = {
        "action": "trigger",
        "dedup_key": "k",
        "summary": "x",
        "severity": "info",
        "source": "s",
        "team_id": 999999,
    }
    response = client.post(URL, json=body, headers=bot["headers"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "team_id"]
    again = trigger(client, bot["headers"], dedup_key="k")
    assert again["alert_count"] == 2  # the refused repeat was not counted
