"""The clock's passes in-process, on the test's connection: what an idle pass costs (statements
counted on the engine), and that batches add up to all the work."""

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, col, func, select

from app import worker
from app.core.clock import utcnow
from app.core.database import Database
from app.crud import common, sla_clock, ticket_writes, tickets
from app.models import EventAction, SlaRecompute, SlaTimer, Ticket, TicketCreate, TicketEvent, User
from tests.conftest import RunDb
from tests.worker.conftest import add_policy

NOT_WORK = ("BEGIN", "COMMIT", "ROLLBACK")  # the test's own transaction handling


@pytest.fixture
def statements(async_engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement sent to the database from here on, BEGIN/COMMIT/ROLLBACK aside."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(NOT_WORK):
            seen.append(" ".join(statement.split()))

    event.listen(async_engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(async_engine.sync_engine, "before_cursor_execute", record)


def make_tickets(
    run_db: RunDb, reporter: User, count: int, monkeypatch: pytest.MonkeyPatch, *, ago: timedelta
) -> list[int]:
    async def work(db: Database) -> list[int]:
        ids = []
        with monkeypatch.context() as patch:
            patch.setattr(common, "utcnow", lambda: utcnow() - ago)
            for number in range(count):
                ticket = await tickets.create_ticket(
                    db=db, ticket_in=TicketCreate(title=f"Disk full on db-{number}"), reporter=reporter
                )
                assert ticket.id is not None
                ids.append(ticket.id)
        return ids

    result: list[int] = run_db(work)
    return result


def test_a_clock_pass_with_nothing_due_is_one_indexed_query(
    run_db: RunDb, reporter: User, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db(lambda db: add_policy(db, resolution=60))
    make_tickets(run_db, reporter, 3, monkeypatch, ago=timedelta(minutes=1))  # running, nothing due yet
    statements.clear()

    assert run_db(lambda db: sla_clock.clock_pass(db)) == 0
    assert len(statements) == 1, statements
    (query,) = statements
    assert "FROM sla_timers" in query and "next_check_at <=" in query and "LIMIT" in query
    assert "FOR UPDATE" not in query


def test_an_idle_worker_pass_reads_and_writes_nothing_else(run_db: RunDb, statements: list[str]) -> None:
    done = run_db(lambda db: worker.run_pass(db, batch=200))
    assert done == dict.fromkeys(worker.JOBS, 0)
    # one read per job (the clock's index, the empty recompute queue, no webhook due, the outbox's
    # due index); no write transaction
    assert len(statements) == 4, statements
    assert not [s for s in statements if s.upper().startswith(("SAVEPOINT", "INSERT", "UPDATE", "DELETE"))]
    assert "FROM sla_timers" in statements[0] and "FROM sla_recompute" in statements[1]
    assert "FROM webhook_deliveries" in statements[2]
    assert statements[3].startswith("SELECT notifications.id FROM notifications")


def test_a_clock_pass_records_everything_due_in_batches(
    run_db: RunDb, reporter: User, session: Session, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db(lambda db: add_policy(db, resolution=60, warn_at_percent=None))
    overdue = make_tickets(run_db, reporter, 5, monkeypatch, ago=timedelta(hours=2))
    make_tickets(run_db, reporter, 2, monkeypatch, ago=timedelta(minutes=1))
    statements.clear()

    assert run_db(lambda db: sla_clock.clock_pass(db, batch=2)) == 5
    claims = [s for s in statements if "JOIN sla_timers" in s]
    assert len(claims) == 3  # 2 + 2 + 1
    breached = session.exec(
        select(TicketEvent.ticket_id)
        .where(TicketEvent.action == EventAction.sla_breached)
        .order_by(col(TicketEvent.ticket_id))
    ).all()
    assert breached == overdue
    assert run_db(lambda db: sla_clock.clock_pass(db, batch=2)) == 0


def test_a_clock_pass_stops_between_batches_when_asked(
    run_db: RunDb, reporter: User, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db(lambda db: add_policy(db, resolution=60, warn_at_percent=None))
    make_tickets(run_db, reporter, 5, monkeypatch, ago=timedelta(hours=2))
    stop = asyncio.Event()
    handled: list[int] = []

    def after_batch(write: Any) -> None:
        handled.append(write.ticket.id)
        stop.set()  # SIGTERM arrives during the first batch

    unregister = ticket_writes.register(after=after_batch)
    try:
        assert run_db(lambda db: sla_clock.clock_pass(db, batch=2, stop=stop)) == 2
    finally:
        unregister()
    assert len(handled) == 2
    due = session.exec(
        select(func.count()).select_from(SlaTimer).where(col(SlaTimer.next_check_at).is_not(None))
    ).one()
    assert due == 3  # left for the next pass


def test_a_recompute_job_goes_by_batches_and_is_deleted_at_the_end(
    run_db: RunDb, reporter: User, session: Session, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db(lambda db: add_policy(db, resolution=600, warn_at_percent=None))
    ids = make_tickets(run_db, reporter, 5, monkeypatch, ago=timedelta(minutes=10))
    session.add(SlaRecompute(reason="calendar changed"))
    session.commit()
    statements.clear()

    assert run_db(lambda db: sla_clock.recompute_pass(db, batch=2)) == 5
    progress = [s for s in statements if s.startswith("UPDATE sla_recompute")]
    deleted = [s for s in statements if s.startswith("DELETE FROM sla_recompute")]
    assert (len(progress), len(deleted)) == (2, 1)  # after 2, after 4, then done
    assert session.exec(select(func.count()).select_from(SlaRecompute)).one() == 0
    versions = session.exec(select(Ticket.version).where(col(Ticket.id).in_(ids))).all()
    assert versions and set(versions) == {1}  # nothing changed: no recompute event, no new version


def test_a_batch_is_read_and_written_in_a_few_statements_whatever_its_size(
    run_db: RunDb, reporter: User, session: Session, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db(lambda db: add_policy(db, first_response=30, resolution=60))
    ids = make_tickets(run_db, reporter, 8, monkeypatch, ago=timedelta(hours=2))
    statements.clear()

    assert run_db(lambda db: sla_clock.clock_pass(db, batch=50)) == 8
    # the probe, the claim, the policies, the timers, the histories, the webhook endpoints (once),
    # then one flush (tickets, timers, events) in a savepoint: not a round of reads and writes per
    # ticket. (The events' INSERT is one
    # statement on PostgreSQL, one per row on SQLite, where SQLAlchemy does not batch it.)
    shown = "\n".join(s[:90] for s in statements)
    assert len([s for s in statements if not s.startswith("INSERT")]) <= 10, shown
    assert len([s for s in statements if s.startswith("SELECT")]) == 6, shown
    events = session.exec(
        select(TicketEvent.ticket_id, TicketEvent.action).where(col(TicketEvent.actor_id).is_(None))
    ).all()
    assert len(events) == 8 * 4 and {tid for tid, _ in events} == set(ids)
