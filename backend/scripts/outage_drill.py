"""Outage drill: stop (or freeze) PostgreSQL under load; the API answers 503 fast, then recovers by itself.

Run from backend/ with the venv (about 40 s, at most 2 minutes):

    .venv/bin/python scripts/outage_drill.py
    .venv/bin/python scripts/outage_drill.py --healthy 5 --outage 10 --recovery 10 --threads 8
    .venv/bin/python scripts/outage_drill.py --mode freeze

It runs its OWN PostgreSQL cluster: `initdb` in a temporary folder, started on a free port of
127.0.0.1 with its socket in that folder (as the `postgres` user when this runs as root, since
initdb refuses root). The shared server on 127.0.0.1:5432 is never touched. One API server (the
Dockerfile's command) runs against it, and client threads list, read and create tickets (creates
carry an Idempotency-Key and are retried with it until acknowledged) while a poller reads
/db-health every 0.25 s.

Timeline: --healthy seconds of load -> `pg_ctl stop -m immediate` -> --outage seconds ->
`pg_ctl start` -> --recovery seconds. The API process is never restarted.

`--mode freeze` stops the cluster's processes with SIGSTOP instead (and SIGCONT at the end): the
server keeps every connection open and the kernel still accepts new ones, but nothing answers, as
with a hung host or a network that drops packets. No database timeout fires on a connection that
is already waiting for an answer; the API's request deadline (API_REQUEST_TIMEOUT_SECONDS, set to
--deadline for the drill) answers 503 instead.

Checks (exit status 1 if one fails):
- healthy: no 5xx;
- outage: every request is answered (no hang, no dropped connection) with 503, within
  DB_CONNECT_TIMEOUT_SECONDS (2 s; freeze: the deadline + 1 s); /db-health answers 503
  `unreachable`; /health (no database) keeps answering within 0.5 s;
- recovery: requests succeed again and /db-health is 200 within 5 s of PostgreSQL accepting
  connections, with no 5xx after that;
- writes: every acknowledged create is in the database exactly once.
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import API, People, prepare, running_server
from benchkit import free_port

from app.core.config import get_settings
from app.core.db import create_db_engine
from app.models import Ticket

RECOVERY_BOUND = 5.0


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit("outage_drill: no PostgreSQL server binaries (apt-get install postgresql)")
    return Path(found[-1]).parent


@dataclass
class Cluster:
    """A throw-away PostgreSQL cluster of our own."""

    bin: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "pg.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, walwriter, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
        return [postmaster, *(int(pid) for pid in children.stdout.split())]

    def signal_all(self, signum: signal.Signals) -> None:
        for pid in self.processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signum)


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="incident-desk-outage-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(bin_dir, root, free_port(), as_user)
    try:
        cluster.run(
            str(bin_dir / "initdb"),
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        cluster.start()
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop("fast")
        shutil.rmtree(root, ignore_errors=True)


def create_database(cluster: Cluster) -> str:
    admin = create_engine(
        cluster.url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE incident_desk_drill"))
    admin.dispose()
    return cluster.url.removesuffix("/postgres") + "/incident_desk_drill"


# --- Load and observation -------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Observations:
    samples: list[Sample] = field(default_factory=list)
    health: list[tuple[float, int, str]] = field(default_factory=list)
    liveness: list[Sample] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # idempotency key -> ticket id
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(base: str, headers: dict[str, str], seen: Observations, stop: threading.Event, n: int) -> None:
    with httpx.Client(base_url=f"{base}{API}", headers=headers, timeout=10) as http:
        pending: str | None = None  # a create not acknowledged yet: retried with the same key
        step = 0
        while not stop.is_set():
            step += 1
            kind = ("create", "list", "read")[step % 3]
            started = time.perf_counter()
            try:
                if kind == "create":
                    pending = pending or f"drill-{n}-{uuid.uuid4().hex[:8]}"
                    response = http.post(
                        "/tickets/", json={"title": pending}, headers={"Idempotency-Key": pending}
                    )
                    if response.status_code == 201:
                        with seen.lock:
                            seen.acknowledged[pending] = response.json()["id"]
                        pending = None
                elif kind == "list":
                    response = http.get("/tickets/", params={"limit": 10})
                else:
                    response = http.get("/users/me")
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            with seen.lock:
                seen.samples.append(Sample(kind, status, started, time.perf_counter()))
            time.sleep(0.01)


def poll_liveness(base: str, seen: Observations, stop: threading.Event) -> None:
    """/health touches no database: the event loop must keep answering it whatever the database does."""
    with httpx.Client(base_url=base, timeout=10) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = http.get("/health").status_code
            except httpx.HTTPError:
                status = 0
            with seen.lock:
                seen.liveness.append(Sample("health", status, started, time.perf_counter()))
            time.sleep(0.1)


def poll_health(base: str, seen: Observations, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        while not stop.is_set():
            try:
                response = http.get("/db-health")
                status, state = response.status_code, response.json().get("status", "")
            except (httpx.HTTPError, ValueError):
                status, state = 0, "no answer"
            with seen.lock:
                seen.health.append((time.perf_counter(), status, state))
            time.sleep(0.25)


# --- The drill ------------------------------------------------------------------------------------


def stored_titles(database_url: str) -> Counter[str]:
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            return Counter(session.exec(select(Ticket.title)).all())
    finally:
        engine.dispose()


def drill(args: argparse.Namespace) -> int:
    freeze = args.mode == "freeze"
    bound = args.deadline + 1.0 if freeze else float(get_settings().DB_CONNECT_TIMEOUT_SECONDS)
    with own_cluster() as cluster, tempfile.TemporaryDirectory(prefix="outage-drill-") as tmp:
        url = create_database(cluster)
        people: People = prepare(url, agents=args.threads, reporters=0)
        print(f"own PostgreSQL cluster on 127.0.0.1:{cluster.port} ({cluster.bin}), data in {cluster.root}")
        env = {"API_REQUEST_TIMEOUT_SECONDS": str(args.deadline)}
        with running_server(url, Path(tmp) / "server.log", **env) as base:
            seen, stop = Observations(), threading.Event()
            threads = [
                threading.Thread(target=client, args=(base, people.headers(agent), seen, stop, n))
                for n, agent in enumerate(people.agents)
            ]
            threads.append(threading.Thread(target=poll_health, args=(base, seen, stop)))
            threads.append(threading.Thread(target=poll_liveness, args=(base, seen, stop)))
            for thread in threads:
                thread.start()
            time.sleep(args.healthy)
            stop_began = time.perf_counter()
            if freeze:
                cluster.signal_all(signal.SIGSTOP)
            else:
                cluster.stop("immediate")
            stopped = time.perf_counter()
            how = "frozen (SIGSTOP to every process)" if freeze else "stopped (pg_ctl stop -m immediate)"
            print(f"PostgreSQL {how}, {stopped - stop_began:.2f} s")
            time.sleep(args.outage)
            start_began = time.perf_counter()
            if freeze:
                cluster.signal_all(signal.SIGCONT)
            else:
                cluster.start()
            accepting = time.perf_counter()
            how = "thawed (SIGCONT)" if freeze else "started again (pg_ctl start)"
            print(f"PostgreSQL {how}, {accepting - start_began:.2f} s")
            time.sleep(args.recovery)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        titles = stored_titles(url)
        server_log = (Path(tmp) / "server.log").read_text()

    def during(lo: float, hi: float) -> list[Sample]:
        return [s for s in seen.samples if s.started >= lo and s.ended <= hi]

    healthy = during(0, stop_began)
    outage = during(stopped, start_began)
    in_flight_at_stop = [s for s in seen.samples if s.started < stopped and s.ended > stop_began]
    after = [s for s in seen.samples if s.started >= accepting]
    first_ok = min((s.ended for s in after if 200 <= s.status < 300), default=None)
    health_out = [(status, state) for t, status, state in seen.health if stopped + 0.1 <= t <= start_began]
    health_ok = min((t for t, status, _ in seen.health if t >= accepting and status == 200), default=None)
    recovered = first_ok if first_ok is not None else float("inf")
    after_recovery = [s for s in after if s.started >= recovered]

    def statuses(samples: list[Sample]) -> str:
        return ", ".join(
            f"{k or 'no answer'}: {v}" for k, v in sorted(Counter(s.status for s in samples).items())
        )

    def max_ms(samples: list[Sample]) -> float:
        return max((s.seconds for s in samples), default=0.0) * 1000

    print(f"\nhealthy   {len(healthy):>5} requests: {statuses(healthy)}; max {max_ms(healthy):.0f} ms")
    print(
        f"at stop   {len(in_flight_at_stop):>5} in flight: {statuses(in_flight_at_stop)}; max {max_ms(in_flight_at_stop):.0f} ms"
    )
    print(
        f"outage    {len(outage):>5} requests: {statuses(outage)}; max {max_ms(outage):.0f} ms (bound {bound * 1000:.0f} ms)"
    )
    print(f"          /db-health during the outage: {dict(Counter(f'{s} {st}' for s, st in health_out))}")
    live_out = [s for s in seen.liveness if s.ended >= stop_began and s.started <= accepting]
    print(f"          /health during the outage: {statuses(live_out)}; max {max_ms(live_out):.0f} ms")
    first_503 = min((s.ended - stopped for s in outage + in_flight_at_stop if s.status == 503), default=None)
    if first_503 is not None:
        print(f"          first 503 {first_503:.2f} s after the {'freeze' if freeze else 'stop'}")
    print(f"recovery  {len(after):>5} requests: {statuses(after)}")
    first = f"{recovered - accepting:.2f} s" if first_ok else "never"
    health_back = f"{health_ok - accepting:.2f} s" if health_ok else "never"
    print(
        f"          first success {first} after PostgreSQL accepted connections; /db-health 200 after {health_back}"
    )
    print(f"          after the first success: {statuses(after_recovery)}")
    if any(s.status == 409 for s in after_recovery):
        print(
            "          (409: retries of a create whose request the outage cut short after it had taken its"
            " Idempotency-Key; the key is free again 60 s after that request began)"
        )
    duplicates = sum(1 for title in seen.acknowledged if titles[title] != 1)
    print(
        f"writes    {len(seen.acknowledged)} creates acknowledged; stored exactly once: {len(seen.acknowledged) - duplicates}"
    )

    failures = []
    if any(s.status >= 500 or s.status == 0 for s in healthy):
        failures.append("errors while healthy")
    if not outage or any(s.status != 503 for s in outage):
        failures.append("not every request during the outage was a 503")
    if any(s.status == 0 for s in in_flight_at_stop) or any(s.status == 0 for s in outage):
        failures.append("requests left without an answer")
    if max_ms(outage) > bound * 1000 or max_ms(in_flight_at_stop) > bound * 1000:
        failures.append(f"a request took longer than {bound:.0f} s during the outage")
    if not health_out or any((s, st) != (503, "unreachable") for s, st in health_out):
        failures.append("/db-health did not report the outage")
    if not live_out or any(s.status != 200 or s.seconds > 0.5 for s in live_out):
        failures.append("/health did not keep answering within 0.5 s")
    if first_ok is None or recovered - accepting > RECOVERY_BOUND:
        failures.append("no recovery within 5 s")
    if health_ok is None or health_ok - accepting > RECOVERY_BOUND:
        failures.append("/db-health did not recover within 5 s")
    if any(s.status >= 500 or s.status == 0 for s in after_recovery):
        failures.append("5xx after recovery")
    if duplicates:
        failures.append(f"{duplicates} acknowledged creates not stored exactly once")
    if failures:
        kept = Path(tempfile.gettempdir()) / f"outage-drill-server-{os.getpid()}.log"
        kept.write_text(server_log)
        unanswered = [(s.kind, round(s.started - stop_began, 3)) for s in seen.samples if s.status == 0]
        print(f"unanswered (kind, seconds after the stop): {unanswered[:10]}; server log kept at {kept}")
    print("RESULT: " + ("FAIL: " + "; ".join(failures) if failures else "PASS"))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=float, default=5.0, help="seconds of load before the stop")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--recovery", type=float, default=10.0, help="seconds of load after the restart")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument(
        "--mode",
        choices=("stop", "freeze"),
        default="stop",
        help="stop: pg_ctl stop -m immediate; freeze: SIGSTOP every PostgreSQL process",
    )
    parser.add_argument(
        "--deadline", type=int, default=4, help="the server's API_REQUEST_TIMEOUT_SECONDS (default 4)"
    )
    args = parser.parse_args()
    if args.healthy + args.outage + args.recovery > 90:
        parser.error("the drill is bounded: healthy + outage + recovery must stay under 90 s")
    return drill(args)


if __name__ == "__main__":
    sys.exit(main())
