"""Benchmark what queuing notifications costs a ticket write: CPU per request with the notify hook
(app.crud.notify) registered and with it taken out, in the same process, rounds alternated.

Run from backend/ with the venv (not a test; it migrates and writes to the database it is given,
by default a throw-away SQLite file):

    nice .venv/bin/python scripts/bench_enqueue.py
    nice .venv/bin/python scripts/bench_enqueue.py --database-url postgresql://postgres@127.0.0.1/bench_enqueue

The requests go through the whole app in-process (httpx's ASGI transport: middleware, auth, the
write's transaction, the hooks), so the CPU measured is the API process's (and, on SQLite, the
database's, which runs in it; PostgreSQL's own CPU is another process and not counted). Two
writes that notify:
  - POST /tickets/ by an agent with another agent as assignee: one ticket_assigned row;
  - PATCH /tickets/{id}/status to resolved, by an agent, on a ticket filed by a reporter and
    assigned to another agent who commented on it: ticket_resolved to the reporter and the assignee;
and one that does not (PATCH /tickets/{id} title: the hook's zero-query path).
Each round runs --requests of each case with the hook on, then off (then the next round off first);
the figure is the median over rounds of process CPU per request, and the difference on - off.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    parser.add_argument("--requests", type=int, default=200, help="requests per case per round")
    parser.add_argument("--rounds", type=int, default=6)
    return parser.parse_args()


ARGS = parse()
_tmp = tempfile.mkdtemp(prefix="bench-enqueue-")
os.environ["DATABASE_URL"] = ARGS.database_url or f"sqlite:///{_tmp}/bench.db"
os.environ["DATA_DIR"] = _tmp
os.environ.setdefault("SECRET_KEY", "bench-secret-key-of-at-least-32-bytes-long")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import httpx  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402

from app.core import migrations, security  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.core.database import Database, get_async_engine  # noqa: E402
from app.crud import notify, ticket_writes  # noqa: E402
from app.crud.ticket_writes import TicketWrite  # noqa: E402
from app.factories import UserFactory  # noqa: E402
from app.main import app  # noqa: E402
from app.models import Role, User  # noqa: E402

API = "/api/v1"
Headers = dict[str, str]


def headers(user: User) -> Headers:
    assert user.id is not None
    token = security.create_access_token(
        user.id, user.auth_stamp, secret=get_settings().SECRET_KEY, expires=timedelta(hours=2)
    )
    return {"Authorization": f"Bearer {token}"}


async def make_users() -> dict[str, User]:
    database = Database(get_async_engine())
    users = {}
    async with database.write() as session:
        for name, role in (("actor", Role.agent), ("assignee", Role.agent), ("reporter", Role.reporter)):
            users[name] = UserFactory.build(role=role)
            session.add(users[name])
    return users


# CPU spent inside the notify hook itself (the query, the rules, the rows added to the session; not
# the INSERT of those rows, which the commit flushes), per case.
IN_HOOK: dict[str, list[float]] = {}
CURRENT = [""]


async def timed_hook(session: AsyncSession, write: TicketWrite) -> None:
    started = time.process_time()
    await notify.hook(session, write)
    IN_HOOK.setdefault(CURRENT[0], []).append((time.process_time() - started) * 1000)


def hook(on: bool) -> None:
    """The notify hook in (timed) or out; the one app.crud registered is replaced by the timed one."""
    for registered in (notify.hook, timed_hook):
        if registered in ticket_writes._before_commit:
            ticket_writes._before_commit.remove(registered)
    if on:
        ticket_writes.register(before=timed_hook)


async def main() -> None:
    migrations.upgrade(os.environ["DATABASE_URL"])
    users = await make_users()
    actor, reporter, assignee = (
        headers(users["actor"]),
        headers(users["reporter"]),
        headers(users["assignee"]),
    )
    assignee_id = users["assignee"].id
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
            answered = await response
            assert answered.status_code == status, answered.text
            return answered.json()

        async def create() -> None:
            await ok(
                client.post(
                    f"{API}/tickets/", json={"title": "Bench", "assignee_id": assignee_id}, headers=actor
                ),
                201,
            )

        async def resolvable(count: int) -> list[int]:
            ids = []
            for _ in range(count):
                ticket = await ok(
                    client.post(f"{API}/tickets/", json={"title": "Bench"}, headers=reporter), 201
                )
                tid = ticket["id"]
                await ok(
                    client.patch(f"{API}/tickets/{tid}", json={"assignee_id": assignee_id}, headers=actor)
                )
                await ok(
                    client.post(f"{API}/tickets/{tid}/comments", json={"body": "On it"}, headers=assignee),
                    201,
                )
                ids.append(tid)
            return ids

        cases: dict[str, list[float]] = {}
        for round_number in range(ARGS.rounds):
            order = (True, False) if round_number % 2 == 0 else (False, True)
            for on in order:
                ids = await resolvable(ARGS.requests)
                edits = await resolvable(ARGS.requests)
                hook(on)
                work: dict[str, Callable[[int], Awaitable[None]]] = {
                    "POST /tickets/ (assignee != actor)": lambda _i: create(),
                    "PATCH /tickets/{id}/status -> resolved": lambda i, ids=ids: ok(
                        client.patch(
                            f"{API}/tickets/{ids[i]}/status",
                            json={"status": "resolved", "resolution": "Fixed"},
                            headers=actor,
                        )
                    ),
                    "PATCH /tickets/{id} title (notifies nobody)": lambda i, edits=edits: ok(
                        client.patch(
                            f"{API}/tickets/{edits[i]}", json={"title": f"Renamed {i}"}, headers=actor
                        )
                    ),
                }
                for name, run in work.items():
                    CURRENT[0] = name if on else ""
                    started = time.process_time()
                    for i in range(ARGS.requests):
                        await run(i)
                    per_request = (time.process_time() - started) / ARGS.requests * 1000
                    cases.setdefault(f"{name}|{'on' if on else 'off'}", []).append(per_request)
                CURRENT[0] = ""
                hook(True)
    print(
        f"database: {os.environ['DATABASE_URL'].split('@')[-1]}; {ARGS.requests} requests x {ARGS.rounds} rounds"
    )
    print(f"{'case':48} {'hook on':>9} {'hook off':>9} {'cost':>8} {'in hook':>8}   (ms of CPU per request)")
    for name in dict.fromkeys(key.split("|")[0] for key in cases):
        on_ms, off_ms = statistics.median(cases[f"{name}|on"]), statistics.median(cases[f"{name}|off"])
        inside = statistics.median(IN_HOOK[name])
        print(f"{name:48} {on_ms:9.3f} {off_ms:9.3f} {on_ms - off_ms:+8.3f} {inside:8.3f}")
    print("hook on/off: median over rounds of CPU per request; cost: their difference; in hook: the")
    print("median CPU inside the notify hook per request (the INSERT of its rows is flushed at the commit).")


if __name__ == "__main__":
    asyncio.run(main())
