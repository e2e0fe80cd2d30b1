"""Through a real server: the container's command logs only JSON lines, one access line per request;
concurrent retries of one Idempotency-Key write once."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.core import migrations
from app.core.config import BACKEND_DIR
from app.factories import UserFactory
from app.models import IdempotencyKey, Role, Ticket, User
from scripts.benchkit import dockerfile_command, free_port, wait_until_healthy
from tests.databases import scratch_database
from tests.utils import API, auth

BIN = Path(sys.executable).parent


def test_the_container_command_writes_only_json_lines_and_one_access_line_per_request() -> None:
    with scratch_database() as url:
        migrations.upgrade(url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
        env.update(
            DATABASE_URL=url,
            ENVIRONMENT="production",
            SECRET_KEY="a-production-secret-of-more-than-32-characters",
            FIRST_SUPERUSER_PASSWORD="not-the-placeholder",
            LOG_LEVEL="INFO",
        )
        server = subprocess.Popen(
            dockerfile_command(port),
            cwd=BACKEND_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_until_healthy(base, server), "the server did not start"
            token = "Bearer not-a-real-token-but-secret"
            answers = [
                httpx.get(f"{base}/ping", headers={"X-Request-ID": "probe-1"}),
                httpx.get(f"{base}{API}/tickets/", headers={"Authorization": token}),
                httpx.get(f"{base}/db-health"),
            ]
        finally:
            server.terminate()
            stdout, stderr = server.communicate(timeout=15)

    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert stdout.strip() == ""
    access = [e for e in entries if e["logger"] == "app.access"]
    # /health while waiting for the server, then one line for each of the three requests
    assert [(e["path"], e["status"]) for e in access][-3:] == [
        ("/ping", 200),
        (f"{API}/tickets/", 401),
        ("/db-health", 200),
    ]
    assert access[-3]["request_id"] == "probe-1"
    assert [e["request_id"] for e in access[-2:]] == [r.headers["X-Request-ID"] for r in answers[1:]]
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]
    assert any(e["logger"] == "uvicorn.error" for e in entries)  # the server's own lines, as JSON
    assert "not-a-real-token" not in stderr
    assert "color_message" not in stderr and "alembic" not in stderr  # /db-health is quiet


# --- Idempotent creates under concurrency ---------------------------------------------------------


@pytest.fixture
def committed_agent(engine: Engine) -> Iterator[User]:
    with Session(engine) as session:
        agent = UserFactory.build(role=Role.agent)
        session.add(agent)
        session.commit()
        session.refresh(agent)
        session.expunge(agent)
    yield agent
    with Session(engine) as session:
        for ticket in session.exec(select(Ticket).where(Ticket.reporter_id == agent.id)).all():
            session.delete(ticket)
        session.commit()
        for key in session.exec(select(IdempotencyKey).where(IdempotencyKey.user_id == agent.id)).all():
            session.delete(key)
        session.delete(session.get(User, agent.id))
        session.commit()


def test_concurrent_retries_of_one_key_write_once(
    live_api: str, engine: Engine, committed_agent: User
) -> None:
    headers = {**auth(committed_agent), "Idempotency-Key": "burst-of-retries"}
    body = {"title": "Submitted twelve times at once"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=30) as http, ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: http.post("/tickets/", json=body), range(12)))
        settled = http.post("/tickets/", json=body)

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert settled.status_code == 201 and settled.json()["id"] in created
    assert settled.headers["Idempotent-Replayed"] == "true"
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["Retry-After"] == "1"
    with Session(engine) as session:
        stored = session.exec(select(Ticket).where(col(Ticket.reporter_id) == committed_agent.id)).all()
    assert [t.id for t in stored] == list(created)


def test_request_ids_are_unique_under_concurrency(live_api: str, committed_agent: User) -> None:
    with (
        httpx.Client(base_url=live_api, headers=auth(committed_agent), timeout=30) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        ids = list(pool.map(lambda _: http.get("/users/me").headers["X-Request-ID"], range(40)))
    assert len(set(ids)) == 40 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
