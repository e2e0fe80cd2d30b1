"""How fast the worker drains queued webhook deliveries to a local receiver, with 1 and 2 workers.

Queues DELIVERIES deliveries (a ticket-sized payload each) to one endpoint, then runs `worker
--once` processes (the real entry point: claims with SKIP LOCKED, signs, POSTs, records) against
a uvicorn receiver on 127.0.0.1, and prints deliveries per second and the workers' CPU per
delivery (from /proc, so a noisy machine shows in the wall time, not in the CPU).

    cd backend
    .venv/bin/python scripts/bench_webhooks.py --database-url postgresql://postgres@127.0.0.1/bench_webhooks

The database is created if missing, migrated, and its webhook tables emptied first.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import migrations
from app.core.config import normalise_database_url
from app.crud import common
from app.models import WebhookDelivery, WebhookEndpoint
from scripts.benchkit import BIN, free_port

TICKET = {
    "title": "Mail queue stuck on mx2",
    "description": "Outbound mail has been queueing since 09:12; the relay answers 451 to every RCPT.",
    "priority": "high",
    "assignee_id": 7,
    "team_id": 2,
    "id": 123456,
    "status": "in_progress",
    "reporter_id": 42,
    "created_at": "2026-11-30T09:15:00Z",
    "updated_at": "2026-11-30T09:20:00Z",
    "resolved_at": None,
    "closed_at": None,
    "resolution": None,
    "reopen_count": 0,
    "version": 3,
    "sla_due_at": "2026-11-30T10:15:00Z",
    "sla_state": "running",
}


def create_database(url: str) -> None:
    sa_url = normalise_database_url(url)
    from sqlalchemy.engine import make_url

    parsed = make_url(sa_url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def queue(url: str, receiver: str, count: int) -> None:
    engine = create_engine(normalise_database_url(url))
    now = common.utcnow()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM webhook_endpoints"))
        endpoint_id = conn.execute(
            insert(WebhookEndpoint.__table__)  # type: ignore[attr-defined]
            .values(
                url=receiver,
                secret="whsec_" + "QUJD" * 8,
                event_types=[],
                filter={},
                active=True,
                created_at=now,
                updated_at=now,
            )
            .returning(WebhookEndpoint.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
        rows = []
        for n in range(count):
            body = {
                "id": f"msg_{n}",
                "type": "ticket.updated",
                "occurred_at": "2026-11-30T09:20:00Z",
                "sequence": n,
                "data": {"ticket": TICKET},
                "changes": {"title": {"old": "a", "new": "b"}},
            }
            rows.append(
                {
                    "endpoint_id": endpoint_id,
                    "message_id": f"msg_{n}",
                    "event_type": "ticket.updated",
                    "payload": json.dumps(body, separators=(",", ":")),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        conn.execute(insert(WebhookDelivery.__table__), rows)  # type: ignore[attr-defined]
    engine.dispose()


def delivered(url: str) -> int:
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
        ).scalar_one()
    engine.dispose()
    return int(count)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    create_database(args.database_url)
    migrations.upgrade(normalise_database_url(args.database_url))
    port = free_port()
    receiver = subprocess.Popen(
        [str(BIN / "uvicorn"), "scripts.bench_receiver:app", "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[1],
    )
    time.sleep(1.5)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "WORKER_BATCH_SIZE": "200",
        "LOG_LEVEL": "WARNING",
    }
    print(
        f"{'workers':>8} {'deliveries':>11} {'seconds':>8} {'per second':>11} {'worker CPU ms each':>19} {'receiver CPU ms each':>21}"
    )
    try:
        for workers in args.workers:
            queue(args.database_url, f"http://127.0.0.1:{port}/hook", args.deliveries)
            receiver_cpu = cpu_seconds(receiver.pid)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            procs = [subprocess.Popen([str(BIN / "worker"), "--once"], env=env) for _ in range(workers)]
            codes = [p.wait() for p in procs]
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            sent = delivered(args.database_url)
            assert codes == [0] * workers and sent == args.deliveries, (codes, sent)
            print(
                f"{workers:>8} {sent:>11} {seconds:>8.2f} {sent / seconds:>11.0f} {used / sent * 1000:>19.2f} "
                f"{(cpu_seconds(receiver.pid) - receiver_cpu) / sent * 1000:>21.2f}"
            )
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
