"""Benchmark the SLA clock (app.crud.sla_clock) on PostgreSQL: recompute throughput, the cost of an
idle pass, and how long a pass takes to record a backlog of breaches (the worst case of the lag).

Run from backend/ with the venv (not a test; it changes the database it is given):

    createdb -h 127.0.0.1 -U postgres bench_clock
    nice -n 10 .venv/bin/python scripts/bench_clock.py                  # seeds 100,000 tickets, then measures
    nice -n 10 .venv/bin/python scripts/bench_clock.py --tickets 1000000

Steps, on the database DATABASE_URL names (default postgresql://postgres@127.0.0.1/bench_clock):
  1. `db seed --tickets N --users 2000 --seed 1 --yes` (histories up to 2026-01-01, with the default
     calendar and policies and each ticket's timers); with --reuse, the tickets already there
  2. a policy change: every policy's resolution target one business hour longer (the defaults are
     installed first when there is no policy)
  3. recompute: one SlaRecompute job, `recompute_pass` (the worker's job) rebuilds the timers of
     every running ticket (open, in progress, on hold) from its history -> tickets/s
  4. due: K of the counting timers (--due, default all) are made running and due a second ago
     (state, warned_at, breached_at, next_check_at reset with an UPDATE: as if their due time had
     just passed), then `clock_pass` records them (a warning and a breach each) -> seconds for K,
     breaches/s, and the projected time for 100,000 at once
  5. replicas: the same timers made due again, and --workers `worker --once` processes (the real
     entry point) started at once on the backlog -> seconds, their CPU
  6. idle: `clock_pass` with nothing due, --idle-runs times: ms per pass and statements sent

Wall time, the client's CPU (this process) and the server's CPU (the PostgreSQL backends of the
pool's connections, from /proc, when readable) are printed for each step.
"""

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

BACKEND = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql://postgres@127.0.0.1/bench_clock"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
sys.path.insert(0, str(BACKEND))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from app import crud  # noqa: E402
from app.core.clock import utcnow  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.core.database import Database, create_async_db_engine  # noqa: E402
from app.crud import sla_clock  # noqa: E402
from app.models import SlaRecompute  # noqa: E402

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, this process's CPU, and the CPU of the server backends this engine connected to."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.backends: set[int] = set()
        self.statements: list[str] = []

        @event.listens_for(engine.sync_engine, "connect")
        def _backend(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            self.backends.add(int(cursor.fetchone()[0]))
            cursor.close()

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            self.statements.append(statement)

    def server_cpu(self) -> float | None:
        total = 0
        for pid in self.backends:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a closed connection's backend is gone (its CPU with it)
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLOCK_TICK if self.backends else None


@dataclass
class Measured:
    wall: float
    cpu: float
    server_cpu: float | None
    statements: int

    def line(self) -> str:
        server = "n/a" if self.server_cpu is None else f"{self.server_cpu:.2f} s"
        return f"wall {self.wall:.2f} s, client CPU {self.cpu:.2f} s, server CPU {server}, {self.statements} statements"


async def measured(meter: Meter, work: Any) -> tuple[Any, Measured]:
    meter.statements.clear()
    server = meter.server_cpu()
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = meter.server_cpu()
    server_cpu = None if server is None or after is None else after - server
    return result, Measured(wall, cpu, server_cpu, len(meter.statements))


async def execute(db: Database, statement: str, **params: Any) -> int:
    """Run one write statement in a transaction of its own; the rows it changed."""
    async with db.write() as session:
        result = await (await session.connection()).execute(text(statement), params)
        return int(result.rowcount)  # type: ignore[attr-defined]


async def scalar(db: Database, statement: str) -> Any:
    connection = await db.connection()
    value = (await connection.execute(text(statement))).scalar_one()
    await db.end_reads()
    return value


async def policies_changed(db: Database) -> int:
    """The default calendar and policies (`db seed` installs them; else `install_defaults`), then
    every policy's resolution target one business hour longer, as an admin's change would: each
    running ticket's due time moves. Returns the number of policies."""
    if not await scalar(db, "SELECT count(*) FROM sla_policies"):
        await crud.install_defaults(db=db, time_zone="UTC")
    return await execute(db, "UPDATE sla_policies SET resolution_minutes = resolution_minutes + 60")


async def make_due(db: Database, limit: int | None) -> int:
    """Make `limit` (None: all) counting timers of open or in-progress tickets due a second ago."""
    return await execute(
        db,
        """
        UPDATE sla_timers SET state = 'running', warned_at = NULL, breached_at = NULL, next_check_at = :at
        WHERE id IN (
            SELECT t.id FROM sla_timers t JOIN tickets k ON k.id = t.ticket_id
            WHERE t.state IN ('running', 'breached') AND k.status IN ('open', 'in_progress')
            ORDER BY t.id LIMIT :limit
        )
        """,
        at=utcnow() - timedelta(seconds=1),
        limit=limit if limit is not None else 2**62,
    )


async def main(args: argparse.Namespace) -> None:
    url = os.environ["DATABASE_URL"]
    settings = get_settings()
    batch = args.batch or settings.WORKER_BATCH_SIZE
    if not args.reuse:
        seed = [str(BACKEND / ".venv/bin/db"), "seed", "--tickets", str(args.tickets)]
        subprocess.run([*seed, "--users", "2000", "--seed", "1", "--yes"], check=True, cwd=BACKEND)
    engine = create_async_db_engine(url)
    meter = Meter(engine)
    db = Database(engine)
    try:
        tickets = await scalar(db, "SELECT count(*) FROM tickets")
        running = await scalar(
            db, "SELECT count(*) FROM tickets WHERE status IN ('open', 'in_progress', 'on_hold')"
        )
        print(
            f"database: {tickets:,} tickets, {running:,} running (open, in progress, on hold); batch {batch}"
        )
        if args.recompute:
            policies = await policies_changed(db)
            print(f"{policies} policies changed (resolution + 1 business hour); recompute queued")
            async with db.write() as session:
                session.add(SlaRecompute(reason="benchmark"))
            done, cost = await measured(meter, sla_clock.recompute_pass(db, batch=batch))
            print(f"recompute: {done:,} tickets, {done / cost.wall:,.0f} tickets/s; {cost.line()}")

        due = await make_due(db, args.due)
        recorded, cost = await measured(meter, sla_clock.clock_pass(db, batch=batch))
        rate = recorded / cost.wall if cost.wall else 0
        print(
            f"breaches: {due:,} timers due on {recorded:,} tickets recorded in {cost.wall:.1f} s "
            f"({due / cost.wall:,.0f} timers/s, {rate:,.0f} tickets/s); {cost.line()}"
        )
        print(f"  projected for 100,000 timers due at once: {100_000 / (due / cost.wall):.0f} s")
        left = await scalar(db, "SELECT count(*) FROM sla_timers WHERE next_check_at <= now()")
        print(f"  timers still due after the pass: {left}")

        if args.workers:
            due = await make_due(db, args.due)
            started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            env = {**os.environ, "WORKER_BATCH_SIZE": str(batch), "LOG_LEVEL": "WARNING"}
            workers = [
                subprocess.Popen([str(BACKEND / ".venv/bin/worker"), "--once"], cwd=BACKEND, env=env)
                for _ in range(args.workers)
            ]
            codes = [worker.wait() for worker in workers]
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            left = await scalar(db, "SELECT count(*) FROM sla_timers WHERE next_check_at <= now()")
            print(
                f"breaches, {args.workers} `worker --once` processes at once: {due:,} timers in {wall:.1f} s "
                f"({due / wall:,.0f} timers/s); exit codes {codes}; workers' CPU {cpu:.2f} s; still due: {left}"
            )

        passes = []
        for _ in range(args.idle_runs):
            handled, cost = await measured(meter, sla_clock.clock_pass(db, batch=batch))
            assert handled == 0
            passes.append(cost)
        walls = sorted(p.wall * 1000 for p in passes)
        print(
            f"idle clock pass: median {statistics.median(walls):.2f} ms, max {walls[-1]:.2f} ms, "
            f"{passes[-1].statements} statement(s); client CPU {sum(p.cpu for p in passes) / len(passes) * 1000:.2f} ms/pass"
        )
        connection = await db.connection()
        plan = await connection.execute(
            text(
                "EXPLAIN SELECT ticket_id FROM sla_timers WHERE next_check_at <= now() ORDER BY next_check_at LIMIT 1"
            )
        )
        print("  plan: " + " / ".join(row[0].strip() for row in plan))
        await db.end_reads()
    finally:
        await db.close()
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tickets", type=int, default=100_000, help="tickets to seed first (default 100,000)"
    )
    parser.add_argument("--reuse", action="store_true", help="do not seed: use the tickets there")
    parser.add_argument("--due", type=int, default=None, help="timers made due (default: every counting one)")
    parser.add_argument(
        "--batch", type=int, default=0, help="tickets per transaction (default WORKER_BATCH_SIZE)"
    )
    parser.add_argument("--idle-runs", type=int, default=50)
    parser.add_argument(
        "--no-recompute", dest="recompute", action="store_false", help="skip the policy change's recompute"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help="then the same backlog again for this many `worker --once` (0: skip)",
    )
    asyncio.run(main(parser.parse_args()))
