"""GET/POST/DELETE /tickets/{id}/watchers: who watches and why, watching yourself or (agents and
admins) others, unwatching that beats the automatic reasons."""

from typing import Any

from fastapi.testclient import TestClient

from app.models import Role, User
from tests.conftest import MakeUser
from tests.utils import API, auth, create_ticket, error_body

Headers = dict[str, str]


def watchers(client: TestClient, headers: Headers, ticket_id: int) -> list[dict[str, Any]]:
    response = client.get(f"{API}/tickets/{ticket_id}/watchers", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return list(body["data"])


def reasons(listed: list[dict[str, Any]]) -> dict[int, list[str]]:
    return {w["user_id"]: w["reasons"] for w in listed}


def test_the_reporter_the_assignee_and_commenters_watch_automatically(
    client: TestClient,
    as_reporter: Headers,
    reporter: User,
    as_agent: Headers,
    agent: User,
    agent2: User,
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    assert reasons(watchers(client, as_agent, tid)) == {reporter.id: ["reporter"]}
    client.patch(f"{API}/tickets/{tid}", json={"assignee_id": agent2.id}, headers=as_agent)
    client.post(f"{API}/tickets/{tid}/comments", json={"body": "Which floor?"}, headers=as_agent)
    client.post(f"{API}/tickets/{tid}/comments", json={"body": "Third"}, headers=as_reporter)
    listed = watchers(client, as_agent, tid)
    assert reasons(listed) == {
        reporter.id: ["reporter", "commenter"],
        agent.id: ["commenter"],
        agent2.id: ["assignee"],
    }
    assert {w["user_id"]: (w["email"], w["full_name"]) for w in listed}[agent.id] == (
        agent.email,
        "Alex Agent",
    )


def test_reporters_see_names_not_addresses_and_nobody_known_only_from_internal_notes(
    client: TestClient, as_reporter: Headers, reporter: User, as_agent: Headers, agent2: User
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    client.post(f"{API}/tickets/{tid}/comments", json={"body": "Odd", "internal": True}, headers=auth(agent2))
    assert reasons(watchers(client, as_agent, tid)) == {reporter.id: ["reporter"], agent2.id: ["commenter"]}
    assert watchers(client, as_reporter, tid) == [
        {"user_id": reporter.id, "email": None, "full_name": "Riley Reporter", "reasons": ["reporter"]}
    ]


def test_watching_yourself_and_unwatching_are_idempotent(
    client: TestClient, as_reporter: Headers, reporter: User, as_agent: Headers, agent: User
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}/watchers"
    for _ in range(2):
        response = client.post(url, headers=as_agent)
        assert response.status_code == 200, response.text
        assert reasons(response.json()["data"]) == {reporter.id: ["reporter"], agent.id: ["explicit"]}
    for _ in range(2):
        response = client.delete(f"{url}/{agent.id}", headers=as_agent)
        assert response.status_code == 204 and response.content == b""
    assert reasons(watchers(client, as_agent, tid)) == {reporter.id: ["reporter"]}
    # the reporter unwatches their own ticket: the automatic reason no longer applies
    assert client.delete(f"{url}/{reporter.id}", headers=as_reporter).status_code == 204
    assert watchers(client, as_agent, tid) == []
    # an empty JSON body is "yourself" too
    response = client.post(url, json={}, headers=as_reporter)
    assert reasons(response.json()["data"]) == {reporter.id: ["reporter", "explicit"]}


def test_agents_and_admins_add_and_remove_others_who_can_see_the_ticket(
    client: TestClient,
    make_user: MakeUser,
    as_reporter: Headers,
    reporter: User,
    other_reporter: User,
    as_agent: Headers,
    agent2: User,
    as_admin: Headers,
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}/watchers"
    response = client.post(url, json={"user_id": agent2.id}, headers=as_agent)
    assert reasons(response.json()["data"]) == {reporter.id: ["reporter"], agent2.id: ["explicit"]}
    assert client.delete(f"{url}/{agent2.id}", headers=as_admin).status_code == 204
    assert reasons(watchers(client, as_agent, tid)) == {reporter.id: ["reporter"]}

    inactive = make_user(Role.agent, is_active=False)
    for user_id in (other_reporter.id, inactive.id, 10**6):
        refused = client.post(url, json={"user_id": user_id}, headers=as_agent)
        assert refused.status_code == 422, refused.text
        assert error_body(refused)["detail"] == [
            {
                "type": "value_error",
                "loc": ["body", "user_id"],
                "msg": f"no active user with id {user_id} who can see this ticket",
            }
        ]
    assert client.delete(f"{url}/{10**6}", headers=as_agent).status_code == 404


def test_reporters_may_not_watch_for_others_and_never_see_other_tickets(
    client: TestClient,
    as_reporter: Headers,
    reporter: User,
    other_reporter: User,
    agent: User,
    as_agent: Headers,
) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}/watchers"
    refused = client.post(url, json={"user_id": agent.id}, headers=as_reporter)
    assert refused.status_code == 403
    assert error_body(refused) == {"detail": "reporters may not add other watchers"}
    client.post(url, headers=as_agent)
    refused = client.delete(f"{url}/{agent.id}", headers=as_reporter)
    assert error_body(refused) == {"detail": "reporters may not remove other watchers"}
    stranger = auth(other_reporter)
    for response in (
        client.get(url, headers=stranger),
        client.post(url, headers=stranger),
        client.delete(f"{url}/{other_reporter.id}", headers=stranger),
    ):
        assert response.status_code == 404
        assert error_body(response) == {"detail": "Ticket not found"}


def test_a_bad_body_is_a_422(client: TestClient, as_reporter: Headers, as_agent: Headers) -> None:
    tid = create_ticket(client, as_reporter)["id"]
    url = f"{API}/tickets/{tid}/watchers"
    for body in ({"user_id": None}, {"user_id": "2"}, {"user_id": 0}, {"someone": 1}):
        assert client.post(url, json=body, headers=as_agent).status_code == 422, body
