"""A client generated from the schema reads well and type-checks (openapi-python-client, mypy --strict).

The generated package's operations are named after the routes (`create_ticket`, `move_ticket`), and
tests/client/integration.py, an integrator's script using it, passes mypy --strict with zero errors
and works against a live server.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from app.factories import DEMO_PASSWORD, UserFactory
from app.main import app
from app.models import IdempotencyKey, Role, Ticket, User
from tests.coverage_hook import without_hook

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
TOOL_ENV = without_hook()  # the generator and mypy run none of app/ (tests/coverage_hook.py)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client package, generated into a folder of its own; returns that folder."""
    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(app.openapi()))
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(folder / "incident_desk_client"),
        ],
        env={**TOOL_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},  # its post-hook runs ruff
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_operations_are_named_after_the_routes(generated: Path) -> None:
    api = generated / "incident_desk_client" / "api"
    tickets = sorted(p.stem for p in (api / "tickets").glob("*.py") if p.stem != "__init__")
    assert tickets == [
        "add_comment",
        "create_ticket",
        "delete_ticket",
        "list_comments",
        "list_events",
        "list_tickets",
        "list_transitions",
        "move_ticket",
        "read_ticket",
        "read_ticket_sla",
        "update_ticket",
    ]
    models = {p.stem for p in (generated / "incident_desk_client" / "models").glob("*.py")}
    assert not [m for m in models if m.startswith("body_") or "api_v1" in m], models
    assert "ticket_sort" in models and "list_tickets_ticket_status" not in models
    sort = (generated / "incident_desk_client" / "models" / "ticket_sort.py").read_text()
    assert 'CREATED_AT_DESC = "-created_at"' in sort and "VALUE_1" not in sort


def test_the_integration_script_type_checks_with_mypy_strict(generated: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        # The script is checked strictly against the package's types; errors inside the generated
        # package itself (its template's own typing) are the generator's business, not the contract's.
        [
            str(BIN / "mypy"),
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "mypy"),
            str(HERE / "integration.py"),
        ],
        env={**TOOL_ENV, "MYPYPATH": str(generated)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")


@pytest.fixture
def integrator(engine: Engine) -> Iterator[tuple[User, User]]:
    """A reporter-agent pair committed for real (the live server does not share the test transaction)."""
    with Session(engine) as session:
        agent = UserFactory.build(role=Role.agent)
        session.add(agent)
        session.commit()
        session.refresh(agent)
        session.expunge(agent)
    yield agent, agent
    with Session(engine) as session:
        session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.user_id) == agent.id))  # type: ignore[call-overload]
        for ticket in session.exec(select(Ticket).where(Ticket.reporter_id == agent.id)).all():
            session.delete(ticket)
        session.commit()
        session.delete(session.get(User, agent.id))
        session.commit()


def test_the_integration_script_works_against_a_live_server(
    generated: Path, live_api: str, integrator: tuple[User, User]
) -> None:
    agent, _ = integrator
    sys.path.insert(0, str(generated))
    try:
        from tests.client import integration

        root = live_api.removesuffix("/api/v1")
        trail = integration.run(root, agent.email, DEMO_PASSWORD, agent.id or 0)
    finally:
        sys.path.remove(str(generated))
    actions = [line.split(":")[0] for line in trail]
    assert actions[0] == "created" and "status_changed" in actions and "assigned" in actions, trail
