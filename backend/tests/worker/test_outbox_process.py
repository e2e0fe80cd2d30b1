"""The outbox delivered by the real `worker` process (subprocesses against a throw-away migrated
database, a real SMTP server in-process): killed with SIGKILL mid-send nothing is lost (the row is
sent again when its lease ends, with the same Message-ID); SIGTERM finishes the message in hand and
exits 0; several workers on PostgreSQL send each of 1,000 messages exactly once."""

import signal
import threading
from collections import Counter
from datetime import datetime

import pytest

from app.core.clock import utcnow
from tests.databases import is_postgres
from tests.smtp import Recorder, smtp_server, users_with_invitations
from tests.worker.conftest import Running, rows


def outbox(url: str) -> dict[int, tuple[str, int, datetime]]:
    """id -> (state, attempts, next_attempt_at) of every row."""
    found = rows(url, "SELECT id, state, attempts, next_attempt_at FROM notifications ORDER BY id")
    return {row[0]: (row[1], row[2], row[3]) for row in found}


def as_utc(value: object) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def test_a_worker_killed_mid_send_loses_nothing(migrated: str) -> None:
    queued = users_with_invitations(migrated, 2)
    message_ids = {message_id for _, message_id in queued}
    held = Recorder(hold_data=5)  # DATA is answered when the test says so
    with smtp_server(held) as server:
        # A short lease (the test waits for it): more than 12 x the SMTP timeout.
        env = server.env(SMTP_TIMEOUT_SECONDS="1", NOTIFY_LEASE_SECONDS="14")
        first = Running(migrated, "--interval", "0.2", **env)
        try:
            assert held.data_started.wait(30), first.log
            first.process.send_signal(signal.SIGKILL)  # mid-send: the server has the data, no answer yet
            first.process.wait(10)
        finally:
            first.kill()
            held.release.set()
        # Both rows are still pending, leased by the dead worker: nobody sends them before the lease ends.
        leased = outbox(migrated)
        assert {state for state, _, _ in leased.values()} == {"pending"}
        assert {attempts for _, attempts, _ in leased.values()} == {1}
        assert all(as_utc(due) > utcnow() for _, _, due in leased.values())

        held.hold_data = 0
        second = Running(migrated, "--interval", "0.2", **env)
        try:
            second.wait_for("worker job notifications handled 2", timeout=60)
            assert second.stop(signal.SIGTERM) == 0
        finally:
            second.kill()
    after = outbox(migrated)
    assert {(state, attempts) for state, attempts, _ in after.values()} == {("sent", 2)}
    received = Counter(item.message_id for item in server.received)
    assert set(received) == message_ids  # nothing lost; a message the dead worker had in hand may
    assert set(received.values()) <= {1, 2}  # have arrived twice, recognisably: the same Message-ID


def test_sigterm_finishes_the_message_in_hand_and_exits_0(migrated: str) -> None:
    queued = users_with_invitations(migrated, 3)
    held = Recorder(hold_data=20)
    with smtp_server(held) as server:
        worker = Running(migrated, "--interval", "0.2", **server.env())
        try:
            assert held.data_started.wait(30), worker.log
            threading.Timer(0.5, held.release.set).start()  # the message completes after the signal
            assert worker.stop(signal.SIGTERM, timeout=20) == 0
        finally:
            worker.kill()
            held.release.set()
    assert "worker stopped" in worker.lines[-1], worker.log
    assert "Traceback" not in worker.log
    (received,) = server.received  # the one in hand, and no other
    after = outbox(migrated)
    in_hand = next(row_id for row_id, message_id in queued if message_id == received.message_id)
    assert after.pop(in_hand)[:2] == ("sent", 1)
    # The rest of the batch was given back: pending, the attempt not counted, due at once.
    assert {(state, attempts) for state, attempts, _ in after.values()} == {("pending", 0)}
    assert all(as_utc(due) <= utcnow() for _, _, due in after.values())


def test_several_workers_send_each_message_exactly_once(migrated: str) -> None:
    if not is_postgres(migrated):
        pytest.skip("SQLite serializes writers: one worker there (USAGE.md); replicas are for PostgreSQL")
    queued = users_with_invitations(migrated, 1000)
    # Each message takes the server a few ms, so that the workers overlap rather than one of them
    # draining the outbox before the others have started.
    with smtp_server(Recorder(data_delay=0.003)) as server:
        workers = [Running(migrated, "--once", WORKER_BATCH_SIZE="25", **server.env()) for _ in range(3)]
        codes = [worker.finish(timeout=300) for worker in workers]
        logs = [worker.log for worker in workers]
    assert codes == [0, 0, 0], logs
    received = Counter(item.message_id for item in server.received)
    assert len(server.received) == 1000
    assert set(received.values()) == {1}  # never twice
    assert set(received) == {message_id for _, message_id in queued}  # every one
    assert {(state, attempts) for state, attempts, _ in outbox(migrated).values()} == {("sent", 1)}
    handled = [
        int(line.rsplit("handled ", 1)[1].split()[0])
        for log in logs
        for line in log.splitlines()
        if "notifications handled" in line
    ]
    assert sum(handled) == 1000, logs  # (how it was shared depends on when each process got going)
