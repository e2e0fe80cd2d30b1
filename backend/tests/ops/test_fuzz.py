"""Fuzzing: schemathesis generates requests from the app's own OpenAPI schema, as each role.

Every operation gets FUZZ_EXAMPLES (default 10) generated requests per role (admin, agent, reporter
and anonymous), valid and invalid ones, in the test's rolled-back transaction, over a few existing
rows: half of the generated path ids are ids of these rows, so that requests get past the 404. Each response must pass:
- not_a_server_error: no 5xx;
- response_schema_conformance: the body matches the schema documented for its status;
- status_code_conformance: the status is documented for the operation.
The totals (operations x requests per role) are printed at the end of the run. FUZZ_COVERAGE=1 adds
schemathesis' coverage phase (every boundary case the schema defines: about a minute per role).
"""

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlmodel import Session

from app.main import app
from app.models import Comment, Team, Ticket, User
from tests.conftest import MakeUser
from tests.utils import auth

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
PHASES = ["examples", "fuzzing", *(["coverage"] if os.environ.get("FUZZ_COVERAGE") == "1" else [])]
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

config = schemathesis.Config.from_dict(
    {
        "phases": {
            name: {"enabled": name in PHASES} for name in ("examples", "coverage", "fuzzing", "stateful")
        }
    }
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=config)
# Ids of rows that exist in the current test (the `rows` fixture): half of the generated path ids
# are drawn from these, so that the requests reach past the 404 into the handlers.
KNOWN_IDS: dict[str, list[int]] = {}


@schema.hook
def flatmap_path_parameters(
    _context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> Any:
    known = {name: st.sampled_from(KNOWN_IDS[name]) for name in path_parameters or {} if KNOWN_IDS.get(name)}
    if not known:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**(path_parameters or {}), **known}))


@pytest.fixture
def rows(session: Session, make_user: MakeUser, admin: User, agent: User, reporter: User) -> Iterator[None]:
    """A team, tickets and comments for the generated ids to hit."""
    assert admin.id and agent.id and reporter.id
    team = Team(name="Fuzzers")
    session.add(team)
    session.flush()
    tickets = []
    for n, reporter_id in enumerate((reporter.id, agent.id, reporter.id)):
        ticket = Ticket(
            title=f"Fuzz target {n}", reporter_id=reporter_id, assignee_id=agent.id, team_id=team.id
        )
        session.add(ticket)
        session.flush()
        assert ticket.id is not None
        tickets.append(ticket.id)
        session.add(Comment(body="A comment", ticket_id=ticket.id, author_id=agent.id))
        session.add(Comment(body="A note", internal=True, ticket_id=ticket.id, author_id=agent.id))
    session.commit()
    assert team.id is not None
    KNOWN_IDS.update(ticket_id=tickets, team_id=[team.id], user_id=[admin.id, agent.id, reporter.id])
    yield
    KNOWN_IDS.clear()


@pytest.fixture(params=["admin", "agent", "reporter", "anonymous"])
def role(
    request: pytest.FixtureRequest, admin: User, agent: User, reporter: User
) -> tuple[str, dict[str, str]]:
    users = {"admin": admin, "agent": agent, "reporter": reporter}
    name = str(request.param)
    return name, auth(users[name]) if name in users else {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_survives_fuzzing(
    case: schemathesis.Case,
    client: Any,
    rows: None,
    role: tuple[str, dict[str, str]],
    fuzz_counters: tuple[dict[str, Counter[str]], dict[str, Counter[int]]],
) -> None:
    name, headers = role
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    requests, statuses = fuzz_counters
    requests[name][case.operation.label] += 1
    statuses[name][response.status_code] += 1
    assert response.status_code < 500
