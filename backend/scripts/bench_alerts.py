"""Alert intake through a running API: how fast triggers open tickets and count repeats.

    cd backend
    .venv/bin/python scripts/bench_alerts.py --database-url postgresql://postgres@127.0.0.1/benchalerts

Adds an agent of its own to the database (migrated), starts one uvicorn worker on it and sends:

- N triggers with N different dedup keys, one after another (each opens a ticket);
- N triggers with one key, one after another (each adds a note and counts a repeat);
- N triggers with one new key, all at once (C at a time): they queue on the key's row; one ticket.

It prints, per scenario, the answers by result, the requests per second and the median and slowest
answer. tests/api/test_alerts_concurrency.py checks the third scenario's outcome.
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))

from scripts.bench_contention import API, new_agent, serving  # noqa: E402


async def scenario(
    name: str, base: str, headers: dict[str, str], bodies: list[dict[str, Any]], concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)
    results: Counter[str] = Counter()
    timings: list[float] = []
    async with httpx.AsyncClient(base_url=f"{base}{API}", headers=headers, timeout=30) as http:

        async def send(body: dict[str, Any]) -> None:
            async with gate:
                started = time.perf_counter()
                response = await http.post("/alerts/", json=body)
                timings.append(time.perf_counter() - started)
                results[
                    response.json()["result"] if response.status_code == 202 else str(response.status_code)
                ] += 1

        began = time.perf_counter()
        await asyncio.gather(*(send(body) for body in bodies))
        elapsed = time.perf_counter() - began
    print(
        f"{name}: {dict(results)}; {len(bodies) / elapsed:.0f} alerts/s; "
        f"median {statistics.median(timings) * 1000:.1f} ms, slowest {max(timings) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="A migrated database.")
    parser.add_argument("-n", type=int, default=200, help="Alerts per scenario.")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    email, password = new_agent(args.database_url)
    alert = {"action": "trigger", "summary": "Disk full", "severity": "error", "source": "bench"}
    run = uuid.uuid4().hex[:8]
    with serving(args.database_url, 10, Path("/tmp/bench-alerts.log"), LOG_LEVEL="WARNING") as base:
        token = httpx.post(
            f"{base}{API}/login/access-token", data={"username": email, "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        n = args.n
        distinct = [alert | {"dedup_key": f"{run}-{i}"} for i in range(n)]
        asyncio.run(scenario(f"{n} new keys, sequential", base, headers, distinct, 1))
        repeats = [alert | {"dedup_key": f"{run}-repeat"}] * n
        asyncio.run(scenario(f"{n} triggers of one key, sequential", base, headers, repeats, 1))
        burst = [alert | {"dedup_key": f"{run}-burst"}] * n
        asyncio.run(
            scenario(
                f"{n} triggers of one key, {args.concurrency} at a time",
                base,
                headers,
                burst,
                args.concurrency,
            )
        )


if __name__ == "__main__":
    main()
