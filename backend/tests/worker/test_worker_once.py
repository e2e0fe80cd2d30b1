"""`worker --once`: one pass over everything due (cron, tests), on both databases."""

from datetime import UTC, datetime, timedelta

import pytest

from app import worker
from app.core.clock import utcnow
from app.models import EventAction
from tests.worker.conftest import (
    add_policy,
    create_tickets,
    execute,
    rows,
    run,
    run_worker,
    sla_events,
)

A = EventAction


def ticket_rows(url: str) -> dict[int, tuple[object, ...]]:
    found = rows(url, "SELECT id, version, sla_state, sla_due_at FROM tickets ORDER BY id")
    return {row[0]: row[1:] for row in found}


def test_a_passed_due_time_is_recorded_once_by_the_system(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(migrated, lambda db: add_policy(db, first_response=30, resolution=60))
    now = utcnow()
    overdue = create_tickets(migrated, 2, at=now - timedelta(hours=2), monkeypatch=monkeypatch)
    (fresh,) = create_tickets(migrated, 1, at=now - timedelta(minutes=5), monkeypatch=monkeypatch)
    before = ticket_rows(migrated)
    attached = sla_events(migrated)
    assert {(action, field) for _, action, field, _ in attached} == {
        (A.sla_attached, "first_response"),
        (A.sla_attached, "resolution"),
    }
    assert {row[1] for row in before.values()} == {"running"}

    result = run_worker(migrated, "--once")
    assert result.returncode == 0, result.stderr
    assert "worker job sla_clock handled 2" in result.stderr
    assert "Traceback" not in result.stderr

    new = sla_events(migrated)[len(attached) :]
    for ticket_id in overdue:
        recorded = [(action, field, actor) for tid, action, field, actor in new if tid == ticket_id]
        # each warning before its breach, once each, by no one (the system)
        assert recorded == [
            (A.sla_warning, "first_response", None),
            (A.sla_breached, "first_response", None),
            (A.sla_warning, "resolution", None),
            (A.sla_breached, "resolution", None),
        ]
    assert not [event for event in new if event[0] == fresh]
    after = ticket_rows(migrated)
    for ticket_id in overdue:
        assert after[ticket_id][0] == before[ticket_id][0] + 1  # one new version for the whole pass
        assert after[ticket_id][1] == "breached"
    assert after[fresh] == before[fresh]
    timers = rows(
        migrated,
        "SELECT ticket_id, kind, state, next_check_at, breached_at FROM sla_timers ORDER BY ticket_id, kind",
    )
    for ticket_id, _kind, state, next_check_at, breached_at in timers:
        if ticket_id in overdue:
            assert (state, next_check_at) == ("breached", None) and breached_at is not None
        else:
            assert (state, breached_at) == ("running", None) and next_check_at is not None

    again = run_worker(migrated, "--once")
    assert again.returncode == 0, again.stderr
    assert "handled" not in again.stderr  # nothing was due
    assert sla_events(migrated) == attached + new
    assert ticket_rows(migrated) == after


def test_the_warning_alone_when_only_the_warning_point_passed(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(migrated, lambda db: add_policy(db, resolution=60, warn_at_percent=50))
    (ticket_id,) = create_tickets(migrated, 1, at=utcnow() - timedelta(minutes=40), monkeypatch=monkeypatch)
    version = ticket_rows(migrated)[ticket_id][0]
    attached = sla_events(migrated)

    assert run_worker(migrated, "--once").returncode == 0
    assert sla_events(migrated)[len(attached) :] == [(ticket_id, A.sla_warning, "resolution", None)]
    assert ticket_rows(migrated)[ticket_id][:2] == (version + 1, "at_risk")


def test_a_queued_recompute_moves_the_running_timers_in_batches(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_id = run(migrated, lambda db: add_policy(db, resolution=600, warn_at_percent=None))
    created = utcnow() - timedelta(minutes=10)
    ids = create_tickets(migrated, 5, at=created, monkeypatch=monkeypatch)
    execute(migrated, "UPDATE tickets SET status = 'resolved' WHERE id = :id", id=ids[2])  # not running
    running = [ticket_id for ticket_id in ids if ticket_id != ids[2]]
    before = ticket_rows(migrated)
    # The policy changes (the admin API queues the job in the same transaction).
    execute(migrated, "UPDATE sla_policies SET resolution_minutes = 120 WHERE id = :id", id=policy_id)
    execute(
        migrated,
        "INSERT INTO sla_recompute (reason, after_ticket_id, created_at) VALUES ('policy', 0, :at)",
        at=utcnow(),
    )

    result = run_worker(migrated, "--once", WORKER_BATCH_SIZE="2")
    assert result.returncode == 0, result.stderr
    assert "worker job sla_recompute handled 4" in result.stderr

    assert rows(migrated, "SELECT count(*) FROM sla_recompute") == [(0,)]  # the job is done and gone
    recomputed = [(tid, f) for tid, a, f, actor in sla_events(migrated) if a == A.sla_recomputed]
    assert recomputed == [(ticket_id, "resolution") for ticket_id in running]
    after = ticket_rows(migrated)
    due = {
        tid: due_at for tid, _kind, due_at in rows(migrated, "SELECT ticket_id, kind, due_at FROM sla_timers")
    }
    for ticket_id in running:
        assert after[ticket_id][0] == before[ticket_id][0] + 1
        # due from the ticket's creation, on the 24x7 calendar: created + 120 minutes
        assert abs((as_utc(due[ticket_id]) - (created + timedelta(minutes=120))).total_seconds()) < 1
    assert after[ids[2]] == before[ids[2]]  # the resolved ticket is left alone
    assert abs((as_utc(due[ids[2]]) - (created + timedelta(minutes=600))).total_seconds()) < 1

    assert "handled" not in run_worker(migrated, "--once", WORKER_BATCH_SIZE="2").stderr


def as_utc(value: object) -> datetime:
    """A timestamp read back with plain SQL: PostgreSQL gives an aware datetime, SQLite a string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_once_against_an_unreachable_database_fails_with_one_line_per_job() -> None:
    result = run_worker("postgresql://postgres@127.0.0.1:9/nowhere", "--once", DB_CONNECT_TIMEOUT_SECONDS="2")
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if "failed" in line]
    assert len(failed) == len(worker.JOBS), result.stderr
    assert [name in line for name, line in zip(worker.JOBS, failed, strict=True)] == [True] * len(worker.JOBS)
    assert "Traceback" not in result.stderr
