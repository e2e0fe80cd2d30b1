"""The `worker` command under test: the real entry point run as a subprocess against throw-away
migrated databases (SQLite, or PostgreSQL with TEST_DATABASE_URL), set up in-process through the
crud functions (tickets, written at a moved clock) and plain rows (calendars, policies: their admin
API is built elsewhere), and read back with plain SQL."""

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from app.core import db, migrations
from app.core.config import BACKEND_DIR
from app.core.database import Database, create_async_db_engine
from app.crud import common, tickets
from app.factories import UserFactory
from app.models import Calendar, Priority, Role, SlaPolicy, TicketCreate, User
from tests.databases import scratch_database

WORKER = str(Path(sys.executable).parent / "worker")
T = TypeVar("T")


@pytest.fixture
def migrated() -> Iterator[str]:
    """A throw-away database at the head revision (no SLA policy: the migration installs none)."""
    with scratch_database() as url:
        migrations.upgrade(url)
        yield url


# --- In-process set-up ----------------------------------------------------------------------------


def run(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """`work(db)` on a Database of its own for `url` (committed for real, as the worker sees it)."""

    async def main() -> T:
        engine = create_async_db_engine(url, poolclass=NullPool)
        database = Database(engine)
        try:
            return await work(database)
        finally:
            await database.close()
            await engine.dispose()

    return asyncio.run(main())


async def add_policy(
    database: Database,
    *,
    first_response: int | None = None,
    resolution: int | None = 60,
    warn_at_percent: int | None = 75,
    name: str = "Fast",
    position: int = 1,
) -> int:
    """A fallback policy (any priority, any team) on the built-in 24x7 calendar."""
    async with database.write() as session:
        calendar = (await session.exec(select(Calendar).where(col(Calendar.builtin)))).one()
        policy = SlaPolicy(
            name=name,
            position=position,
            calendar_id=calendar.id,
            first_response_minutes=first_response,
            resolution_minutes=resolution,
            warn_at_percent=warn_at_percent,
        )
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        return policy.id


async def add_reporter(database: Database) -> User:
    async with database.write() as session:
        reporter = UserFactory.build(role=Role.reporter)
        session.add(reporter)
    return reporter


def create_tickets(url: str, count: int, *, at: datetime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """`count` tickets created through crud.create_ticket with the clock at `at` (SLA timers
    attached by the write itself, due from `at`); returns their ids."""

    async def work(database: Database) -> list[int]:
        reporter = await add_reporter(database)
        ids = []
        with monkeypatch.context() as patch:
            patch.setattr(common, "utcnow", lambda: at)
            for number in range(count):
                ticket = await tickets.create_ticket(
                    db=database,
                    ticket_in=TicketCreate(title=f"VPN down at site {number}", priority=Priority.high),
                    reporter=reporter,
                )
                assert ticket.id is not None
                ids.append(ticket.id)
        return ids

    return run(url, work)


# --- Reading back ---------------------------------------------------------------------------------


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params).all()]
    finally:
        engine.dispose()


def execute(url: str, sql: str, **params: Any) -> None:
    engine = db.create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def sla_events(url: str) -> list[tuple[Any, ...]]:
    """(ticket_id, action, field, actor_id) of every SLA event, in the order they were written."""
    return rows(
        url,
        "SELECT ticket_id, action, field, actor_id FROM ticket_events WHERE action LIKE 'sla_%' ORDER BY id",
    )


# --- The worker process ---------------------------------------------------------------------------


def worker_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(DATABASE_URL=url, LOG_LEVEL="INFO", **extra)
    return env


def run_worker(url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WORKER, *args],
        cwd=BACKEND_DIR,
        env=worker_env(url, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


class Running:
    """A worker process whose stderr (its log) is collected as it comes."""

    def __init__(self, url: str, *args: str, **extra: str) -> None:
        self.process = subprocess.Popen(
            [WORKER, *args],
            cwd=BACKEND_DIR,
            env=worker_env(url, **extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, fragment: str, *, times: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(fragment in line for line in list(self.lines)) >= times:
                return
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                pytest.fail(f"the worker exited ({self.process.returncode}) before {fragment!r}:\n{self.log}")
            time.sleep(0.05)
        pytest.fail(f"no {fragment!r} {times} time(s) within {timeout} s:\n{self.log}")

    def finish(self, *, timeout: float) -> int:
        """Wait for the worker to exit on its own (`--once`); its exit code (the test fails if it
        takes longer than `timeout`)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker did not finish within {timeout} s:\n{self.log}")
        self._reader.join(timeout=5)
        return code

    def stop(self, signum: int, *, timeout: float = 10) -> int:
        """Send `signum`; the exit code (the test fails if it takes longer than `timeout`)."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the worker did not stop within {timeout} s:\n{self.log}")
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
