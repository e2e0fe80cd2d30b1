"""The worker as a long-running process: it stops cleanly on SIGTERM and SIGINT, survives a database
outage, and several workers (replicas, PostgreSQL) never record the same event twice."""

import signal
from collections import Counter
from datetime import timedelta

import pytest

from app.core.clock import utcnow
from tests.databases import is_postgres
from tests.worker.conftest import (
    Running,
    add_policy,
    create_tickets,
    rows,
    run,
)

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/nowhere"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_worker_stops_cleanly_on_a_signal(migrated: str, signum: int) -> None:
    worker = Running(migrated, "--interval", "0.1")
    try:
        worker.wait_for("worker started")
        assert worker.process.poll() is None  # it keeps running between passes
        assert worker.stop(signum) == 0
    finally:
        worker.kill()
    assert "worker stopped" in worker.lines[-1], worker.log
    assert "Traceback" not in worker.log and "failed" not in worker.log


def test_a_database_outage_does_not_stop_the_loop() -> None:
    worker = Running(UNREACHABLE, "--interval", "0.1")
    try:
        worker.wait_for("worker started")
        worker.wait_for("worker job sla_clock failed", times=3)  # logged, and tried again each pass
        assert worker.process.poll() is None
        assert worker.stop(signal.SIGTERM) == 0
    finally:
        worker.kill()
    assert "worker stopped" in worker.lines[-1], worker.log
    assert "Traceback" not in worker.log


def test_several_workers_never_record_an_event_twice(migrated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not is_postgres(migrated):
        pytest.skip("SQLite serializes writers: one worker there (USAGE.md); replicas are for PostgreSQL")
    run(migrated, lambda db: add_policy(db, first_response=30, resolution=60))
    ids = create_tickets(migrated, 300, at=utcnow() - timedelta(hours=2), monkeypatch=monkeypatch)
    versions = dict(rows(migrated, "SELECT id, version FROM tickets"))

    workers = [Running(migrated, "--once", WORKER_BATCH_SIZE="10") for _ in range(3)]
    codes = [worker.finish(timeout=180) for worker in workers]
    logs = [worker.log for worker in workers]
    assert codes == [0, 0, 0], logs

    events = rows(
        migrated,
        "SELECT ticket_id, action, field FROM ticket_events WHERE action IN ('sla_warning', 'sla_breached')",
    )
    counted = Counter(events)
    assert set(counted.values()) == {1}  # never twice
    for action in ("sla_warning", "sla_breached"):
        for field in ("first_response", "resolution"):
            assert {tid for tid, a, f in counted if (a, f) == (action, field)} == set(ids)  # every one
    after = dict(rows(migrated, "SELECT id, version FROM tickets"))
    assert {tid: after[tid] - versions[tid] for tid in ids} == dict.fromkeys(ids, 1)
    assert rows(migrated, "SELECT DISTINCT sla_state FROM tickets") == [("breached",)]
    handled = [
        int(line.rsplit("handled ", 1)[1].split()[0])
        for log in logs
        for line in log.splitlines()
        if "sla_clock handled" in line
    ]
    assert sum(handled) == 300, logs
