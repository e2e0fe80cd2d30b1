"""The outbox delivery job (app.crud.delivery) against a real SMTP server (aiosmtpd, in-process):
what is sent, and every way it can go wrong (server stopped, refusing, slow; a malformed address; a
template error), on both databases. Each test's rows live in its rolled-back transaction."""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app import crud, mail
from app.core.config import Settings, get_settings
from app.crud import common, delivery, mail_context
from app.crud.delivery import BACKOFF, Outcome, PassResult
from app.models import Notification, NotificationState, Role, User
from tests.conftest import MakeUser, RunDb
from tests.smtp import SmtpServer, invitation, smtp_server

S = NotificationState


def settings_for(server: SmtpServer | None, **extra: Any) -> Settings:
    """Settings pointing at `server` (None: no SMTP server configured)."""
    values: dict[str, Any] = (
        server.env() if server is not None else {"SMTP_HOST": None, "EMAILS_FROM_EMAIL": None}
    )
    values.update(extra)
    return Settings(**values)


def deliver(run_db: RunDb, settings: Settings, batch: int = 200) -> PassResult:
    result: PassResult = run_db(lambda db: delivery.delivery_pass(db, batch=batch, settings=settings))
    return result


def reload(session: Session, *rows: Notification) -> list[Notification]:
    ids = [row.id for row in rows]
    found = {
        row.id: row for row in session.exec(select(Notification).where(col(Notification.id).in_(ids))).all()
    }
    return [found[row_id] for row_id in ids]


def queue(session: Session, *users: User) -> list[Notification]:
    rows = [invitation(session, user) for user in users]
    session.commit()
    return rows


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A running SMTP server that accepts everything (tell its `recorder` to misbehave)."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], datetime]:
    """Move app.crud.common.utcnow to a duration after the time of the first move; returns the new
    time."""
    start: list[datetime] = []

    def move(by: timedelta) -> datetime:
        if not start:
            start.append(common.utcnow())
        moved = start[0] + by
        monkeypatch.setattr(common, "utcnow", lambda: moved)
        return moved

    return move


# --- Sent -----------------------------------------------------------------------------------------


def test_each_row_is_sent_once_with_its_message_id(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    agent = make_user(Role.agent, email="alex.agent@example.com")
    reporter = make_user(Role.reporter, email="riley@example.com")
    rows = queue(session, agent, reporter, agent)

    result = deliver(run_db, settings_for(smtp))

    assert result.counts == {("email", Outcome.sent): 3}
    by_id = smtp.recorder.by_message_id()
    assert set(by_id) == {row.message_id for row in rows}
    for row in rows:
        (received,) = by_id[row.message_id]
        to = agent.email if row.recipient_id == agent.id else reporter.email
        assert received.rcpt_tos == [to]
        assert received.mail_from == "desk@example.com"
        assert received.message["To"] == to
        assert received.message["From"] == "Incident Desk <desk@example.com>"
        assert received.message["Subject"] == "[Incident Desk] Your Incident Desk account: choose a password"
        assert received.message.get_content_type() == "multipart/alternative"
        parts = received.parts()
        assert set(parts) == {"text/plain", "text/html"}
        link = f"{get_settings().FRONTEND_HOST}/reset-password?token="
        assert link in parts["text/plain"] and link in parts["text/html"]  # derived when sent
    for row in reload(session, *rows):
        assert (row.state, row.attempts, row.last_error) == (S.sent, 1, None)
        assert row.sent_at is not None
    assert smtp.recorder.sessions == 1  # one connection for the batch

    assert deliver(run_db, settings_for(smtp)).handled == 0  # nothing is sent twice
    assert len(smtp.received) == 3


def test_the_batches_share_the_work_and_leave_nothing_behind(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    users = [make_user(Role.agent) for _ in range(7)]
    rows = queue(session, *users)
    result = deliver(run_db, settings_for(smtp), batch=3)
    assert result.counts == {("email", Outcome.sent): 7}
    assert sorted(smtp.recorder.by_message_id()) == sorted(row.message_id for row in rows)
    assert {row.state for row in reload(session, *rows)} == {S.sent}


def test_without_an_smtp_server_rows_are_skipped_and_nothing_is_sent(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    rows = queue(session, make_user(Role.agent), make_user(Role.reporter))
    result = deliver(run_db, settings_for(None))
    assert result.counts == {("email", Outcome.skipped): 2}
    for row in reload(session, *rows):
        assert (row.state, row.last_error, row.sent_at) == (S.skipped, "no SMTP server configured", None)
    assert smtp.received == []
    # A host without a sender address is no configured server either.
    assert delivery.SmtpSettings.from_settings(settings_for(smtp, EMAILS_FROM_EMAIL=None)) is None


def test_a_row_the_recipient_may_no_longer_get_is_skipped_with_the_reason(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    gone = make_user(Role.agent, is_active=False)
    here = make_user(Role.agent)
    skipped, sent = queue(session, gone, here)
    result = deliver(run_db, settings_for(smtp))
    assert result.counts == {("email", Outcome.skipped): 1, ("email", Outcome.sent): 1}
    skipped, sent = reload(session, skipped, sent)
    assert skipped.state == S.skipped and skipped.last_error  # app.crud.mail_context's reason
    assert sent.state == S.sent
    assert [item.message_id for item in smtp.received] == [sent.message_id]


# --- Failures -------------------------------------------------------------------------------------


def test_a_stopped_server_fails_the_batch_retries_with_backoff_then_dead(
    smtp: SmtpServer,
    session: Session,
    run_db: RunDb,
    make_user: MakeUser,
    clock: Callable[[timedelta], datetime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(smtp, NOTIFY_MAX_ATTEMPTS=3)
    rows = queue(session, make_user(Role.agent), make_user(Role.reporter))
    smtp.stop()  # connection refused

    now = clock(timedelta(0))
    with caplog.at_level(logging.WARNING, logger="app.delivery"):
        result = deliver(run_db, settings)
    assert result.counts == {("email", Outcome.failed): 2}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "app.delivery"]  # one line, two rows
    assert line.startswith(
        f"2 notification(s) failed ({rows[0].id}, {rows[1].id}): SMTP {smtp.host}:{smtp.port}: "
    )
    for row in reload(session, *rows):
        assert (row.state, row.attempts) == (S.pending, 1)
        assert row.last_error is not None and "refused" in row.last_error.lower(), row.last_error
        assert f"{smtp.host}:{smtp.port}" in row.last_error
        wait = (row.next_attempt_at - now).total_seconds()
        assert BACKOFF.base(1) * 0.8 <= wait <= BACKOFF.base(1) * 1.2  # 30 s +-20 %

    assert deliver(run_db, settings).handled == 0  # not due before its backoff
    clock(timedelta(minutes=1))
    assert deliver(run_db, settings).counts == {("email", Outcome.failed): 2}
    clock(timedelta(minutes=5))
    assert deliver(run_db, settings).counts == {("email", Outcome.dead): 2}
    for row in reload(session, *rows):
        assert (row.state, row.attempts, row.sent_at) == (S.dead, 3, None)
        assert row.last_error is not None and "refused" in row.last_error.lower()
    clock(timedelta(days=1))
    assert deliver(run_db, settings).handled == 0  # dead stays dead
    assert smtp.received == []


@pytest.mark.parametrize("reply", ["550 5.1.1 No such user here", "451 4.3.0 Try again later"])
def test_a_refused_recipient_fails_that_row_and_the_others_go(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser, reply: str
) -> None:
    refused = make_user(Role.agent, email="refused@example.com")
    first, middle, last = queue(session, make_user(Role.agent), refused, make_user(Role.reporter))
    smtp.recorder.refuse_rcpt["refused@example.com"] = reply

    result = deliver(run_db, settings_for(smtp))

    assert result.counts == {("email", Outcome.sent): 2, ("email", Outcome.failed): 1}
    first, middle, last = reload(session, first, middle, last)
    assert (first.state, last.state) == (S.sent, S.sent)
    assert (middle.state, middle.attempts) == (S.pending, 1)
    assert middle.last_error == f"recipient refused: {reply}"
    assert sorted(item.message_id for item in smtp.received) == sorted([first.message_id, last.message_id])
    assert smtp.recorder.sessions == 1  # the same connection carried on


def test_a_refused_message_is_retried(
    smtp: SmtpServer,
    session: Session,
    run_db: RunDb,
    make_user: MakeUser,
    clock: Callable[[timedelta], datetime],
) -> None:
    (row,) = queue(session, make_user(Role.agent))
    smtp.recorder.data_reply = "554 5.6.0 Message rejected"
    assert deliver(run_db, settings_for(smtp)).counts == {("email", Outcome.failed): 1}
    (row,) = reload(session, row)
    assert (row.state, row.last_error) == (S.pending, "message refused: 554 5.6.0 Message rejected")

    smtp.recorder.data_reply = None
    clock(timedelta(minutes=1))
    assert deliver(run_db, settings_for(smtp)).counts == {("email", Outcome.sent): 1}
    (row,) = reload(session, row)
    assert (row.state, row.attempts, row.last_error) == (S.sent, 2, None)
    assert [item.message_id for item in smtp.received] == [row.message_id]  # the same Message-ID


def test_a_slow_server_fails_the_attempt_within_the_timeout(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    rows = queue(session, make_user(Role.agent), make_user(Role.agent))
    smtp.recorder.data_delay = 5
    started = time.monotonic()
    result = deliver(run_db, settings_for(smtp, SMTP_TIMEOUT_SECONDS=0.5))
    elapsed = time.monotonic() - started
    # The first message times out on DATA; the connection is then unusable: the second fails with it.
    assert result.counts == {("email", Outcome.failed): 2}
    assert elapsed < smtp.recorder.data_delay  # bounded by the timeout, not by the server
    for row in reload(session, *rows):
        assert row.state == S.pending and row.last_error is not None
        assert "timed out" in row.last_error, row.last_error


def test_a_malformed_address_fails_that_row_and_the_others_go(
    smtp: SmtpServer,
    session: Session,
    run_db: RunDb,
    make_user: MakeUser,
    clock: Callable[[timedelta], datetime],
) -> None:
    bad = make_user(Role.agent)
    bad.email = "not an address@example.com"  # written past the API's validation
    session.add(bad)
    session.commit()
    good, broken = queue(session, make_user(Role.reporter), bad)
    settings = settings_for(smtp, NOTIFY_MAX_ATTEMPTS=2)

    assert deliver(run_db, settings).counts == {("email", Outcome.sent): 1, ("email", Outcome.failed): 1}
    good, broken = reload(session, good, broken)
    assert good.state == S.sent
    assert broken.state == S.pending
    assert broken.last_error is not None and "malformed recipient address" in broken.last_error
    clock(timedelta(minutes=2))
    assert deliver(run_db, settings).counts == {("email", Outcome.dead): 1}
    assert [item.message_id for item in smtp.received] == [good.message_id]


def test_a_template_error_fails_that_row_then_dead_and_a_requeue_sends_it(
    smtp: SmtpServer,
    session: Session,
    run_db: RunDb,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    clock: Callable[[timedelta], datetime],
) -> None:
    victim = make_user(Role.agent)
    other = make_user(Role.reporter)
    broken, fine = queue(session, victim, other)
    real_render, real_context = mail.render, mail_context.context_for
    current: list[Notification] = []

    async def context_for(db_session: Any, row: Notification, recipient: User) -> Any:
        current[:] = [row]  # the job renders each row right after reading its context
        return await real_context(db_session, row, recipient)

    def broken_for_victim(kind: Any, context: Any) -> Any:
        if current[0].recipient_id == victim.id:
            raise KeyError("undefined variable in the template")
        return real_render(kind, context)

    monkeypatch.setattr(mail_context, "context_for", context_for)
    monkeypatch.setattr(mail, "render", broken_for_victim)
    settings = settings_for(smtp, NOTIFY_MAX_ATTEMPTS=2)
    assert deliver(run_db, settings).counts == {("email", Outcome.sent): 1, ("email", Outcome.failed): 1}
    broken, fine = reload(session, broken, fine)
    assert fine.state == S.sent
    assert (broken.state, broken.attempts) == (S.pending, 1)
    assert broken.last_error == "cannot build the message: KeyError: 'undefined variable in the template'"

    clock(timedelta(minutes=2))
    assert deliver(run_db, settings).counts == {("email", Outcome.dead): 1}
    (broken,) = reload(session, broken)
    assert (broken.state, broken.attempts) == (S.dead, 2)

    # The template is fixed; an admin queues it again (app.crud.notifications_admin).
    monkeypatch.setattr(mail, "render", real_render)
    requeued = run_db(lambda db: crud.requeue_notification(db=db, notification_id=broken.id))
    assert (requeued.state, requeued.attempts) == (S.pending, 0)
    assert deliver(run_db, settings).counts == {("email", Outcome.sent): 1}
    (broken,) = reload(session, broken)
    assert (broken.state, broken.attempts, broken.last_error) == (S.sent, 1, None)
    assert sorted(item.message_id for item in smtp.received) == sorted([fine.message_id, broken.message_id])


# --- The lease ------------------------------------------------------------------------------------


def test_a_claimed_row_is_leased_until_the_lease_ends(
    session: Session, run_db: RunDb, make_user: MakeUser, clock: Callable[[timedelta], datetime]
) -> None:
    (row,) = queue(session, make_user(Role.agent))
    lease = timedelta(seconds=300)
    now = clock(timedelta(0))
    (claimed,) = run_db(lambda db: delivery.claim(db, now=now, batch=10, lease=lease))
    assert (claimed.id, claimed.attempts, claimed.next_attempt_at) == (row.id, 1, now + lease)
    (stored,) = reload(session, row)
    assert (stored.state, stored.attempts, stored.next_attempt_at) == (S.pending, 1, now + lease)

    # Another worker (or this one) finds nothing due while the lease runs...
    assert (
        run_db(lambda db: delivery.claim(db, now=now + lease - timedelta(seconds=1), batch=10, lease=lease))
        == []
    )
    # ... and takes it again when the lease has ended (the first worker died mid-send).
    (again,) = run_db(lambda db: delivery.claim(db, now=now + lease, batch=10, lease=lease))
    assert (again.id, again.attempts) == (row.id, 2)


def test_a_mark_from_a_worker_whose_lease_ended_changes_nothing(
    smtp: SmtpServer, session: Session, run_db: RunDb, make_user: MakeUser
) -> None:
    (row,) = queue(session, make_user(Role.agent))
    lease = timedelta(seconds=300)
    now = common.utcnow()
    run_db(lambda db: delivery.claim(db, now=now, batch=10, lease=lease))  # the first worker, gone
    run_db(lambda db: delivery.claim(db, now=now + lease, batch=10, lease=lease))  # the next one
    stale = delivery._done(row.model_copy(update={"attempts": 1}), Outcome.skipped, now, "stale")
    run_db(lambda db: delivery._mark(db, [stale], PassResult()))
    (stored,) = reload(session, row)
    assert (stored.state, stored.attempts, stored.last_error) == (S.pending, 2, None)
