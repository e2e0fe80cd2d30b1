"""Prometheus Alertmanager's webhook (POST /alerts/alertmanager): each alert of a notification is a
trigger (firing) or a resolve (resolved), its fingerprint the dedup key; one result per alert."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import alerts
from app.models import AlertKey, Ticket
from tests.utils import API

Headers = dict[str, str]
URL = f"{API}/alerts/alertmanager"


@pytest.fixture
def bot(client: TestClient, as_admin: Headers) -> Headers:
    """An `alerts:write` token of a service account, as alertmanager.yml's receiver would carry."""
    account = client.post(
        f"{API}/service-accounts/", json={"email": "am@ops.example.com"}, headers=as_admin
    ).json()
    token = client.post(
        f"{API}/tokens/",
        json={"name": "alertmanager", "scopes": ["alerts:write"], "user_id": account["id"]},
        headers=as_admin,
    ).json()
    return {"Authorization": f"Bearer {token['token']}"}


def alert(fingerprint: str, status: str = "firing", **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": "db1:9100", "job": "node", "severity": "critical"},
        "annotations": {"summary": "Disk full on db1", "description": "/var is 99% full"},
        "startsAt": "2026-11-30T20:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
        "fingerprint": fingerprint,
    } | fields


def notification(*items: dict[str, Any]) -> dict[str, Any]:
    """What Alertmanager posts (version 4), group fields included."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incident-desk",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(items),
    }


def post(client: TestClient, headers: Headers, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return list(response.json()["results"])


def test_firing_alerts_open_tickets_and_resolved_ones_resolve_them(
    client: TestClient, bot: Headers, as_agent: Headers, make_team: Any
) -> None:
    team = make_team(name="Databases")
    labelled = alert("fp-db1")
    labelled["labels"] |= {"team": "Databases"}
    bare = alert(
        "fp-web", labels={"alertname": "HighLatency", "job": "web", "severity": "page-me"}, annotations={}
    )
    first = post(client, bot, notification(labelled, bare))
    assert [(r["result"], r["dedup_key"], r["alert_count"]) for r in first] == [
        ("created", "fp-db1", 1),
        ("created", "fp-web", 1),
    ]
    db1 = client.get(f"{API}/tickets/{first[0]['ticket_id']}", headers=as_agent).json()
    assert (db1["title"], db1["priority"], db1["team_id"]) == ("Disk full on db1", "urgent", team.id)
    assert db1["description"].startswith("Alert from db1:9100, severity critical (dedup key fp-db1).")
    assert '"generatorURL":"http://prometheus:9090/graph?g0.expr=disk"' in db1["description"]
    web = client.get(f"{API}/tickets/{first[1]['ticket_id']}", headers=as_agent).json()
    # No summary annotation: the alert name; an unknown severity: the default; no instance: the job.
    assert (web["title"], web["priority"], web["team_id"]) == ("HighLatency", "medium", None)
    assert web["description"].startswith("Alert from web, severity warning")

    repeated = post(client, bot, notification(labelled, alert("fp-web", "resolved")))
    assert [(r["result"], r["ticket_id"], r["status"]) for r in repeated] == [
        ("deduplicated", first[0]["ticket_id"], "open"),
        ("resolved", first[1]["ticket_id"], "resolved"),
    ]
    resolved = client.get(f"{API}/tickets/{first[1]['ticket_id']}", headers=as_agent).json()
    assert resolved["resolution"] == "resolved by db1:9100"  # the resolved alert's own instance label


def test_a_resolve_for_an_unknown_fingerprint_is_ignored(
    client: TestClient, bot: Headers, session: Session
) -> None:
    results = post(client, bot, notification(alert("never-fired", "resolved")))
    assert results == [
        {
            "ticket_id": None,
            "dedup_key": "never-fired",
            "result": "ignored",
            "alert_count": 0,
            "status": None,
            "message": "No alert with this dedup_key: nothing to resolve",
        }
    ]
    assert session.exec(select(Ticket)).all() == [] and session.exec(select(AlertKey)).all() == []


def test_an_unknown_team_label_files_without_a_team_and_long_labels_are_clipped(
    client: TestClient, bot: Headers, as_agent: Headers
) -> None:
    item = alert("fp", annotations={"summary": "s" * 1500}, labels={"team": "Nobody", "instance": "i" * 300})
    (result,) = post(client, bot, notification(item))
    made = client.get(f"{API}/tickets/{result['ticket_id']}", headers=as_agent).json()
    assert made["team_id"] is None and len(made["title"]) == 200
    assert made["description"].startswith(f"Alert from {'i' * 254}…, severity warning")


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        *sorted(alerts.ALERTMANAGER_SEVERITY.items()),
        ("", alerts.ALERTMANAGER_DEFAULT_SEVERITY),
        ("disaster", alerts.ALERTMANAGER_DEFAULT_SEVERITY),
    ],
)
def test_severity_labels_map_by_the_table(
    client: TestClient, bot: Headers, as_agent: Headers, label: str, severity: str
) -> None:
    item = alert(f"fp-{label}", labels={"alertname": "X", "severity": label.upper()})
    (result,) = post(client, bot, notification(item))
    made = client.get(f"{API}/tickets/{result['ticket_id']}", headers=as_agent).json()
    assert made["priority"] == alerts.SEVERITY_PRIORITY[alerts.AlertSeverity(severity)]


BAD: list[tuple[Any, list[Any]]] = [
    ({"alerts": [{"status": "firing"}]}, ["body", "alerts", 0, "fingerprint"]),
    ({"alerts": [{"status": "pending", "fingerprint": "f"}]}, ["body", "alerts", 0, "status"]),
    ({"alerts": [{"status": "firing", "fingerprint": "f", "labels": {"a": 1}}]}, ["body", "alerts", 0, "labels", "a"]),
    ({"alerts": [{"status": "firing", "fingerprint": "f", "labels": {"a": "\u0000"}}]}, ["body", "alerts", 0]),
    ({"alerts": [{"status": "firing", "fingerprint": "f", "annotations": {"d": "x" * 9000}}]}, ["body", "alerts", 0]),
    ({"alerts": [{"status": "firing", "fingerprint": "f"}] * 101}, ["body", "alerts"]),
    ({"version": "4"}, ["body", "alerts"]),
]  # fmt: skip


@pytest.mark.parametrize(("body", "loc"), BAD)
def test_bad_notifications_are_422_naming_the_field_and_write_nothing(
    client: TestClient, bot: Headers, session: Session, body: Any, loc: list[Any]
) -> None:
    response = client.post(URL, json=body, headers=bot)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"][: len(loc)] for e in response.json()["detail"]], response.json()
    assert session.exec(select(Ticket)).all() == [] and session.exec(select(AlertKey)).all() == []


def test_one_bad_alert_refuses_the_whole_notification(
    client: TestClient, bot: Headers, session: Session
) -> None:
    response = client.post(URL, json=notification(alert("ok"), alert("bad", status="pending")), headers=bot)
    assert response.status_code == 422
    assert [e["loc"][:4] for e in response.json()["detail"]] == [["body", "alerts", 1, "status"]]
    assert session.exec(select(Ticket)).all() == []


def test_reporters_and_narrow_tokens_are_refused(
    client: TestClient, as_reporter: Headers, as_agent: Headers
) -> None:
    refused = client.post(URL, json=notification(alert("f")), headers=as_reporter)
    assert refused.status_code == 403 and refused.json()["detail"] == "reporters may not send alerts"
    narrow = client.post(
        f"{API}/tokens/", json={"name": "n", "scopes": ["tickets:write"]}, headers=as_agent
    ).json()
    refused = client.post(
        URL, json=notification(alert("f")), headers={"Authorization": f"Bearer {narrow['token']}"}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this API token lacks the scope alerts:write"
