"""Load test: one server on PostgreSQL, a bounded mixed read/write workload, then the write audit.

Run from backend/ with the venv (not a test; it creates and drops its own database):

    .venv/bin/python scripts/bench_load.py                    # 60 s, 16 client threads
    .venv/bin/python scripts/bench_load.py --duration 20 --threads 8 --keep

What it does:
1. creates `incident_desk_bench_<random>` on the PostgreSQL server at --server (default
   postgresql://postgres@127.0.0.1:5432, trust auth), migrates it, adds an admin, agents and
   reporters (tokens are signed here, so no password hashing sits in the workload);
2. starts ONE server process: the Dockerfile's command (uvicorn, JSON logs, no uvicorn access log)
   on 127.0.0.1, its log written to a temporary file;
3. runs the workload from this process (httpx, one client per thread) for --duration seconds:
   list tickets 35%, read a ticket 20%, its events 5%, create a ticket 15% (half of them with an
   Idempotency-Key, and one in five of those sent twice: a retry), comment 10%, edit 10%,
   move a ticket 5%;
4. audits: every ticket and comment id answered with 201 must be in the database, and the database
   must hold no ticket or comment that was not answered (lost writes / unacknowledged writes);
   replayed retries must carry the first id.

It prints requests/s, latency percentiles per kind of request and overall, the statuses, the
number of 5xx, and the audit. Exit status 1 on any 5xx, lost write or unacknowledged write.
Traffic goes to 127.0.0.1 only, and the run stops by itself.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from benchkit import dockerfile_command, free_port, scratch_postgres, wait_until_healthy
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.core import migrations, security
from app.core.config import BACKEND_DIR
from app.core.db import create_db_engine
from app.factories import UserFactory
from app.models import Comment, Role, Ticket, User

SECRET = "bench-secret-key-of-at-least-32-characters-long"
API = "/api/v1"
BIN = Path(sys.executable).parent


# --- Database, users and server (also used by scripts/outage_drill.py) ------------------------------


@dataclass
class People:
    admin: User
    agents: list[User]
    reporters: list[User]

    def headers(self, user: User) -> dict[str, str]:
        assert user.id is not None
        token = security.create_access_token(
            user.id, user.auth_stamp, secret=SECRET, expires=timedelta(hours=2)
        )
        return {"Authorization": f"Bearer {token}"}


def prepare(database_url: str, *, agents: int = 4, reporters: int = 8) -> People:
    """Migrate the database and add the people of the workload (and one ticket to start from)."""
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            people = People(
                admin=UserFactory.build(role=Role.admin),
                agents=[UserFactory.build(role=Role.agent) for _ in range(agents)],
                reporters=[UserFactory.build(role=Role.reporter) for _ in range(reporters)],
            )
            session.add_all([people.admin, *people.agents, *people.reporters])
            session.commit()
            return people
    finally:
        engine.dispose()


@contextmanager
def running_server(database_url: str, log_path: Path, **env: str) -> Iterator[str]:
    """The API in a process of its own; yields its base URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "POSTGRES_"))}
    environment.update(
        DATABASE_URL=database_url,
        ENVIRONMENT="production",
        SECRET_KEY=SECRET,
        FIRST_SUPERUSER_PASSWORD="not-the-placeholder-password",
        BACKEND_CORS_ORIGINS="",
        **env,
    )
    with log_path.open("w") as log:
        server = subprocess.Popen(
            dockerfile_command(port), cwd=BACKEND_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_healthy(base, server):
            raise SystemExit(f"the server did not start; see {log_path}")
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


# --- The workload ---------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    status: int  # 0: no answer (transport error or timeout)
    seconds: float
    started: float


@dataclass
class Ledger:
    """What the clients were told was written, and what they saw."""

    results: list[Result] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)
    comments: set[int] = field(default_factory=set)
    replays: int = 0
    replay_mismatches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)


KINDS = [
    ("list", 35),
    ("read", 20),
    ("events", 5),
    ("create", 15),
    ("comment", 10),
    ("edit", 10),
    ("move", 5),
]


def worker(
    base: str,
    headers: dict[str, str],
    ledger: Ledger,
    stop_at: float,
    seed: int,
    timeout: float = 10.0,
) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*KINDS, strict=True)
    known: list[int] = []
    with httpx.Client(base_url=f"{base}{API}", headers=headers, timeout=timeout) as http:

        def call(kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
            started = time.perf_counter()
            try:
                response = http.request(method, url, **kwargs)
            except httpx.HTTPError:
                ledger.add(Result(kind, 0, time.perf_counter() - started, started))
                return None
            ledger.add(Result(kind, response.status_code, time.perf_counter() - started, started))
            return response

        def create(key: str | None = None) -> httpx.Response | None:
            body = {
                "title": f"Load {uuid.uuid4().hex[:8]}",
                "priority": rng.choice(["low", "medium", "high"]),
            }
            extra_headers = {"Idempotency-Key": key} if key else {}
            response = call("create", "POST", "/tickets/", json=body, headers=extra_headers)
            if response is not None and response.status_code == 201:
                ticket_id = response.json()["id"]
                with ledger.lock:
                    ledger.tickets.add(ticket_id)
                known.append(ticket_id)
                if extra_headers and rng.random() < 0.2:  # the client did not hear back: it retries
                    again = call("create-retry", "POST", "/tickets/", json=body, headers=extra_headers)
                    if again is not None and again.status_code == 201:
                        with ledger.lock:
                            ledger.replays += 1
                            ledger.replay_mismatches += again.json()["id"] != ticket_id
            return response

        create()
        while time.perf_counter() < stop_at:
            kind = rng.choices(kinds, weights)[0]
            ticket_id = rng.choice(known) if known else None
            if kind == "create" or ticket_id is None:
                create(uuid.uuid4().hex if rng.random() < 0.5 else None)
            elif kind == "list":
                call(kind, "GET", "/tickets/", params={"limit": 20})
            elif kind == "read":
                call(kind, "GET", f"/tickets/{ticket_id}")
            elif kind == "events":
                call(kind, "GET", f"/tickets/{ticket_id}/events")
            elif kind == "comment":
                response = call(
                    kind, "POST", f"/tickets/{ticket_id}/comments", json={"body": "Still happening"}
                )
                if response is not None and response.status_code == 201:
                    with ledger.lock:
                        ledger.comments.add(response.json()["id"])
            elif kind == "edit":
                call(kind, "PATCH", f"/tickets/{ticket_id}", json={"title": f"Edited {rng.randrange(10**6)}"})
            else:
                target = rng.choice(["in_progress", "on_hold", "open"])
                body = {
                    "status": target,
                    **({"reason": "Waiting for the vendor"} if target == "on_hold" else {}),
                }
                call(kind, "PATCH", f"/tickets/{ticket_id}/status", json=body)


def run_workload(
    base: str, people: People, *, seconds: float, threads: int, worker_fn: Callable[..., None] = worker
) -> Ledger:
    ledger = Ledger()
    stop_at = time.perf_counter() + seconds
    actors = people.agents + people.reporters
    pool = [
        threading.Thread(
            target=worker_fn, args=(base, people.headers(actors[n % len(actors)]), ledger, stop_at, n)
        )
        for n in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return ledger


# --- Report ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"  {name:<13} {len(ms):>7} {percentile(ms, 50):>8.1f} {percentile(ms, 95):>8.1f} "
        f"{percentile(ms, 99):>8.1f} {max(ms, default=float('nan')):>8.1f}"
    )


def audit(database_url: str, ledger: Ledger, before: tuple[set[int], set[int]]) -> dict[str, int]:
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            tickets = set(session.exec(select(Ticket.id)).all()) - before[0]
            comments = set(session.exec(select(Comment.id)).all()) - before[1]
            events = session.exec(select(func.count()).select_from(text("ticket_events"))).one()
    finally:
        engine.dispose()
    return {
        "tickets_acknowledged": len(ledger.tickets),
        "tickets_stored": len(tickets),
        "tickets_lost": len(ledger.tickets - tickets),
        "tickets_unacknowledged": len(tickets - ledger.tickets),
        "comments_acknowledged": len(ledger.comments),
        "comments_stored": len(comments),
        "comments_lost": len(ledger.comments - comments),
        "comments_unacknowledged": len(comments - ledger.comments),
        "events_stored": int(events),
    }


def stored_ids(database_url: str) -> tuple[set[int], set[int]]:
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            return set(session.exec(select(Ticket.id)).all()), set(session.exec(select(Comment.id)).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def report(ledger: Ledger, seconds: float, figures: dict[str, int]) -> int:
    results = ledger.results
    statuses = Counter(r.status for r in results)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    no_answer = statuses.get(0, 0)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_kind[r.kind].append(r.seconds)
    print(f"\n{len(results)} requests in {seconds:.1f} s: {len(results) / seconds:.0f} requests/s")
    print(f"  {'latency ms':<13} {'count':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for kind, _ in [*KINDS, ("create-retry", 0)]:
        if by_kind.get(kind):
            print(latency_row(kind, by_kind[kind]))
    print(latency_row("all", [r.seconds for r in results]))
    print("statuses: " + ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(statuses.items())))
    print(f"5xx: {server_errors}   no answer: {no_answer}")
    print(f"retries replayed: {ledger.replays} (with another id: {ledger.replay_mismatches})")
    for name, count in figures.items():
        print(f"  {name:<24} {count}")
    lost = figures["tickets_lost"] + figures["comments_lost"]
    unacknowledged = figures["tickets_unacknowledged"] + figures["comments_unacknowledged"]
    print(f"lost writes: {lost}   unacknowledged writes: {unacknowledged}")
    failed = server_errors or lost or unacknowledged or ledger.replay_mismatches or no_answer
    print("RESULT: " + ("FAIL" if failed else "PASS"))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the server log (its path is printed)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")

    with (
        scratch_postgres(args.server, "incident_desk_bench") as url,
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
    ):
        people = prepare(url)
        before = stored_ids(url)
        log_path = Path(tmp) / "server.log"
        with running_server(url, log_path) as base:
            print(
                f"server {base} on {make_url(url).database}; {args.threads} client threads for {args.duration:.0f} s"
            )
            started = time.perf_counter()
            ledger = run_workload(base, people, seconds=args.duration, threads=args.threads)
            elapsed = time.perf_counter() - started
            scrape = httpx.get(f"{base}/metrics", timeout=10).text
        pool = [line for line in scrape.splitlines() if line.startswith("incident_desk_db_pool_")]
        print("pool at the end: " + ", ".join(line.removeprefix("incident_desk_db_pool_") for line in pool))
        access_lines = sum('"logger": "app.access"' in line for line in log_path.read_text().splitlines())
        print(f"server access log lines: {access_lines}")
        if args.keep:
            kept = Path(tempfile.gettempdir()) / f"bench-load-{os.getpid()}.log"
            kept.write_text(log_path.read_text())
            print(f"server log kept at {kept}")
        status = report(ledger, elapsed, audit(url, ledger, before))
    return status


if __name__ == "__main__":
    sys.exit(main())
