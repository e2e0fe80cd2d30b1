"""Contention through a running API: many concurrent writes to one ticket, and logins from one
address, while /health is polled from another process.

    cd backend
    .venv/bin/python scripts/bench_contention.py --database-url postgresql://postgres@127.0.0.1/bench100k \
        --pool-sizes 5 10 25 50

For each pool size it adds an agent of its own to the database (migrated; seeded or not), starts one
uvicorn worker (DB_POOL_SIZE=n) on it and sends, each scenario's requests all at once:

- 100 status moves on one ticket (in_progress <-> on_hold): each 200 or 409 (already there);
- 100 edits of one ticket's title: each 200;
- 50 edits of one ticket with the same If-Match: one 200, 49 412 (the deadlock scenario of [4/8]);
- 30 logins to one account from one address: 200, or 429 once the account's limit is counted.

It prints, per scenario, the answers by status and the slowest answer; the audit trail is read back
through the API (every accepted write has its own version, gapless, with its events); /health's
slowest answer. A run passes with no 503, no answer slower than API_REQUEST_TIMEOUT_SECONDS, the audit
trail exact and /health under 100 ms. tests/api/test_contention.py runs the same scenarios.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))

from scripts.benchkit import free_port, wait_until_healthy  # noqa: E402

API = "/api/v1"
HEALTH_LIMIT_MS = 100.0
REQUEST_DEADLINE_SECONDS = 12.0  # API_REQUEST_TIMEOUT_SECONDS's default
# uvicorn closes a connection after 5 s idle (--timeout-keep-alive). A client that keeps idle
# connections as long (httpx's default, 5 s too) may send on one the server is closing: the request
# fails with "Server disconnected" and is not retried (a POST). Idle connections go after 2 s here.
KEEPALIVE_EXPIRY_SECONDS = 2.0

# Polls /health every 20 ms until stdin closes; prints one line per poll: milliseconds, or "error".
HEALTH_POLLER = """
import sys, threading, time, httpx
url, done = sys.argv[1], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
with httpx.Client(timeout=5) as client:
    while not done.is_set():
        started = time.perf_counter()
        try:
            ok = client.get(url).status_code == 200
        except httpx.HTTPError:
            ok = False
        ms = f"{(time.perf_counter() - started) * 1000:.2f}" if ok else "error"
        print(f"{time.time():.3f}:{ms}", flush=True)
        time.sleep(0.02)
"""


@dataclass
class Scenario:
    name: str
    window: tuple[float, float] = (0.0, 0.0)  # wall-clock start and end (time.time())
    health_slowest_ms: float = 0.0  # /health's slowest answer during the scenario
    statuses: Counter[int] = field(default_factory=Counter)
    no_answer: Counter[str] = field(default_factory=Counter)  # status 0: the transport error's name
    slowest: float = 0.0  # seconds
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    pool_size: int
    scenarios: list[Scenario]
    health_polls: int = 0
    health_errors: int = 0
    health_slowest_ms: float = 0.0

    def problems(self, *, bound_seconds: float, health_limit_ms: float = HEALTH_LIMIT_MS) -> list[str]:
        found = []
        for scenario in self.scenarios:
            found += [f"{scenario.name}: {p}" for p in scenario.problems]
            if scenario.statuses[0]:
                errors = ", ".join(f"{n} x {name}" for name, n in sorted(scenario.no_answer.items()))
                found.append(f"{scenario.name}: {scenario.statuses[0]} without an answer ({errors})")
            if scenario.statuses[503]:
                found.append(f"{scenario.name}: {scenario.statuses[503]} x 503")
            if scenario.slowest >= bound_seconds:
                found.append(f"{scenario.name}: an answer took {scenario.slowest:.1f} s")
        if self.health_errors or not self.health_polls:
            found.append(f"/health: {self.health_errors} of {self.health_polls} polls failed")
        if self.health_slowest_ms >= health_limit_ms:
            found.append(f"/health: slowest {self.health_slowest_ms:.0f} ms")
        return found

    def lines(self) -> list[str]:
        out = [f"pool size {self.pool_size}:"]
        for s in self.scenarios:
            answers = ", ".join(f"{n} x {code or 'none'}" for code, n in sorted(s.statuses.items()))
            out.append(
                f"  {s.name:<32} {answers:<26} slowest {s.slowest * 1000:5.0f} ms   "
                f"/health slowest {s.health_slowest_ms:5.1f} ms"
            )
        out.append(
            f"  /health polled {self.health_polls} times meanwhile: slowest {self.health_slowest_ms:.1f} ms, "
            f"{self.health_errors} failed"
        )
        return out


class NoAnswer:
    """A request without an answer: the client's timeout (a hung server) or a dropped connection."""

    status_code = 0

    def __init__(self, error: httpx.TransportError) -> None:
        self.error = type(error).__name__

    def json(self) -> Any:
        raise AssertionError("no answer")


async def _all_at_once(
    client: httpx.AsyncClient, requests: list[tuple[str, str, dict[str, Any]]]
) -> list[tuple[httpx.Response | NoAnswer, float]]:
    """Send every request at the same moment; (response, seconds) in order."""
    gate = asyncio.Event()

    async def one(method: str, path: str, options: dict[str, Any]) -> tuple[httpx.Response | NoAnswer, float]:
        await gate.wait()
        started = time.perf_counter()
        try:
            response: httpx.Response | NoAnswer = await client.request(method, path, **options)
        except httpx.TransportError as exc:  # a timeout, or the connection dropped
            response = NoAnswer(exc)
        return response, time.perf_counter() - started

    tasks = [asyncio.create_task(one(*request)) for request in requests]
    await asyncio.sleep(0.05)  # every task is waiting at the gate
    gate.set()
    return await asyncio.gather(*tasks)


def _record(
    scenario: Scenario, started: float, results: list[tuple[httpx.Response | NoAnswer, float]]
) -> None:
    scenario.window = (started, time.time())
    scenario.statuses.update(response.status_code for response, _ in results)
    scenario.no_answer.update(response.error for response, _ in results if isinstance(response, NoAnswer))
    scenario.slowest = max(seconds for _, seconds in results)


async def _audit(
    client: httpx.AsyncClient, scenario: Scenario, ticket_id: int, base: int, accepted: list[int]
) -> None:
    """Every accepted write has its own version after `base`, gapless, and events of that version."""
    try:
        await _read_audit(client, scenario, ticket_id, base, accepted)
    except httpx.TransportError as exc:
        scenario.problems.append(f"the audit trail could not be read: {type(exc).__name__}")


async def _read_audit(
    client: httpx.AsyncClient, scenario: Scenario, ticket_id: int, base: int, accepted: list[int]
) -> None:
    versions: set[int] = set()
    cursor = 0
    while True:
        page = (
            await client.get(f"{API}/tickets/{ticket_id}/events", params={"offset": cursor, "limit": 100})
        ).json()
        versions |= {event["ticket_version"] for event in page["data"] if event["ticket_version"] > base}
        cursor += len(page["data"])
        if not page["data"] or cursor >= page["count"]:
            break
    expected = list(range(base + 1, base + 1 + len(accepted)))
    if sorted(accepted) != expected:
        scenario.problems.append(f"accepted versions are not gapless: {sorted(accepted)[:5]}...")
    if sorted(versions) != expected:
        scenario.problems.append(
            f"audit trail versions {sorted(versions)[:5]}... != accepted {expected[:5]}..."
        )
    final = (await client.get(f"{API}/tickets/{ticket_id}")).json()["version"]
    if final != base + len(accepted):
        scenario.problems.append(f"ticket at version {final}, {len(accepted)} writes accepted after {base}")


async def run_scenarios(base_url: str, agent: dict[str, str], login: tuple[str, str]) -> list[Scenario]:
    """The four scenarios against the API at `base_url` (headers of an agent; a login to storm)."""
    limits = httpx.Limits(
        max_connections=200, max_keepalive_connections=200, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS
    )
    # Slower than the request deadline plus a margin counts as no answer (status 0): a hung server.
    timeout = httpx.Timeout(REQUEST_DEADLINE_SECONDS + 10, pool=None)
    async with httpx.AsyncClient(base_url=base_url, headers=agent, timeout=timeout, limits=limits) as client:
        me = (await client.get(f"{API}/users/me")).json()
        scenarios = []

        moves = Scenario("100 status moves on one ticket")
        ticket = (
            await client.post(f"{API}/tickets/", json={"title": "Contended", "assignee_id": me["id"]})
        ).json()
        started = (
            await client.patch(f"{API}/tickets/{ticket['id']}/status", json={"status": "in_progress"})
        ).json()
        bodies = [
            {"status": "on_hold", "reason": f"waiting {n}"} if n % 2 else {"status": "in_progress"}
            for n in range(100)
        ]
        started_at = time.time()
        results = await _all_at_once(
            client, [("PATCH", f"{API}/tickets/{ticket['id']}/status", {"json": body}) for body in bodies]
        )
        _record(moves, started_at, results)
        if set(moves.statuses) - {200, 409}:
            moves.problems.append(f"unexpected answers {dict(moves.statuses)}")
        accepted = [r.json()["version"] for r, _ in results if r.status_code == 200]
        await _audit(client, moves, ticket["id"], started["version"], accepted)
        scenarios.append(moves)

        edits = Scenario("100 title edits of one ticket")
        ticket = (await client.post(f"{API}/tickets/", json={"title": "Edited"})).json()
        started_at = time.time()
        results = await _all_at_once(
            client,
            [
                ("PATCH", f"{API}/tickets/{ticket['id']}", {"json": {"title": f"edit {n}"}})
                for n in range(100)
            ],
        )
        _record(edits, started_at, results)
        if edits.statuses[200] != 100:
            edits.problems.append(f"expected 100 x 200, got {dict(edits.statuses)}")
        accepted = [r.json()["version"] for r, _ in results if r.status_code == 200]
        await _audit(client, edits, ticket["id"], ticket["version"], accepted)
        scenarios.append(edits)

        guarded = Scenario("50 edits with the same If-Match")
        ticket = (await client.post(f"{API}/tickets/", json={"title": "Guarded"})).json()
        etag = f'"{ticket["version"]}"'
        started_at = time.time()
        results = await _all_at_once(
            client,
            [
                (
                    "PATCH",
                    f"{API}/tickets/{ticket['id']}",
                    {"json": {"title": f"guarded {n}"}, "headers": {"If-Match": etag}},
                )
                for n in range(50)
            ],
        )
        _record(guarded, started_at, results)
        if (guarded.statuses[200], guarded.statuses[412]) != (1, 49):
            guarded.problems.append(f"expected 1 x 200 and 49 x 412, got {dict(guarded.statuses)}")
        accepted = [r.json()["version"] for r, _ in results if r.status_code == 200]
        await _audit(client, guarded, ticket["id"], ticket["version"], accepted)
        scenarios.append(guarded)

        logins = Scenario("30 logins from one address")
        email, password = login
        form = {"username": email, "password": password}
        started_at = time.time()
        results = await _all_at_once(client, [("POST", f"{API}/login/access-token", {"data": form})] * 30)
        _record(logins, started_at, results)
        if set(logins.statuses) - {200, 429} or not logins.statuses[200]:
            logins.problems.append(f"expected 200 and 429 only, got {dict(logins.statuses)}")
        scenarios.append(logins)
    return scenarios


def contend(base_url: str, pool_size: int, agent: dict[str, str], login: tuple[str, str]) -> Report:
    """Run the scenarios against a server with this pool size, polling /health from a subprocess."""
    poller = subprocess.Popen(
        [sys.executable, "-c", HEALTH_POLLER, f"{base_url}/health"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.2)
        scenarios = asyncio.run(run_scenarios(base_url, agent, login))
    finally:
        output, _ = poller.communicate(input="", timeout=30)
    polls = [line.split(":") for line in output.split()]
    latencies = [(float(at), float(ms)) for at, ms in polls if ms != "error"]
    for scenario in scenarios:
        during = [ms for at, ms in latencies if scenario.window[0] <= at <= scenario.window[1] + 0.2]
        scenario.health_slowest_ms = max(during, default=0.0)
    return Report(
        pool_size=pool_size,
        scenarios=scenarios,
        health_polls=len(polls),
        health_errors=len(polls) - len(latencies),
        health_slowest_ms=max((ms for _, ms in latencies), default=0.0),
    )


@contextmanager
def serving(database_url: str, pool_size: int, log: Path, **settings: str) -> Iterator[str]:
    """One uvicorn worker on `database_url` with DB_POOL_SIZE=pool_size; yields its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "DB_POOL_SIZE": str(pool_size), **settings}
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=BACKEND, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_until_healthy(base, process):
                raise RuntimeError(f"the server did not start; see {log}")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def new_agent(database_url: str) -> tuple[str, str]:
    """An agent of its own in the database: (e-mail, password)."""
    from sqlmodel import Session

    from app.core.db import create_db_engine
    from app.factories import DEMO_PASSWORD, UserFactory
    from app.models import Role

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            agent = UserFactory.build(role=Role.agent)
            session.add(agent)
            session.commit()
            return agent.email, DEMO_PASSWORD
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="A migrated database; each run adds an agent of its own to it."
    )
    parser.add_argument("--pool-sizes", type=int, nargs="+", default=[5, 10, 25, 50])
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    bound = REQUEST_DEADLINE_SECONDS
    reports, failed = [], False
    for pool_size in args.pool_sizes:
        # A fresh agent per run: an earlier run's 30 logins must not leave this one's throttled.
        login = new_agent(args.database_url)
        log = Path(f"/tmp/bench-contention-{pool_size}.log")
        with serving(args.database_url, pool_size, log, LOG_LEVEL="WARNING") as base:
            token = httpx.post(
                f"{base}{API}/login/access-token", data={"username": login[0], "password": login[1]}
            ).json()["access_token"]
            report = contend(base, pool_size, {"Authorization": f"Bearer {token}"}, login)
        reports.append(report)
        print("\n".join(report.lines()))
        problems = report.problems(bound_seconds=bound)
        print(
            "  "
            + (
                "; ".join(problems)
                if problems
                else "PASS: no 503, no hang, audit trail exact, /health < 100 ms"
            )
        )
        failed = failed or bool(problems)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "pool_size": r.pool_size,
                        "scenarios": {
                            s.name: {"statuses": dict(s.statuses), "slowest_s": s.slowest}
                            for s in r.scenarios
                        },
                        "health_slowest_ms": r.health_slowest_ms,
                        "health_polls": r.health_polls,
                    }
                    for r in reports
                ],
                indent=2,
            )
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
