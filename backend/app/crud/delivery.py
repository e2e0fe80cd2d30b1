"""The worker's `notifications` job: deliver the outbox (app.crud.outbox writes it).

A pass works in batches of WORKER_BATCH_SIZE rows, each batch in four steps:

1. Claim, in a short transaction (one statement): the due rows (pending, next_attempt_at <= now),
   earliest first, `FOR UPDATE SKIP LOCKED` on PostgreSQL (rows another worker is claiming are
   passed over), and LEASE them: attempts + 1 and next_attempt_at = now + NOTIFY_LEASE_SECONDS;
   commit. A leased row
   is still `pending` but not due, so no other worker takes it until the lease ends.
2. Prepare, with reads only: each row's recipient (one query for the batch) and what the message
   shows (app.crud.mail_context.context_for, read now, at send time: a `Skip` is kept as such), the
   message rendered (app.mail); an error here fails that row only.
3. Send, outside any transaction: one SMTP connection for the batch (app.core.smtp), opened at the
   first message, each step in a thread. A message the server refuses (or a malformed address)
   fails alone; a connection that fails fails the rest of the batch. No message starts unless it
   can end inside the lease (SMTP_EXCHANGES_PER_SEND x SMTP_TIMEOUT_SECONDS before its end).
4. Mark, in short transactions (every MARK_EVERY outcomes, and at the end): `sent` (sent_at),
   `failed` (still pending: next_attempt_at = now + backoff(attempts), last_error), `dead` after
   NOTIFY_MAX_ATTEMPTS, `skipped` (last_error says why). A mark applies only while the row is still
   pending with the attempt count this worker leased it with: a worker whose lease ran out never
   overwrites the next one's outcome.

Delivery is at-least-once: a worker killed (SIGKILL) between a send and its mark leaves the row
pending under its lease, and it is sent again, with the same Message-ID, when the lease ends.
SIGTERM (`stop`) lets the message in hand finish, marks what was done, and gives the rest of the
batch back at once (attempts - 1, due now), so nothing waits for a lease.

With no SMTP server configured (no SMTP_HOST or no EMAILS_FROM_EMAIL) rows are marked `skipped`
("no SMTP server configured") and nothing is sent. With nothing due, a pass is one read on the
index of (state, next_attempt_at).
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import col, select

from app import mail
from app.core.config import SMTP_EXCHANGES_PER_SEND, Settings, get_settings
from app.core.database import Database
from app.core.smtp import ConnectionFailed, MessageRefused, SmtpConnection, SmtpSettings, well_formed
from app.crud import common, mail_context
from app.models import Notification, NotificationState, User

logger = logging.getLogger("app.delivery")

NO_SMTP = "no SMTP server configured"
NO_RECIPIENT = "the recipient no longer exists"
ERROR_MAX = 1000  # Notification.last_error
MARK_EVERY = 50  # outcomes marked per transaction while a batch is being sent


# --- The retry schedule --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """How long a failed notification waits before its next attempt: `first` seconds after the first
    failure, `factor` times longer after each further one, at most `cap`; each wait is then spread
    by +-`jitter` (a fraction), so rows that failed together (an SMTP outage) do not all come back
    in the same second."""

    first: float = 30
    factor: float = 2
    cap: float = 3600
    jitter: float = 0.2

    def base(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt, before jitter."""
        return float(min(self.cap, self.first * self.factor ** max(0, attempts - 1)))

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        spread = rng.uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=self.base(attempts) * spread)


# 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, 1 h, 1 h, ... each +-20 %. With the default
# NOTIFY_MAX_ATTEMPTS (8), a notification that never goes through is dead about 63 minutes after
# its first attempt.
BACKOFF = Backoff()
_rng = random.Random()


# --- Outcomes ------------------------------------------------------------------------------------


class Outcome(StrEnum):
    sent = "sent"
    failed = "failed"  # still pending: tried again after the backoff
    dead = "dead"
    skipped = "skipped"


@dataclass
class PassResult:
    """What a pass did: rows by (channel, outcome), for the worker's counters and its log."""

    counts: Counter[tuple[str, Outcome]] = field(default_factory=Counter)

    @property
    def handled(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Mark:
    row_id: int
    attempts: int  # the count this worker leased the row with
    channel: str
    outcome: Outcome
    error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None


def _error_text(error: str) -> str:
    lines = error.strip().splitlines()
    return (lines[0] if lines else "error")[:ERROR_MAX]


def _failure(row: Notification, error: str, now: datetime, max_attempts: int) -> _Mark:
    """A failed attempt: tried again after the backoff, or dead after the last attempt."""
    assert row.id is not None
    text = _error_text(error)
    if row.attempts >= max_attempts:
        return _Mark(row.id, row.attempts, row.channel, Outcome.dead, text, next_attempt_at=now)
    when = now + BACKOFF.delay(row.attempts, _rng)
    return _Mark(row.id, row.attempts, row.channel, Outcome.failed, text, next_attempt_at=when)


def _done(row: Notification, outcome: Outcome, now: datetime, error: str | None = None) -> _Mark:
    assert row.id is not None
    sent_at = now if outcome is Outcome.sent else None
    text = _error_text(error) if error else None
    return _Mark(row.id, row.attempts, row.channel, outcome, text, next_attempt_at=now, sent_at=sent_at)


# The state each outcome leaves the row in.
OUTCOME_STATE: dict[Outcome, NotificationState] = {
    Outcome.sent: NotificationState.sent,
    Outcome.failed: NotificationState.pending,
    Outcome.dead: NotificationState.dead,
    Outcome.skipped: NotificationState.skipped,
}

_table: Any = Notification.__table__  # type: ignore[attr-defined]
_MARK = (
    update(_table)
    .where(
        _table.c.id == bindparam("b_id"),
        _table.c.attempts == bindparam("b_attempts"),
        _table.c.state == NotificationState.pending.value,
    )
    .values(
        state=bindparam("b_state"),
        next_attempt_at=bindparam("b_next"),
        last_error=bindparam("b_error"),
        sent_at=bindparam("b_sent"),
    )
)
_RELEASE = (
    update(_table)
    .where(
        _table.c.id == bindparam("b_id"),
        _table.c.attempts == bindparam("b_attempts"),
        _table.c.state == NotificationState.pending.value,
    )
    .values(attempts=_table.c.attempts - 1, next_attempt_at=bindparam("b_next"))
)


async def _mark(db: Database, marks: Sequence[_Mark], result: PassResult) -> None:
    """Record outcomes in one transaction (only rows still under this worker's lease)."""
    if not marks:
        return
    params = [
        {
            "b_id": mark.row_id,
            "b_attempts": mark.attempts,
            "b_state": OUTCOME_STATE[mark.outcome],
            "b_next": mark.next_attempt_at,
            "b_error": mark.error,
            "b_sent": mark.sent_at,
        }
        for mark in marks
    ]
    async with db.write() as session:
        await (await session.connection()).execute(_MARK, params)
    failures: dict[tuple[Outcome, str | None], list[int]] = {}
    for mark in marks:
        result.counts[(mark.channel, mark.outcome)] += 1
        if mark.outcome in (Outcome.failed, Outcome.dead):
            failures.setdefault((mark.outcome, mark.error), []).append(mark.row_id)
    for (outcome, error), ids in failures.items():  # one line per distinct error, not per row
        shown = ", ".join(map(str, ids[:5])) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        logger.warning("%d notification(s) %s (%s): %s", len(ids), outcome, shown, error)


async def _release(db: Database, rows: Sequence[Notification], now: datetime) -> None:
    """Give rows claimed but not attempted back (SIGTERM, the lease too short for one more send):
    due now, the attempt not counted."""
    if not rows:
        return
    params = [{"b_id": row.id, "b_attempts": row.attempts, "b_next": now} for row in rows]
    async with db.write() as session:
        await (await session.connection()).execute(_RELEASE, params)


# --- Claim and prepare ---------------------------------------------------------------------------


async def _anything_due(db: Database, at: datetime) -> bool:
    connection = await db.connection()
    found = (
        await connection.execute(
            select(Notification.id)
            .where(
                col(Notification.state) == NotificationState.pending, col(Notification.next_attempt_at) <= at
            )
            .limit(1)
        )
    ).first()
    await db.end_reads()
    return found is not None


async def claim(db: Database, *, now: datetime, batch: int, lease: timedelta) -> list[Notification]:
    """Lease up to `batch` due rows, earliest due first, passing over rows another worker is
    claiming (PostgreSQL): one UPDATE of the rows a `FOR UPDATE SKIP LOCKED` subquery picks,
    RETURNING them, committed before anything is sent. The rows (detached, in id order) carry their
    new attempt count."""
    due = (
        select(col(Notification.id))
        .where(col(Notification.state) == NotificationState.pending, col(Notification.next_attempt_at) <= now)
        .order_by(col(Notification.next_attempt_at), col(Notification.id))
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    lease_stmt = (
        update(_table)
        .where(_table.c.id.in_(due))
        .values(attempts=_table.c.attempts + 1, next_attempt_at=now + lease)
        .returning(*_table.c)
    )
    async with db.write() as session:
        found = (await (await session.connection()).execute(lease_stmt)).mappings().all()
    return sorted((Notification(**row) for row in found), key=lambda row: row.id or 0)


@dataclass
class _Prepared:
    row: Notification
    message: Message | None = None  # None: `mark` says what became of it
    mark: _Mark | None = None


async def _prepare(
    db: Database, rows: Sequence[Notification], settings: Settings, now: datetime
) -> list[_Prepared]:
    """Each row's message, or its outcome already (skipped, or a failure to build it)."""
    session = await db.reader()
    ids = {row.recipient_id for row in rows}
    users = {user.id: user for user in (await session.exec(select(User).where(col(User.id).in_(ids)))).all()}
    sender = str(settings.EMAILS_FROM_EMAIL)
    sender_name = settings.EMAILS_FROM_NAME or settings.PROJECT_NAME
    prepared = []
    for row in rows:
        recipient = users.get(row.recipient_id)
        if recipient is None:
            prepared.append(_Prepared(row, mark=_done(row, Outcome.skipped, now, NO_RECIPIENT)))
            continue
        try:
            context = await mail_context.context_for(session, row, recipient)
            if isinstance(context, mail_context.Skip):
                prepared.append(_Prepared(row, mark=_done(row, Outcome.skipped, now, context.reason)))
                continue
            if not well_formed(recipient.email):
                raise ValueError(f"malformed recipient address {recipient.email[:200]!r}")
            rendered = mail.render(row.kind, context)
            message = mail.message(
                rendered,
                to=recipient.email,
                sender=sender,
                sender_name=sender_name,
                message_id=row.message_id,
            )
        except Exception as exc:  # a template or context error fails this row, never the job
            error = f"cannot build the message: {type(exc).__name__}: {exc}"
            prepared.append(_Prepared(row, mark=_failure(row, error, now, settings.NOTIFY_MAX_ATTEMPTS)))
            continue
        prepared.append(_Prepared(row, message=message))
    await db.end_reads()
    return prepared


# --- The pass ------------------------------------------------------------------------------------


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def _deliver_batch(
    db: Database,
    rows: list[Notification],
    *,
    settings: Settings,
    smtp: SmtpSettings | None,
    leased_at: float,
    stop: asyncio.Event | None,
    result: PassResult,
) -> None:
    now = common.utcnow()
    if smtp is None:
        await _mark(db, [_done(row, Outcome.skipped, now, NO_SMTP) for row in rows], result)
        return
    prepared = await _prepare(db, rows, settings, now)
    marks = [item.mark for item in prepared if item.mark is not None]
    to_send = [item for item in prepared if item.message is not None]
    longest_send = SMTP_EXCHANGES_PER_SEND * smtp.timeout
    connection = SmtpConnection(smtp)
    connected = False
    broken: str | None = None  # the connection's failure: the rest of the batch fails with it
    unsent: list[Notification] = []
    try:
        for index, item in enumerate(to_send):
            out_of_lease = time.monotonic() - leased_at + longest_send > settings.NOTIFY_LEASE_SECONDS
            if _stopped(stop) or out_of_lease:
                unsent = [later.row for later in to_send[index:]]
                break
            assert item.message is not None
            now = common.utcnow()
            if broken is None:
                try:
                    if not connected:
                        await asyncio.to_thread(connection.open)
                        connected = True
                    await asyncio.to_thread(connection.send, item.message)
                    marks.append(_done(item.row, Outcome.sent, common.utcnow()))
                except MessageRefused as exc:
                    marks.append(_failure(item.row, str(exc), now, settings.NOTIFY_MAX_ATTEMPTS))
                except ConnectionFailed as exc:
                    broken = f"SMTP {smtp.host}:{smtp.port}: {exc}"
                    marks.append(_failure(item.row, broken, now, settings.NOTIFY_MAX_ATTEMPTS))
            else:
                marks.append(_failure(item.row, broken, now, settings.NOTIFY_MAX_ATTEMPTS))
            if len(marks) >= MARK_EVERY:
                await _mark(db, marks, result)
                marks = []
    finally:
        await asyncio.to_thread(connection.close)
        await _mark(db, marks, result)
        await _release(db, unsent, common.utcnow())


async def delivery_pass(
    db: Database,
    *,
    batch: int = 200,
    stop: asyncio.Event | None = None,
    settings: Settings | None = None,
) -> PassResult:
    """Deliver every notification due now, in batches (see the module docstring); returns the
    outcomes. Stops between messages once `stop` is set."""
    settings = settings or get_settings()
    smtp = SmtpSettings.from_settings(settings)
    lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    result = PassResult()
    if not await _anything_due(db, common.utcnow()):
        return result
    while not _stopped(stop):
        leased_at = time.monotonic()
        rows = await claim(db, now=common.utcnow(), batch=batch, lease=lease)
        if rows:
            await _deliver_batch(
                db, rows, settings=settings, smtp=smtp, leased_at=leased_at, stop=stop, result=result
            )
        if len(rows) < batch:
            break  # nothing more due that no one else holds: the next pass looks again
    return result
