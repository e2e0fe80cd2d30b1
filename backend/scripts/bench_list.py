"""Benchmark the ticket list on PostgreSQL: filters, selective search, keyset depth, service levels
(the `sla_state=at_risk` filter and the `sla_due_at` sort, whose cursors cross into the tickets
without a due time), and the floor.

One uvicorn worker serves the app; another serves scripts/bench_floor.py (Starlette + psycopg, the
same SQL and JSON); wrk loads each case from loopback and reports req/s and latency percentiles.

    cd backend
    .venv/bin/python scripts/bench_list.py --database-url postgresql://postgres@127.0.0.1/incident_desk_bench \
        --seed-tickets 1000000          # omit --seed-tickets to reuse an already seeded database

Needs wrk (apt-get install wrk) and Linux (/proc). Prints a table, and the JSON figures with --json FILE;
beside wrk's figures, each case shows the server's CPU time per request and the machine's steal time.
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))
# One key for the app, the floor and this script: list cursors are signed with it (the deep-page
# cursor below is made here), so it is set before the app's settings are first read.
SECRET_KEY = secrets.token_urlsafe(48)
os.environ["SECRET_KEY"] = SECRET_KEY

from benchkit import free_port, wait_until_healthy  # noqa: E402

from app.factories import DEMO_PASSWORD  # noqa: E402
from app.models import Role, TicketQuery  # noqa: E402
from app.seed import DEMO_LOGINS  # noqa: E402
from app.ticket_query import encode_cursor, query_fingerprint  # noqa: E402

# The cases the summary compares.
LIST_API, LIST_FLOOR = "list: 2 filters, limit 50 (API)", "list: 2 filters, limit 50 (floor)"
EXACT_API, EXACT_FLOOR = "list: same, exact_count (API)", "list: same, exact_count (floor)"
SECOND_PAGE, DEEP_PAGE = "keyset: 2nd page", "keyset: page at 90 % depth"

WRK_SCRIPT = """
local token = os.getenv("BENCH_TOKEN")
wrk.headers["Authorization"] = token and ("Bearer " .. token) or nil
-- Writes (BENCH_METHOD, BENCH_BODY): POST a body as it is; with BENCH_IDS (a file of ticket ids, one
-- per line), each request goes to the next id, every thread taking its own share, so that each
-- ticket gets one request (e.g. one lifecycle move).
local method, body, idfile = os.getenv("BENCH_METHOD"), os.getenv("BENCH_BODY"), os.getenv("BENCH_IDS")
local threads, ids, counter, stride = 0, {}, 0, 1
if method and method ~= "" then
  wrk.method = method
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
setup = function(thread) thread:set("offset", threads); threads = threads + 1 end
init = function(args)
  counter = tonumber(offset) or 0
  stride = 2
  if idfile and idfile ~= "" then for line in io.lines(idfile) do ids[#ids + 1] = line end end
end
request = function()
  if #ids == 0 then return wrk.format() end
  counter = counter + stride
  local id = ids[(counter % #ids) + 1]
  local path = string.gsub(wrk.path, "{id}", id)
  return wrk.format(nil, path)
end
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def psql_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def seed(url: str, tickets: int) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    started = time.monotonic()
    subprocess.run(
        [str(BACKEND / ".venv/bin/db"), "seed", "--tickets", str(tickets), "--users", "2000", "--seed", "1", "--yes"],
        cwd=BACKEND, env=env, check=True,
    )  # fmt: skip
    print(f"seeded {tickets:,} tickets in {time.monotonic() - started:.0f} s")


def serve(module: str, url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DB_POOL_SIZE": "20",
        # As deployed: production settings (JSON log lines, a real key), one worker.
        "ENVIRONMENT": "production",
        "SECRET_KEY": SECRET_KEY,
        "FIRST_SUPERUSER_PASSWORD": secrets.token_urlsafe(24),
    }
    proc = subprocess.Popen(
        [str(BACKEND / ".venv/bin/uvicorn"), module, "--port", str(port), "--workers", "1",
         "--no-access-log", "--log-level", "warning"],
        cwd=BACKEND, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    if wait_until_healthy(base, proc):
        return proc, base
    proc.kill()
    raise SystemExit(f"{module} did not start; see {log}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the machine so far: steal is time the hypervisor gave elsewhere."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    return steal, user + nice + system + idle + iowait + irq + softirq + steal


def wrk(
    url: str,
    token: str | None,
    seconds: int,
    connections: int,
    script: Path,
    server_pid: int,
    write: dict[str, str] | None = None,
) -> dict[str, Any]:
    """wrk's figures, plus the CPU the server spent per request and the machine's steal time.
    `write`: BENCH_METHOD, BENCH_BODY and BENCH_IDS for the write cases (see WRK_SCRIPT)."""
    env = {**os.environ, "BENCH_TOKEN": token or "", **(write or {})}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    cpu_before, (steal_before, ticks_before) = process_cpu_seconds(server_pid), machine_ticks()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    cpu = process_cpu_seconds(server_pid) - cpu_before
    steal_after, ticks_after = machine_ticks()
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    result["server_cpu_ms"] = cpu * 1000 / max(result["requests"], 1)
    result["steal_pct"] = (steal_after - steal_before) * 100 / max(ticks_after - ticks_before, 1)
    return result


def matches(conn: psycopg.Connection[Any], word: str) -> int:
    """Tickets a search for `word` finds: its own text or a comment."""
    row = conn.execute(
        "SELECT count(*) FROM (SELECT id FROM tickets WHERE search_vector @@ plainto_tsquery('english', %(w)s) "
        "UNION SELECT ticket_id FROM comments WHERE search_vector @@ plainto_tsquery('english', %(w)s)) AS m",
        {"w": word},
    ).fetchone()
    assert row is not None
    return int(row[0])


def rare_terms(conn: psycopg.Connection[Any], total: int) -> list[tuple[str, int]]:
    """Two selective words, each found in under 1 % of tickets: the most frequent such word in the
    tickets' own text, and the one found mostly through comments."""
    found = []
    for vectors in ("SELECT search_vector FROM tickets", "SELECT search_vector FROM comments"):
        candidates = conn.execute(
            "SELECT word FROM ts_stat(%s) WHERE ndoc < %s AND word ~ '^[[:alnum:]]+$' "
            "ORDER BY ndoc DESC, word LIMIT 20",
            (vectors, total * 0.01),
        ).fetchall()
        hits = ((w, matches(conn, w)) for (w,) in candidates if w not in dict(found))
        chosen = next(((w, n) for w, n in hits if n < total * 0.01), None)
        if chosen is None:
            raise SystemExit("no word is found in under 1 % of tickets")
        found.append(chosen)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--seed-tickets", type=int, help="(Re)seed the database with this many tickets first."
    )
    parser.add_argument("--seconds", type=int, default=20, help="Duration of each wrk run.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument(
        "--cases", nargs="*", help="Run only the cases whose names contain one of these (default: all)."
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if args.seed_tickets:
        seed(args.database_url, args.seed_tickets)
    with psycopg.connect(psql_url(args.database_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        total = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]  # type: ignore[index]
        (term, term_hits), (comment_term, comment_term_hits) = rare_terms(conn, total)
        open_ids = [
            row[0] for row in conn.execute("SELECT id FROM tickets WHERE status = 'open' ORDER BY id")
        ]
        depth = int(total * 0.9)
        deep = conn.execute(
            "SELECT created_at, id FROM tickets ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1", (depth,)
        ).fetchone()
        assert deep is not None
    cursor = encode_cursor("created_at", deep[0], deep[1], query_fingerprint(TicketQuery.model_validate({})))

    workdir = Path(tempfile.mkdtemp(prefix="bench-list-"))
    script = workdir / "report.lua"
    script.write_text(WRK_SCRIPT)
    app_proc, app_base = serve("app.main:app", args.database_url, workdir / "app.log")
    floor_proc, floor_base = serve("scripts.bench_floor:app", args.database_url, workdir / "floor.log")
    try:
        login = httpx.post(
            f"{app_base}/api/v1/login/access-token",
            data={"username": DEMO_LOGINS[Role.agent], "password": DEMO_PASSWORD},
        )
        token = login.json()["access_token"]
        filters = "status=open&priority=high&limit=50"
        exact = f"{filters}&exact_count=true"
        for query in (filters, exact):
            ours = httpx.get(
                f"{app_base}/api/v1/tickets/?{query}", headers={"Authorization": f"Bearer {token}"}
            ).json()
            floor = httpx.get(f"{floor_base}/floor/tickets?{query}").json()
            assert ours == floor, "the floor must return the same JSON as the API"
        second = httpx.get(
            f"{app_base}/api/v1/tickets/?limit=50", headers={"Authorization": f"Bearer {token}"}
        )
        deep_page = httpx.get(
            f"{app_base}/api/v1/tickets/?limit=50&cursor={cursor}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert deep_page.status_code == 200 and deep_page.json()["data"], deep_page.text
        # By due time: the 2nd page, and the first page of the tickets without one (a cursor on the
        # last ticket that has a due time).
        by_due = httpx.get(
            f"{app_base}/api/v1/tickets/?sort=sla_due_at&limit=50",
            headers={"Authorization": f"Bearer {token}"},
        )
        with psycopg.connect(psql_url(args.database_url)) as conn:
            last_due = conn.execute(
                "SELECT sla_due_at, id FROM tickets WHERE sla_due_at IS NOT NULL ORDER BY sla_due_at DESC, id DESC LIMIT 1"
            ).fetchone()
            at_risk = conn.execute("SELECT count(*) FROM tickets WHERE sla_state = 'at_risk'").fetchone()
        assert last_due is not None and at_risk is not None
        due_query = query_fingerprint(TicketQuery.model_validate({"sort": "sla_due_at"}))
        into_nulls = encode_cursor("sla_due_at", last_due[0], last_due[1], due_query)
        cases = [
            (LIST_API, f"{app_base}/api/v1/tickets/?{filters}", token),
            (LIST_FLOOR, f"{floor_base}/floor/tickets?{filters}", None),
            (EXACT_API, f"{app_base}/api/v1/tickets/?{exact}", token),
            (EXACT_FLOOR, f"{floor_base}/floor/tickets?{exact}", None),
            (f"search q={term} ({term_hits} hits)", f"{app_base}/api/v1/tickets/?q={term}&limit=50", token),
            (
                f"search q={comment_term} ({comment_term_hits} hits, comments)",
                f"{app_base}/api/v1/tickets/?q={comment_term}&limit=50",
                token,
            ),
            ("first page, no filter", f"{app_base}/api/v1/tickets/?limit=50", token),
            (
                f"sla: sla_state=at_risk ({at_risk[0]} match), limit 50",
                f"{app_base}/api/v1/tickets/?sla_state=at_risk&limit=50",
                token,
            ),
            ("sla: sort=sla_due_at, limit 50", f"{app_base}/api/v1/tickets/?sort=sla_due_at&limit=50", token),
            (
                "sla: sort=sla_due_at, 2nd page",
                f"{app_base}/api/v1/tickets/?sort=sla_due_at&limit=50&cursor={by_due.json()['next_cursor']}",
                token,
            ),
            (
                "sla: sort=sla_due_at, page into the nulls",
                f"{app_base}/api/v1/tickets/?sort=sla_due_at&limit=50&cursor={into_nulls}",
                token,
            ),
            (
                "sla: sort=-sla_due_at, limit 50",
                f"{app_base}/api/v1/tickets/?sort=-sla_due_at&limit=50",
                token,
            ),
            (
                "sla: sla_state=breached&sort=sla_due_at",
                f"{app_base}/api/v1/tickets/?sla_state=breached&sort=sla_due_at&limit=50",
                token,
            ),
            (
                SECOND_PAGE,
                f"{app_base}/api/v1/tickets/?limit=50&cursor={second.json()['next_cursor']}",
                token,
            ),
            (DEEP_PAGE, f"{app_base}/api/v1/tickets/?limit=50&cursor={cursor}", token),
            # What every request pays before the list's own work: the framework and middleware alone,
            # then with authentication (the token, and the user read through the ORM).
            ("cost of the stack: GET /ping", f"{app_base}/ping", None),
            ("cost of the stack + auth: GET /users/me", f"{app_base}/api/v1/users/me", token),
            # Single requests (the request path of issue [4/8]): a read, a create, a lifecycle move.
            ("GET /tickets/{id}", f"{app_base}/api/v1/tickets/{open_ids[-1]}", token),
            ("POST /tickets/", f"{app_base}/api/v1/tickets/", token),
            (
                "PATCH /tickets/{id}/status (open -> cancelled)",
                f"{app_base}/api/v1/tickets/{{id}}/status",
                token,
            ),
        ]
        writes = {
            "POST /tickets/": {
                "BENCH_METHOD": "POST",
                "BENCH_BODY": json.dumps({"title": "Printer on fire"}),
            },
            "PATCH /tickets/{id}/status (open -> cancelled)": {
                "BENCH_METHOD": "PATCH",
                "BENCH_BODY": json.dumps({"status": "cancelled", "reason": "Duplicate"}),
            },
        }
        unmoved = list(open_ids[:-1])  # each move takes tickets no run has moved yet
        results: dict[str, dict[str, Any]] = {}
        for name, url, auth in cases:
            if args.cases and not any(wanted in name for wanted in args.cases):
                continue
            pid = (floor_proc if url.startswith(floor_base) else app_proc).pid
            runs = []
            for seconds in (3, args.seconds):  # a warm-up, then the measured run
                write = dict(writes.get(name, {}))
                if "{id}" in url:
                    share, unmoved = unmoved[: seconds * 2000], unmoved[seconds * 2000 :]
                    ids_file = workdir / f"ids-{len(unmoved)}.txt"
                    ids_file.write_text("\n".join(map(str, share)))
                    write["BENCH_IDS"] = str(ids_file)
                runs.append(wrk(url, auth, seconds, args.connections, script, pid, write))
            results[name] = runs[-1]
            r = runs[-1]
            print(
                f"{name:52} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  "
                f"non-2xx {r['non2xx']}  cpu {r['server_cpu_ms']:.2f} ms/req  steal {r['steal_pct']:.1f} %",
                flush=True,
            )
    finally:
        for proc in (app_proc, floor_proc):
            proc.terminate()
            proc.wait(timeout=15)

    print(
        f"\n{total:,} tickets on PostgreSQL; one uvicorn worker; wrk -t2 -c{args.connections} -d{args.seconds}s\n"
    )
    # cpu ms/req: CPU time of the serving process per request (its own cost, whatever else runs);
    # steal %: machine CPU time the hypervisor gave to other guests during the case (noise).
    print(
        f"{'case':52} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'cpu ms/req':>11} {'steal %':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:52} {r['rps']:8.0f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} {r['non2xx']:8d} "
            f"{r['server_cpu_ms']:11.2f} {r['steal_pct']:8.1f}"
        )
    if not all(n in results for n in (LIST_API, LIST_FLOOR, EXACT_API, EXACT_FLOOR, SECOND_PAGE, DEEP_PAGE)):
        return  # a partial run (--cases): no summary
    api, floor_r, api_exact, floor_exact = (
        results[n] for n in (LIST_API, LIST_FLOOR, EXACT_API, EXACT_FLOOR)
    )
    near, deep_r = results[SECOND_PAGE], results[DEEP_PAGE]
    summary = {
        "tickets": total,
        "throughput_vs_floor": api["rps"] / floor_r["rps"],
        "throughput_vs_floor_exact_count": api_exact["rps"] / floor_exact["rps"],
        "server_cpu_ms_api": api["server_cpu_ms"],
        "server_cpu_ms_floor": floor_r["server_cpu_ms"],
        "deep_vs_near_p50": deep_r["p50_ms"] / near["p50_ms"],
        "deep_vs_near_p95": deep_r["p95_ms"] / near["p95_ms"],
    }
    print(
        f"\nAPI/floor throughput: {summary['throughput_vs_floor']:.2f}x, with exact_count "
        f"{summary['throughput_vs_floor_exact_count']:.2f}x (target >= 0.6); server CPU per list request: "
        f"API {summary['server_cpu_ms_api']:.2f} ms, floor {summary['server_cpu_ms_floor']:.2f} ms; "
        f"keyset page at 90 % depth / 2nd page: p50 {summary['deep_vs_near_p50']:.2f}x, "
        f"p95 {summary['deep_vs_near_p95']:.2f}x (target <= 1.5)"
    )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": results}, indent=2))


if __name__ == "__main__":
    main()
