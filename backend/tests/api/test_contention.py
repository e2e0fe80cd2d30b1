"""Contention through a real server process: concurrent writes to one ticket and logins from one
address queue for connections and locks instead of failing, at several pool sizes.

The scenarios are scripts/bench_contention.py's (which reports the timings): 100 status moves and
100 edits of one ticket, 50 edits with the same If-Match (the deadlock of issue [4/8]: the server
hung for good with DB_POOL_SIZE=25), 30 logins from one address. Each answers without a 503 and
within API_REQUEST_TIMEOUT_SECONDS, every accepted write is in the audit trail with its own version,
gapless, and /health keeps answering. The server runs on a throw-away database of its own.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from app.core import db, migrations
from app.core.config import get_settings
from app.factories import DEMO_PASSWORD, UserFactory
from app.models import Role
from scripts.bench_contention import contend, serving
from tests.coverage_hook import untraced
from tests.databases import scratch_database
from tests.utils import auth

# The benchmark runs 5, 10, 25 and 50; the test the smallest pool (most queueing for connections)
# and the size that deadlocked.
POOL_SIZES = [5, 25]
# A stall shows as seconds; the 100 ms target is the benchmark's, on a quiet machine.
HEALTH_BOUND_MS = 1000.0


@pytest.fixture(scope="module")
def contended_database() -> Iterator[tuple[str, dict[str, str], tuple[str, str]]]:
    """A migrated database with one agent: (url, the agent's headers, the agent's login)."""
    with scratch_database() as url:
        migrations.upgrade(url)
        engine = db.create_db_engine(url)
        try:
            with Session(engine) as session:
                agent = UserFactory.build(role=Role.agent)
                session.add(agent)
                session.commit()
                session.refresh(agent)
                headers, login = auth(agent), (agent.email, DEMO_PASSWORD)
        finally:
            engine.dispose()
        yield url, headers, login


@pytest.mark.parametrize("pool_size", POOL_SIZES)
def test_contention_queues_instead_of_failing(
    contended_database: tuple[str, dict[str, str], tuple[str, str]], pool_size: int, tmp_path: Path
) -> None:
    url, headers, login = contended_database
    with serving(url, pool_size, tmp_path / "server.log", LOG_LEVEL="WARNING") as base:
        # The server process measures app/; the load generator and its /health poller run none of it.
        report = untraced(lambda: contend(base, pool_size, headers, login))
    bound = get_settings().API_REQUEST_TIMEOUT_SECONDS
    assert report.problems(bound_seconds=bound, health_limit_ms=HEALTH_BOUND_MS) == [], "\n".join(
        report.lines()
    )
    statuses = {s.name: dict(s.statuses) for s in report.scenarios}
    assert statuses["100 title edits of one ticket"] == {200: 100}
    assert statuses["50 edits with the same If-Match"] == {200: 1, 412: 49}
    assert sum(statuses["100 status moves on one ticket"].values()) == 100
    assert report.health_polls > 10


def test_the_benchmark_waits_as_long_as_the_servers_deadline() -> None:
    from app.core.config import Settings
    from scripts.bench_contention import REQUEST_DEADLINE_SECONDS

    assert Settings.model_fields["API_REQUEST_TIMEOUT_SECONDS"].default == REQUEST_DEADLINE_SECONDS


def test_the_load_generator_lets_idle_connections_go_before_the_server_closes_them() -> None:
    """In CI a login of the storm once got no answer within 0.58 s: not the 22 s timeout, so a dropped
    connection. The likely cause: a pooled connection idle as long as uvicorn keeps one (5 s), which
    the server closed as the client sent on it. The client now lets idle connections go first."""
    import uvicorn

    from scripts.bench_contention import KEEPALIVE_EXPIRY_SECONDS

    assert uvicorn.Config("app.main:app").timeout_keep_alive > KEEPALIVE_EXPIRY_SECONDS
