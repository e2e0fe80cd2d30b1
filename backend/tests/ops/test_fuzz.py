"""Fuzzing: schemathesis generates requests from the app's own OpenAPI schema, as each role.

Every phase runs, as admin, agent, reporter and anonymous, in the test's rolled-back transaction,
over a few existing rows (half of the generated path ids are ids of these rows, so that requests
get past the 404):
- examples, coverage (every boundary the schema defines, unexpected methods, missing headers) and
  fuzzing, per operation, with valid and invalid data (generation mode "all");
- stateful: sequences of calls that follow the links schemathesis infers (create, then read, move,
  comment and delete what was created).
Every built-in check applies: no 5xx, status and body and headers as documented, valid data
accepted, invalid data rejected, 405 with a complete Allow for unsupported methods, and so on.

A fixed seed (FUZZ_SEED, default below) makes the run repeatable in CI; FUZZ_EXAMPLES (default 8)
and FUZZ_STATEFUL_EXAMPLES (default 4) set its size. A longer run before a release:
    FUZZ_EXAMPLES=200 FUZZ_STATEFUL_EXAMPLES=100 FUZZ_SEED=$RANDOM pytest tests/ops/test_fuzz.py
The totals (operations x requests per role) are printed at the end of the run.
"""

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from anyio.from_thread import BlockingPortal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.generation.stateful.state_machine import APIStateMachine
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session, col, select

from app import search
from app.api import idempotency
from app.main import app
from app.models import Calendar, Comment, SlaPolicy, Team, Ticket, User
from tests.conftest import MakeUser
from tests.utils import auth

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "4"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))

# What a request the schema calls valid may still be answered, besides 2xx: a refusal that depends
# on state the schema cannot describe (who you are, what exists, the ticket's lifecycle, its version,
# throttling), and the login form's 400 for wrong credentials (RFC 6749 5.2).
STATEFUL_REFUSALS = ["401", "403", "404", "409", "412", "429"]
# Operations whose valid-looking input may also be refused with a 422 for reasons JSON Schema cannot
# express: the password policy (app.core.passwords), the current password, and the lifecycle's
# per-move requirements (a reason for some moves, a resolution only when resolving: app.lifecycle).
RULES_BEYOND_THE_SCHEMA = [
    "POST /api/v1/users/",
    "PATCH /api/v1/users/{user_id}",
    "PATCH /api/v1/users/me/password",
    "PATCH /api/v1/tickets/{ticket_id}/status",
    # a calendar's time zone must exist and its working ranges must not overlap (app.calendars);
    # a holidays fill names a country and subdivision the `holidays` package knows
    "POST /api/v1/calendars/",
    "PATCH /api/v1/calendars/{calendar_id}",
    "POST /api/v1/calendars/{calendar_id}/holidays",
    # a token made for someone else names an active user (app.crud.api_tokens); a webhook URL's host
    # resolves to public addresses (app.core.addresses)
    "POST /api/v1/tokens/",
    "POST /api/v1/webhooks/",
    "PATCH /api/v1/webhooks/{endpoint_id}",
]
LOGIN = "POST /api/v1/login/access-token"


def acceptance(*also: str) -> dict[str, Any]:
    return {"positive_data_acceptance": {"expected-statuses": ["2xx", *also, *STATEFUL_REFUSALS]}}


config = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # No NUL in generated text: every text field refuses it (PostgreSQL cannot store it), as the
        # API description says; test_hostile_input.py covers it.
        # The tests send each role's real credentials (`role`): the generator makes no Authorization
        # header of its own (bad tokens are tested in tests/api/test_token_binding.py and
        # test_api_tokens.py).
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "allow-x00": False,
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": 6},
        },
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", *STATEFUL_REFUSALS]},
        },
        "operations": [
            {"include-name": LOGIN, "checks": acceptance("400")},
            *({"include-name": name, "checks": acceptance("422")} for name in RULES_BEYOND_THE_SCHEMA),
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=config)
# Ids of rows that exist in the current test (the `rows` fixture): half of the generated path ids
# are drawn from these, so that the requests reach past the 404 into the handlers.
KNOWN_IDS: dict[str, list[int]] = {}
HYPOTHESIS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


@schema.hook
def flatmap_path_parameters(
    _context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> Any:
    known = {name: st.sampled_from(KNOWN_IDS[name]) for name in path_parameters or {} if KNOWN_IDS.get(name)}
    if not known:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**(path_parameters or {}), **known}))


KEY = re.compile(idempotency.KEY_PATTERN)
_serial = itertools.count()
SPECIAL_USE_DOMAINS = {"arpa", "invalid", "local", "localhost", "onion", "test"}


def prepare(case: schemathesis.Case) -> None:
    """Valid data that only the server can make valid is made so; invalid data is left alone.
    (At call time: some phases generate their cases before the `rows` fixture has run.)

    - An Idempotency-Key is made unique per request: the generator repeats "0" across cases, and a
      key reused for another body is refused (422) by design, which is not what is tested here.
    - A generated `cursor` is dropped: only the server can issue one (they are signed), so a
      "valid-looking" cursor is always refused; forged cursors are tested in test_hostile_input.py.
    - A `q` the search syntax refuses (no word to find, only exclusions, over 16 terms) becomes a
      plain word: the syntax is beyond any schema (tested in tests/unit/test_search_syntax.py).
    - An e-mail address on a special-use domain (.test, .local, ...) gets a real one: addresses
      must be deliverable, as the schema's description of the field says.
    - Ids in a body point at rows of the `rows` fixture: an assignee must be an active agent and a
      team or calendar must exist, which no schema can say (unknown ones are tested in tests/api).
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.headers and isinstance(key := case.headers.get(idempotency.HEADER), str) and KEY.match(key):
        case.headers[idempotency.HEADER] = f"{next(_serial)}-{key}"[:255]
    if case.query and "cursor" in case.query:
        case.query = {name: value for name, value in case.query.items() if name != "cursor"}
    if case.query and isinstance(q := case.query.get("q"), str):
        try:
            search.parse(q)
        except search.SearchSyntaxError:  # e.g. only exclusions, or no word at all: a 422 by design
            case.query["q"] = "printer"
    if isinstance(case.body, dict) and isinstance(email := case.body.get("email"), str):
        domain = email.rpartition("@")[2].lower()
        if domain.split(".")[-1] in SPECIAL_USE_DOMAINS:  # refused by design (not deliverable)
            case.body["email"] = email.rpartition("@")[0] + "@example.com"
    if isinstance(case.body, dict):  # ids a body refers to must exist (and be an agent's, to assign)
        for field in ("assignee_id", "team_id", "calendar_id"):
            if isinstance(value := case.body.get(field), int | float) and KNOWN_IDS.get(field):
                case.body[field] = KNOWN_IDS[field][int(value) % len(KNOWN_IDS[field])]


@pytest.fixture
def rows(session: Session, make_user: MakeUser, admin: User, agent: User, reporter: User) -> Iterator[None]:
    """A team, tickets and comments, a calendar and an SLA policy for the generated ids to hit."""
    assert admin.id and agent.id and reporter.id
    team = Team(name="Fuzzers")
    calendar = Calendar(
        name="Fuzz hours", time_zone="Europe/Berlin", working_hours={"monday": ["09:00-17:00"]}
    )
    session.add_all([team, calendar])
    session.flush()
    builtin = session.exec(select(Calendar.id).where(col(Calendar.builtin))).one()
    assert team.id is not None and calendar.id is not None
    policy = SlaPolicy(name="Fuzz policy", position=5000, team_id=team.id, calendar_id=calendar.id)
    session.add(policy)
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
    KNOWN_IDS.update(
        ticket_id=tickets,
        team_id=[team.id],
        user_id=[admin.id, agent.id, reporter.id],
        assignee_id=[agent.id, admin.id],
        calendar_id=[builtin, calendar.id],
        policy_id=[policy.id or 0],
    )
    yield
    KNOWN_IDS.clear()


@contextmanager
def example_savepoint(portal: BlockingPortal, connection: AsyncConnection) -> Iterator[None]:
    """Each example starts from the same rows: what one example writes is rolled back before the
    next, so Hypothesis replays (and shrinks) an example against the state it first saw. Without it,
    a longer stateful run fails with FlakyStrategyDefinition: responses, and so the links' data,
    depend on what earlier examples left behind."""
    example = portal.call(connection.begin_nested)
    try:
        yield
    finally:
        portal.call(example.rollback)


@pytest.fixture(params=["admin", "agent", "reporter", "anonymous"])
def role(
    request: pytest.FixtureRequest, admin: User, agent: User, reporter: User
) -> tuple[str, dict[str, str]]:
    users = {"admin": admin, "agent": agent, "reporter": reporter}
    name = str(request.param)
    return name, auth(users[name]) if name in users else {}


@schema.parametrize()
@settings(max_examples=EXAMPLES, **HYPOTHESIS)
def test_api_survives_fuzzing(
    case: schemathesis.Case,
    client: Any,
    portal: BlockingPortal,
    connection: AsyncConnection,
    rows: None,
    role: tuple[str, dict[str, str]],
    fuzz_counters: tuple[dict[str, Counter[str]], dict[str, Counter[int]]],
) -> None:
    name, headers = role
    prepare(case)
    with example_savepoint(portal, connection):
        response = case.call_and_validate(headers=headers)
    requests, statuses = fuzz_counters
    requests[name][case.operation.label] += 1
    statuses[name][response.status_code] += 1
    assert response.status_code < 500


def test_api_survives_stateful_fuzzing(
    client: Any,
    portal: BlockingPortal,
    connection: AsyncConnection,
    rows: None,
    role: tuple[str, dict[str, str]],
    fuzz_counters: tuple[dict[str, Counter[str]], dict[str, Counter[int]]],
) -> None:
    name, headers = role
    requests, statuses = fuzz_counters

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.example = portal.call(connection.begin_nested)

        def teardown(self) -> None:
            portal.call(self.example.rollback)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": headers}

        def before_call(self, case: schemathesis.Case) -> None:
            prepare(case)

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            requests[f"{name} (stateful)"][case.operation.label] += 1
            statuses[f"{name} (stateful)"][response.status_code] += 1

    Machine.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, **HYPOTHESIS))


_ = APIStateMachine  # the class the machines above derive from
