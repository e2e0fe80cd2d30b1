"""Benchmark the outbox's delivery (app.crud.delivery): how fast `worker` drains queued e-mails to a
local SMTP server, with one worker, then two on PostgreSQL.

Run from backend/ with the venv (not a test; it drops and re-creates the database it is given):

    nice -n 10 .venv/bin/python scripts/bench_outbox.py                       # PostgreSQL bench_outbox
    nice -n 10 .venv/bin/python scripts/bench_outbox.py --count 10000 --workers 1 2
    nice -n 10 .venv/bin/python scripts/bench_outbox.py --database-url sqlite:////tmp/bench_outbox.sqlite3 --workers 1

Steps:
  1. the database (default postgresql://postgres@127.0.0.1/bench_outbox) dropped, created and
     migrated; N users, each with an invitation queued as the enqueue side writes it (a single-use
     token row and an outbox row), bulk-inserted
  2. an SMTP sink in a separate process (aiosmtpd on a free port; it counts what it receives and
     the distinct Message-IDs), so the figures are the worker's alone
  3. for each --workers K: every row queued again (pending, attempts 0, due now), then K `worker
     --once` processes (the real entry point, WORKER_BATCH_SIZE rows a batch) started at once;
     wall time until the last exits, messages/s, and the workers' CPU per message (user + system,
     from wait4). The job's own time is read from each worker's log line ("handled N in X ms"),
     so the process start (imports, about a second) is shown apart.
  4. with --breakdown: where a worker's CPU goes, in-process, with the network left out: one
     delivery pass with each send only serializing the message (what smtplib does before writing
     it), then with sends doing nothing, then also with every message the same prebuilt object
     (app.mail.message not called): the differences are the cost of serializing and of building
     each message, the rest is the job's own (claim, context, render, marks).
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql://postgres@127.0.0.1/bench_outbox"
sys.path.insert(0, str(BACKEND))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.core import account_tokens, migrations  # noqa: E402
from app.core.clock import utcnow  # noqa: E402
from app.core.config import normalise_database_url  # noqa: E402
from app.crud.outbox import message_id  # noqa: E402
from app.factories import demo_password_hash  # noqa: E402
from app.models import AccountToken, Notification, User  # noqa: E402
from scripts.benchkit import BIN, free_port  # noqa: E402

SECRET = "bench-outbox-secret-key-of-at-least-32-bytes"
SINK = """
import sys, time
from aiosmtpd.controller import Controller

class Sink:
    def __init__(self):
        self.count = 0
        self.ids = set()
    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        for line in envelope.content.split(b"\\r\\n"):
            if line.lower().startswith(b"message-id:"):
                self.ids.add(line.split(b":", 1)[1].strip())
                break
        return "250 OK"

sink = Sink()
controller = Controller(sink, hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for command in sys.stdin:
    print(sink.count, len(sink.ids), time.process_time(), flush=True)
controller.stop()
"""


def prepare(url: str, count: int) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
    else:
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    migrations.upgrade(url)
    engine = create_engine(url)
    now = utcnow()
    password = demo_password_hash()
    with engine.begin() as conn:
        first_user = conn.execute(text("SELECT coalesce(max(id), 0) FROM users")).scalar_one() + 1
        conn.execute(
            insert(User.__table__),  # type: ignore[attr-defined]
            [
                {
                    "email": f"bench.user{n}@example.com",
                    "full_name": f"Bench User {n}",
                    "hashed_password": password,
                    "role": "agent",
                    "is_active": True,
                    "auth_stamp": f"stamp{n:027d}",
                    "created_at": now,
                }
                for n in range(count)
            ],
        )
        users = [first_user + n for n in range(count)]
        nonces = [account_tokens.new_nonce() for _ in users]
        conn.execute(
            insert(AccountToken.__table__),  # type: ignore[attr-defined]
            [
                {
                    "user_id": user,
                    "purpose": "invitation",
                    "nonce": nonce,
                    "token_hash": account_tokens.digest(account_tokens.derive(SECRET, "invitation", nonce)),
                    "auth_stamp": f"stamp{n:027d}",
                    "created_at": now,
                    "expires_at": now + timedelta(hours=72),
                }
                for n, (user, nonce) in enumerate(zip(users, nonces, strict=True))
            ],
        )
        token_ids = dict(conn.execute(text("SELECT user_id, id FROM account_tokens")).all())
        conn.execute(
            insert(Notification.__table__),  # type: ignore[attr-defined]
            [
                {
                    "channel": "email",
                    "kind": "invitation",
                    "recipient_id": user,
                    "payload": f'{{"token_id":{token_ids[user]}}}',
                    "message_id": message_id(),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for user in users
            ],
        )
    engine.dispose()


def requeue(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE notifications SET state = 'pending', attempts = 0, next_attempt_at = :now, sent_at = NULL"
            ),
            {"now": utcnow() - timedelta(seconds=1)},
        )
    engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT state, count(*) FROM notifications GROUP BY state")).all())
    engine.dispose()
    return {str(key): int(value) for key, value in found.items()}


def run_workers(url: str, workers: int, port: int, batch: int) -> tuple[float, float, list[float]]:
    """Wall seconds until the last worker exits, their CPU seconds, and each one's job time (s)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "ENVIRONMENT": "local",
        "LOG_LEVEL": "INFO",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_TLS": "false",
        "EMAILS_FROM_EMAIL": "desk@example.com",
        "WORKER_BATCH_SIZE": str(batch),
    }
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [str(BIN / "worker"), "--once"], env=env, cwd=BACKEND, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    cpu = 0.0
    logs = []
    for process in processes:
        assert process.stderr is not None
        logs.append(process.stderr.read())
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if process.returncode != 0:
            sys.exit(f"worker exited {process.returncode}:\n{logs[-1]}")
    wall = time.perf_counter() - started
    job = [
        float(line.rsplit(" in ", 1)[1].split()[0]) / 1000
        for log in logs
        for line in log.splitlines()
        if "worker job notifications handled" in line
    ]
    return wall, cpu, job


def breakdown(url: str, count: int, batch: int) -> None:
    """CPU per message of one in-process delivery pass, the network left out (see step 4)."""
    import asyncio
    from email.message import EmailMessage
    from typing import Any

    from app import mail
    from app.core import smtp
    from app.core.config import Settings
    from app.core.database import Database, create_async_db_engine
    from app.crud import delivery

    settings = Settings(
        SMTP_HOST="127.0.0.1", SMTP_PORT=1, SMTP_TLS=False, EMAILS_FROM_EMAIL="desk@example.com"
    )
    real_message = mail.message
    built: list[EmailMessage] = []

    def prebuilt(*args: Any, **kwargs: Any) -> EmailMessage:
        """The first message built, for every row (app.mail.message called once)."""
        if not built:
            built.append(real_message(*args, **kwargs))
        return built[0]

    modes: dict[str, tuple[Any, Any]] = {
        "send = serialize only": (lambda _self, message: message.as_bytes(), real_message),
        "send = nothing": (lambda _self, message: None, real_message),
        "send = nothing, one prebuilt message": (lambda _self, message: None, prebuilt),
    }
    smtp.SmtpConnection.open = lambda self: None  # type: ignore[method-assign]

    async def one_pass() -> tuple[int, float]:
        engine = create_async_db_engine(url)
        db = Database(engine)
        started = time.process_time()
        result = await delivery.delivery_pass(db, batch=batch, settings=settings)
        cpu = time.process_time() - started
        await db.close()
        await engine.dispose()
        return result.handled, cpu

    figures = {}
    for name, (send, message) in modes.items():
        requeue(url)
        smtp.SmtpConnection.send = send  # type: ignore[method-assign]
        mail.message = message
        handled, cpu = asyncio.run(one_pass())
        assert handled == count, handled
        figures[name] = cpu * 1000 / count
        print(f"breakdown, {name}: {figures[name]:.2f} ms of CPU a message")
    mail.message = real_message
    own = figures["send = nothing, one prebuilt message"]
    print(
        f"breakdown: serializing {figures['send = serialize only'] - figures['send = nothing']:.2f} ms, "
        f"building (app.mail.message) {figures['send = nothing'] - own:.2f} ms, the job's own {own:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=200, help="WORKER_BATCH_SIZE")
    parser.add_argument("--breakdown", action="store_true", help="Then where a worker's CPU goes (step 4).")
    args = parser.parse_args()
    url = normalise_database_url(args.database_url)
    os.environ["SECRET_KEY"] = SECRET

    started = time.perf_counter()
    prepare(url, args.count)
    print(
        f"queued {args.count:,} invitations in {time.perf_counter() - started:.1f} s ({make_url(url).get_backend_name()})"
    )

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdin is not None and sink.stdout is not None
    assert sink.stdout.readline().strip() == "ready"
    received, sink_cpu = 0, 0.0
    try:
        for workers in args.workers:
            requeue(url)
            wall, cpu, job = run_workers(url, workers, port, args.batch)
            sink.stdin.write("count\n")
            sink.stdin.flush()
            total, distinct, cpu_now = sink.stdout.readline().split()
            sent = int(total) - received
            received = int(total)
            sink_ms = (float(cpu_now) - sink_cpu) * 1000 / args.count
            sink_cpu = float(cpu_now)
            states = counts(url)
            assert states == {"sent": args.count}, states
            assert sent == args.count, (sent, args.count)
            job_rate = args.count / max(job) if job else float("nan")
            print(
                f"{workers} worker(s): {args.count:,} sent in {wall:.2f} s wall = {args.count / wall:,.0f} msg/s "
                f"(the job itself: {max(job):.2f} s = {job_rate:,.0f} msg/s); "
                f"worker CPU {cpu * 1000 / args.count:.2f} ms/message; "
                f"sink: {sent:,} received ({int(distinct):,} distinct Message-IDs so far), "
                f"its CPU {sink_ms:.2f} ms/message"
            )
    finally:
        sink.stdin.close()
        sink.wait(timeout=30)
    if args.breakdown:
        breakdown(url, args.count, args.batch)


if __name__ == "__main__":
    main()
