"""Benchmark `db seed`'s loading paths: rows per second on PostgreSQL and SQLite, and the naive path.

Run from backend/ with the venv (not a test; it creates and drops its own databases):

    .venv/bin/python scripts/bench_seed.py                      # 10k and 100k tickets, naive 2k
    .venv/bin/python scripts/bench_seed.py --postgres-tickets 1000000 --sqlite-tickets 0 --naive-tickets 0

Paths measured, each on a fresh, empty migrated database (reset, then one transaction):
  postgres-copy    binary COPY, indexes and foreign keys rebuilt at the end (what `db seed` does)
  sqlite-many      batched executemany through SQLAlchemy Core insert() (what `db seed` does)
  *-naive          one ORM object per session.add() and one INSERT (flush) per row, same rows

"rows" counts every inserted row (teams, users, tickets, comments, ticket_events). rows/s leaves out
the fixed cost of building the factory pools (shown apart); the seconds are the whole seed (reset
excluded). "generate" builds the same rows in Python without a database.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, SQLModel

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))  # scripts.benchkit, also when tests import this module

from app import seed as seeding  # noqa: E402
from app.core import db, migrations  # noqa: E402
from app.seed_load import count_rows  # noqa: E402
from scripts.benchkit import scratch_postgres  # noqa: E402

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def insert_one_by_one(
    *, session: Session, model: type[SQLModel], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> int:
    """The naive loader, one ORM object and one INSERT per row, to compare `db seed`'s with
    (tests/cli/test_seed_command.py checks that it stores the same rows)."""
    for row in rows:
        session.add(model(**dict(zip(columns, row, strict=True))))
        session.flush()
    session.expunge_all()
    return len(rows)


def counts(tickets: int, users: int | None, teams: int) -> tuple[int, int]:
    return users or min(seeding.MAX_USERS, max(200, tickets // 50)), teams


@contextmanager
def sqlite_database(folder: str) -> Iterator[str]:
    path = Path(folder, f"bench_seed_{uuid.uuid4().hex[:10]}.sqlite3")
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def run(label: str, url: str, plan: seeding.Plan, *, naive: bool = False) -> None:
    engine = db.create_db_engine(url)
    try:
        with engine.begin() as conn:
            migrations.reset(conn)
        phases: dict[str, float] = {}
        progress = seeding.Progress(phase=lambda name: phases.setdefault(name, time.perf_counter()))
        started = time.perf_counter()
        with Session(engine) as session:
            if naive:
                seeding.seed_database(session, plan, progress, loader=insert_one_by_one, defer_indexes=False)
            else:
                seeding.seed_database(session, plan, progress)
        elapsed = time.perf_counter() - started
        with Session(engine) as session:
            rows = count_rows(session=session, tables=[str(m.__tablename__) for m in seeding.TABLES])
    finally:
        engine.dispose()
    total = sum(rows.values())
    finished = started + elapsed
    pools = phases[seeding.PHASE_TICKETS] - phases[seeding.PHASE_POOLS]
    rebuild = phases[seeding.PHASE_COMMIT] - phases[seeding.PHASE_INDEXES]
    print(
        f"{label:<15} tickets {plan.tickets:>9,}  rows {total:>11,}  {elapsed:7.1f} s  "
        f"{total / (elapsed - pools):>9,.0f} rows/s  (factory pools {pools:.1f} s, "
        f"index+FK rebuild {rebuild:.1f} s, commit {finished - phases[seeding.PHASE_COMMIT]:.1f} s; "
        f"tickets {rows['tickets']:,}, events {rows['ticket_events']:,}, comments {rows['comments']:,}, "
        f"users {rows['users']:,})",
        flush=True,
    )


def generation_only(plan: seeding.Plan) -> None:
    phases: dict[str, float] = {}
    progress = seeding.Progress(phase=lambda name: phases.setdefault(name, time.perf_counter()))
    started = time.perf_counter()
    total = sum(len(rows) for _model, _columns, rows in seeding.generate(plan, progress))
    elapsed = time.perf_counter() - started
    pools = phases[seeding.PHASE_TICKETS] - phases[seeding.PHASE_POOLS]
    print(
        f"{'generate':<15} tickets {plan.tickets:>9,}  rows {total:>11,}  {elapsed:7.1f} s  "
        f"{total / (elapsed - pools):>9,.0f} rows/s  (Python only, no database; factory pools {pools:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server URL (databases bench_seed_* are created and dropped on it); '' skips it",
    )
    parser.add_argument("--sqlite-dir", default=os.environ.get("BENCH_SQLITE_DIR", tempfile.gettempdir()))
    parser.add_argument("--postgres-tickets", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--sqlite-tickets", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--naive-tickets", type=int, default=2_000, help="0 skips the naive path")
    parser.add_argument("--generate-tickets", type=int, nargs="*", default=[100_000])
    parser.add_argument("--users", type=int, default=None, help="default: tickets / 50, at least 200")
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    def plan(tickets: int) -> seeding.Plan:
        users, teams = counts(tickets, args.users, args.teams)
        return seeding.make_plan(teams=teams, users=users, tickets=tickets, seed=args.seed, anchor=ANCHOR)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, seed {args.seed}", flush=True)
    jobs: list[tuple[str, Callable[[], None]]] = []
    for tickets in args.generate_tickets:
        jobs.append(("generate", lambda t=tickets: generation_only(plan(t))))
    for tickets in args.sqlite_tickets if args.sqlite_dir else []:
        jobs.append(("sqlite", lambda t=tickets: sqlite_run("sqlite-many", plan(t), naive=False)))
    if args.naive_tickets and args.sqlite_dir:
        jobs.append(("sqlite", lambda: sqlite_run("sqlite-naive", plan(args.naive_tickets), naive=True)))
    for tickets in args.postgres_tickets if args.postgres else []:
        jobs.append(("postgres", lambda t=tickets: postgres_run("postgres-copy", plan(t), naive=False)))
    if args.naive_tickets and args.postgres:
        jobs.append(
            ("postgres", lambda: postgres_run("postgres-naive", plan(args.naive_tickets), naive=True))
        )

    def sqlite_run(label: str, p: seeding.Plan, *, naive: bool) -> None:
        with sqlite_database(args.sqlite_dir) as url:
            run(label, url, p, naive=naive)

    def postgres_run(label: str, p: seeding.Plan, *, naive: bool) -> None:
        with scratch_postgres(args.postgres, "bench_seed") as url:
            run(label, url, p, naive=naive)

    for _kind, job in jobs:
        job()


if __name__ == "__main__":
    main()
