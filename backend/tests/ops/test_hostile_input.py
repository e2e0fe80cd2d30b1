"""Hostile input gets a clear 4xx, never a 500, and nothing is written half-way.

Each class of input is refused where it enters: the JSON body decoder (UTF-8 only, no lone
surrogates, no non-finite numbers), the id types (JSON integers only; path ids are plain digits),
the paging dependency (bounded offsets), the timestamp type (UTC within the calendar) and the cursor
codec (signed; decoded values checked).
"""

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import Comment, Team, Ticket, User
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]


def send_raw(client: TestClient, method: str, path: str, text: str | bytes, headers: Headers) -> Any:
    body = text.encode() if isinstance(text, str) else text
    return client.request(
        method, f"{API}{path}", content=body, headers={**headers, "Content-Type": "application/json"}
    )


def rows(session: Session) -> tuple[int, ...]:
    return tuple(
        session.exec(select(func.count()).select_from(m)).one() for m in (Ticket, Comment, Team, User)
    )


def assert_refused(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = error_body(response)  # renders as JSON with the request id: not a 500
    return body


# Every string field of every body: a lone surrogate escaped in JSON.
SURROGATE = '"\\ud800"'


@pytest.fixture
def targets(client: TestClient, as_admin: Headers, agent: User) -> dict[str, int]:
    ticket = create_ticket(client, as_admin, title="Target")
    team = client.post(f"{API}/teams/", json={"name": "Target team"}, headers=as_admin).json()
    return {"ticket": ticket["id"], "team": team["id"], "user": agent.id or 0}


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/tickets/", '{"title": %s}'),
        ("POST", "/tickets/", '{"title": "ok", "description": %s}'),
        ("PATCH", "/tickets/{ticket}", '{"description": %s}'),
        ("PATCH", "/tickets/{ticket}/status", '{"status": "cancelled", "reason": %s}'),
        ("POST", "/tickets/{ticket}/comments", '{"body": %s}'),
        ("POST", "/teams/", '{"name": %s}'),
        ("PATCH", "/teams/{team}", '{"description": %s}'),
        (
            "POST",
            "/users/",
            '{"email": "s@example.com", "password": "a long passphrase ok", "full_name": %s}',
        ),
        ("PATCH", "/users/{user}", '{"full_name": %s}'),
        ("PATCH", "/users/me", '{"full_name": %s}'),
        ("POST", "/tickets/", '{%s: "a key that is a lone surrogate"}'),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_422(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    targets: dict[str, int],
    method: str,
    path: str,
    template: str,
) -> None:
    before = rows(session)
    response = send_raw(client, method, path.format(**targets), template % SURROGATE, as_admin)
    body = assert_refused(response)
    assert body["detail"][0]["type"] == "json_invalid"
    assert "surrogate" in body["detail"][0]["msg"]
    assert rows(session) == before


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999"])
def test_non_finite_numbers_are_422(client: TestClient, as_admin: Headers, number: str) -> None:
    response = send_raw(client, "POST", "/tickets/", f'{{"title": "x", "assignee_id": {number}}}', as_admin)
    body = assert_refused(response)
    assert body["detail"][0]["type"] == "json_invalid"
    assert "finite" in body["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("encoded", "status"),
    [
        ('{"title": "Café"}'.encode("utf-16"), 400),
        ('{"title": "Café"}'.encode("utf-32"), 400),
        ('{"title": "Café"}'.encode("latin-1"), 400),
        (b"\xef\xbb\xbf" + b'{"title": "bom"}', 422),
    ],
)
def test_bodies_must_be_utf8_json(
    client: TestClient, session: Session, as_admin: Headers, encoded: bytes, status: int
) -> None:
    before = rows(session)
    assert_refused(send_raw(client, "POST", "/tickets/", encoded, as_admin), status)
    assert rows(session) == before


@pytest.mark.parametrize("value", ['"1"', "true", "1.5", '"me"', "1e300"])
def test_ids_in_bodies_are_json_integers(
    client: TestClient, as_admin: Headers, agent: User, value: str
) -> None:
    response = send_raw(client, "POST", "/tickets/", f'{{"title": "x", "assignee_id": {value}}}', as_admin)
    body = assert_refused(response)
    assert body["detail"][0]["loc"] == ["body", "assignee_id"]


@pytest.mark.parametrize("field", ["internal"])
@pytest.mark.parametrize("value", ['"true"', "1", '"yes"'])
def test_booleans_in_bodies_are_json_booleans(
    client: TestClient, as_admin: Headers, targets: dict[str, int], field: str, value: str
) -> None:
    text = f'{{"body": "hello", "{field}": {value}}}'
    response = send_raw(client, "POST", f"/tickets/{targets['ticket']}/comments", text, as_admin)
    assert assert_refused(response)["detail"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    "raw", ["1.0", "1%20", "%201", "01", "+1", "1e0", "0x1", "\uff11"]
)  # the last: a full-width digit one
def test_a_path_id_is_plain_digits(client: TestClient, as_admin: Headers, raw: str) -> None:
    create_ticket(client, as_admin)  # ticket 1 may or may not exist: never reached either way
    for path in (f"/tickets/{raw}", f"/teams/{raw}", f"/users/{raw}", f"/tickets/{raw}/events"):
        response = client.get(f"{API}{path}", headers=as_admin)
        body = assert_refused(response)
        assert body["detail"][0]["loc"][0] == "path", body


@pytest.mark.parametrize(
    "path", ["/users/", "/teams/", "/tickets/{ticket}/events", "/tickets/{ticket}/comments"]
)
@pytest.mark.parametrize("offset", [str(2**64), str(2**63), "10000001", "-1"])
def test_secondary_list_offsets_are_bounded(
    client: TestClient, as_admin: Headers, targets: dict[str, int], path: str, offset: str
) -> None:
    response = client.get(f"{API}{path.format(**targets)}", params={"offset": offset}, headers=as_admin)
    assert assert_refused(response)["detail"][0]["loc"] == ["query", "offset"]


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC
        "9999-12-31T23:59:59.999999-00:01",
        "0001-01-01T00:00:00+23:59",
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before", "updated_after", "updated_before"])
def test_timestamps_outside_the_utc_calendar_are_422(
    client: TestClient, as_admin: Headers, name: str, moment: str
) -> None:
    response = client.get(f"{API}/tickets/", params={name: moment}, headers=as_admin)
    body = assert_refused(response)
    assert body["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize(
    "moment", ["9999-12-31T09:59:59-14:00", "0001-01-01T14:00:00+14:00", "2026-11-30T12:00:00+05:30"]
)
def test_timestamps_at_the_edges_inside_the_calendar_work(
    client: TestClient, as_admin: Headers, moment: str
) -> None:
    response = client.get(f"{API}/tickets/", params={"created_before": moment}, headers=as_admin)
    assert response.status_code == 200, response.text


def b64(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def unpadded_b64decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_a_forged_cursor_is_422(client: TestClient, as_admin: Headers) -> None:
    for n in range(3):
        create_ticket(client, as_admin, title=f"page {n}")
    first = client.get(f"{API}/tickets/", params={"limit": 1}, headers=as_admin).json()
    cursor = first["next_cursor"]
    assert (
        client.get(f"{API}/tickets/", params={"limit": 1, "cursor": cursor}, headers=as_admin).status_code
        == 200
    )
    # What a cursor says is readable (and its fingerprint is computable); forging one with out-of-range
    # values must not reach the database.
    payload = json.loads(unpadded_b64decode(cursor.split(".")[0]))
    forged = [
        b64({**payload, "i": 2**70}),
        b64({**payload, "i": -1}),
        b64({**payload, "i": True}),
        b64({**payload, "k": "9999-12-31T23:59:59-14:00"}),
        b64({**payload, "k": "0001-01-01T00:00:00+14:00"}),
        b64({**payload, "k": 12}),
        cursor.split(".")[0],  # the payload without its signature
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),  # tampered signature
        "%%%%",
        "",
    ]
    for token in forged:
        response = client.get(f"{API}/tickets/", params={"limit": 1, "cursor": token}, headers=as_admin)
        body = assert_refused(response)
        assert body["detail"][0]["loc"][:1] == ["query"], body
        assert "cursor" in json.dumps(body["detail"][0]), body


def test_a_cursor_with_a_huge_priority_rank_is_422(client: TestClient, as_admin: Headers) -> None:
    for n in range(3):
        create_ticket(client, as_admin, title=f"page {n}")
    params = {"limit": 1, "sort": "-priority"}
    cursor = client.get(f"{API}/tickets/", params=params, headers=as_admin).json()["next_cursor"]
    payload = json.loads(unpadded_b64decode(cursor.split(".")[0]))
    for bad in (2**70, 1.5, "3", None):
        token = b64({**payload, "k": bad})
        response = client.get(f"{API}/tickets/", params={**params, "cursor": token}, headers=as_admin)
        assert_refused(response)


def test_405_names_every_method_of_the_path(client: TestClient, as_admin: Headers) -> None:
    ticket = create_ticket(client, as_admin)
    cases = {
        "/tickets/": "GET, HEAD, POST",
        f"/tickets/{ticket['id']}": "DELETE, GET, HEAD, PATCH",
        f"/tickets/{ticket['id']}/comments": "GET, HEAD, POST",
        "/users/me": "GET, HEAD, PATCH",  # not /users/{user_id}'s DELETE
    }
    for path, allowed in cases.items():
        response = client.put(f"{API}{path}", json={}, headers=as_admin)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed, path
        assert error_body(response) == {"detail": "Method Not Allowed"}
