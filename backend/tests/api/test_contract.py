"""The OpenAPI document is a contract generated clients read well, and the server keeps it.

(Every response of the HTTP tests is also checked against it: tests/contract.py, via the `client`
fixture. The first test here shows that checker catching each kind of drift.)
"""

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api.main import API_ROUTERS
from app.models import Ticket
from tests import contract
from tests.utils import API, create_ticket, error_body, move

Headers = dict[str, str]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from app.main import app

    return app.openapi()


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for ops in schema["paths"].values() for op in ops.values()}


def component(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    return dict(schema["components"]["schemas"][ref.rsplit("/", 1)[1]])


def test_the_checker_catches_each_kind_of_drift(client: TestClient, as_agent: Headers) -> None:
    ticket = client.get(f"{API}/tickets/{create_ticket(client, as_agent)['id']}", headers=as_agent)
    url = f"http://testserver{API}/tickets/{ticket.json()['id']}"
    request = httpx.Request("GET", url)

    def answer(status: int, body: Any, **headers: str) -> httpx.Response:
        response = httpx.Response(
            status, json=body, headers={"X-Request-ID": "r1", **headers}, request=request
        )
        response.elapsed = timedelta(0)  # as a transport would set it
        return response

    contract.check("GET", url, answer(200, ticket.json(), ETag='"1"'))  # as served: fine
    with pytest.raises(contract.ContractViolation, match="status not documented"):
        contract.check("GET", url, answer(409, {"detail": "x", "request_id": "r1"}))
    with pytest.raises(contract.ContractViolation, match="header ETag is missing"):
        contract.check("GET", url, answer(200, ticket.json()))
    with pytest.raises(contract.ContractViolation, match="does not match the schema"):
        contract.check("GET", url, answer(200, {**ticket.json(), "version": "two"}, ETag='"1"'))
    with pytest.raises(contract.ContractViolation, match="does not match the schema"):
        contract.check("GET", url, answer(404, {"detail": "gone"}))  # no request_id


def test_operation_ids_are_the_route_names(schema: dict[str, Any]) -> None:
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    routes = {route.name for router in API_ROUTERS for route in router.routes}
    assert routes == set(ids) - {"ping", "health", "db_health"}
    assert {"list_tickets", "read_ticket", "create_ticket", "update_ticket", "move_ticket"} <= set(ids)
    assert not [i for i in ids if "api_v1" in i or i.endswith(("_get", "_post", "_patch", "_delete"))]
    bodies = schema["components"]["schemas"]
    assert not [name for name in bodies if name.startswith("Body_")]
    form = schema["paths"][f"{API}/login/access-token"]["post"]["requestBody"]["content"]
    assert form["application/x-www-form-urlencoded"]["schema"] == {"$ref": "#/components/schemas/LoginForm"}


def test_every_field_the_server_always_sends_is_required(schema: dict[str, Any]) -> None:
    outputs = [
        "TicketPublic",
        "TicketsPublic",
        "TicketEventPublic",
        "TicketEventsPublic",
        "CommentPublic",
        "UserPublic",
        "TeamPublic",
        "Token",
        "TransitionsPublic",
        "ApiError",
        "InvalidRequestError",
        "StaleVersionError",
        "MoveRefusedError",
    ]
    for name in outputs:
        definition = schema["components"]["schemas"][name]
        assert set(definition.get("required", [])) == set(definition["properties"]), name
    tickets = schema["components"]["schemas"]["TicketsPublic"]
    assert {"count", "next_cursor", "count_exact"} <= set(tickets["required"])
    assert "priority" in schema["components"]["schemas"]["TicketPublic"]["required"]
    assert "created_at" in schema["components"]["schemas"]["TicketEventPublic"]["required"]


def test_list_parameters_use_the_shared_enums_and_readable_sort_names(schema: dict[str, Any]) -> None:
    parameters = {p["name"]: p["schema"] for p in schema["paths"][f"{API}/tickets/"]["get"]["parameters"]}
    assert parameters["status"]["items"] == {"$ref": "#/components/schemas/TicketStatus"}
    assert parameters["priority"]["items"] == {"$ref": "#/components/schemas/Priority"}
    assert parameters["sort"]["$ref"] == "#/components/schemas/TicketSort"
    sort = schema["components"]["schemas"]["TicketSort"]
    assert dict(zip(sort["enum"], sort["x-enum-varnames"], strict=True)) == {
        "created_at": "created_at",
        "-created_at": "created_at_desc",
        "updated_at": "updated_at",
        "-updated_at": "updated_at_desc",
        "priority": "priority",
        "-priority": "priority_desc",
        "status": "status",
        "-status": "status_desc",
        "sla_due_at": "sla_due_at",
        "-sla_due_at": "sla_due_at_desc",
    }
    assert parameters["sla_state"]["items"] == {"$ref": "#/components/schemas/SlaState"}
    for name in ("assignee", "reporter", "team"):
        assert "pattern" in parameters[name] and "anyOf" not in parameters[name]
    assert not [n for n, p in parameters.items() if "null" in str(p)]  # a query parameter is never null


def test_headers_are_never_null(schema: dict[str, Any]) -> None:
    for op in operations(schema).values():
        for parameter in op.get("parameters", []):
            if parameter["in"] == "header":
                assert "anyOf" not in parameter["schema"] and parameter["schema"]["type"] == "string", (
                    parameter
                )


def test_the_response_headers_clients_rely_on_are_declared(schema: dict[str, Any]) -> None:
    ops = operations(schema)

    def headers(op: str, status: str) -> set[str]:
        return set(ops[op]["responses"][status].get("headers", {}))

    assert headers("create_ticket", "201") >= {"ETag", "Location", "Idempotent-Replayed", "X-Request-ID"}
    assert headers("add_comment", "201") >= {"Idempotent-Replayed"}
    for op in ("read_ticket", "update_ticket", "move_ticket"):
        assert "ETag" in headers(op, "200"), op
    for op, answers in ((o, d["responses"]) for o, d in ops.items()):
        for status, answer in answers.items():
            assert "X-Request-ID" in answer.get("headers", {}), (op, status)
            if status in ("429", "503") and op != "db_health":  # a readiness probe retries by itself
                assert "Retry-After" in answer["headers"], (op, status)
            if status == "401":
                assert "WWW-Authenticate" in answer["headers"], (op, status)
    assert "Retry-After" in headers("create_ticket", "409")


def test_one_error_model_per_kind(schema: dict[str, Any]) -> None:
    ops = operations(schema)

    def body(op: str, status: str) -> str:
        return str(ops[op]["responses"][status]["content"]["application/json"]["schema"]["$ref"])

    assert body("update_ticket", "412").endswith("/StaleVersionError")
    assert body("delete_ticket", "412").endswith("/StaleVersionError")
    assert body("move_ticket", "409").endswith("/MoveRefusedError")
    assert body("update_ticket", "409").endswith("/TicketClosedError")
    assert body("delete_team", "409").endswith("/TeamInUseError")
    for op, definition in ops.items():
        for status, answer in definition["responses"].items():
            if status.startswith(("4", "5")) and op != "db_health":
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert "request_id" in component(schema, ref)["required"], (op, status)
                if status == "422":
                    assert ref.endswith("/InvalidRequestError")
    stale = schema["components"]["schemas"]["StaleVersionError"]
    assert stale["properties"]["current_version"]["type"] == "integer"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "412" not in ops["add_comment"]["responses"]  # takes no If-Match


def test_the_input_rules_are_in_the_schema(schema: dict[str, Any]) -> None:
    description = schema["info"]["description"]
    for rule in ("NUL", "UTF-8", "unknown fields are refused", "`null`", "ETag"):
        assert rule in description
    ticket = schema["components"]["schemas"]["TicketCreate"]["properties"]["title"]
    assert "pattern" in ticket  # not blank
    update = schema["components"]["schemas"]["TicketUpdate"]["properties"]
    assert "null" not in str(update["title"]) and "null" not in str(update["priority"])
    assert "null" in str(update["assignee_id"])  # may be cleared


def test_a_delete_honours_if_match(
    client: TestClient, session: Session, as_admin: Headers, as_agent: Headers
) -> None:
    ticket = create_ticket(client, as_agent)
    assert move(client, as_agent, ticket["id"], "in_progress", assignee_id=1).status_code in (200, 422)
    current = client.get(f"{API}/tickets/{ticket['id']}", headers=as_agent).headers["ETag"]
    stale = client.delete(f"{API}/tickets/{ticket['id']}", headers={**as_admin, "If-Match": '"0"'})
    assert stale.status_code == 412
    assert error_body(stale) == {
        "detail": "The ticket has changed since you read it; reload and retry",
        "current_version": int(current.strip('"')),
    }
    assert session.get(Ticket, ticket["id"]) is not None
    ok = client.delete(f"{API}/tickets/{ticket['id']}", headers={**as_admin, "If-Match": current})
    assert ok.status_code == 204
    session.expire_all()
    assert session.get(Ticket, ticket["id"]) is None


def test_timestamps_in_responses_carry_an_offset(client: TestClient, as_agent: Headers) -> None:
    ticket = create_ticket(client, as_agent)
    answers = [
        ticket,
        client.get(f"{API}/tickets/", headers=as_agent).json()["data"][0],
        client.get(f"{API}/tickets/{ticket['id']}/events", headers=as_agent).json()["data"][0],
        client.get(f"{API}/users/me", headers=as_agent).json(),
    ]
    rfc3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
    for body in answers:
        stamps = [v for k, v in body.items() if k.endswith("_at") and v is not None]
        assert stamps and all(rfc3339.match(v) for v in stamps), body
