"""The worker: the project's one background process (`worker`, a compose service beside the API).

Each pass runs every job in `JOBS`, in order, and each job does all the work that is due (in
batches, each batch one transaction) and returns how much it did. The jobs are the SLA clock
(warnings and breaches whose time has come), the recomputes a calendar or policy change queued,
the outbound webhooks (app.crud.webhook_delivery), and the notification outbox (app.crud.delivery: e-mails sent, retried with backoff, dead after
NOTIFY_MAX_ATTEMPTS; its counters are served on WORKER_METRICS_PORT when set). Jobs claim their rows with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers (replicas) share the work without doing any of it twice; on SQLite
one worker is enough.

`worker --once` runs one pass and exits (cron-style deployments, tests): 0, or 1 when a job failed. Otherwise a pass runs every
WORKER_INTERVAL_SECONDS; SIGTERM or SIGINT lets the job in hand finish its batch (the outbox: the message in hand) and
stops the process with exit code 0. A job that fails (the database is away) is logged and tried again at the
next pass; the worker keeps running.
"""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from app.core.config import get_settings
from app.core.database import Database, create_async_db_engine
from app.core.logging import configure_logging, log_format
from app.core.metrics import WorkerMetrics
from app.crud import delivery, sla_clock, webhook_delivery
from app.models import NotificationChannel

logger = logging.getLogger("app.worker")

# job(db, batch size, stop) -> how many items it handled; it stops between batches once `stop` is set.
Job = Callable[[Database, int, asyncio.Event | None], Awaitable[int]]


async def _sla_clock(db: Database, batch: int, stop: asyncio.Event | None) -> int:
    return await sla_clock.clock_pass(db, batch=batch, stop=stop)


async def _sla_recompute(db: Database, batch: int, stop: asyncio.Event | None) -> int:
    return await sla_clock.recompute_pass(db, batch=batch, stop=stop)


async def _webhooks(db: Database, batch: int, stop: asyncio.Event | None) -> int:
    return await webhook_delivery.delivery_pass(db, batch=batch, stop=stop)


# This process's counters (served on WORKER_METRICS_PORT when set).
METRICS = WorkerMetrics(channel.value for channel in NotificationChannel)


async def _notifications(db: Database, batch: int, stop: asyncio.Event | None) -> int:
    result = await delivery.delivery_pass(db, batch=batch, stop=stop)
    for (channel, outcome), count in result.counts.items():
        METRICS.count(channel, outcome, count)
    return result.handled


# The project's one worker: each pass runs these, in order (the outbox last: a warning or breach the
# SLA clock records, or a webhook endpoint the webhooks job disables, queues notifications that are
# sent in the same pass).
JOBS: dict[str, Job] = {
    "sla_clock": _sla_clock,
    "sla_recompute": _sla_recompute,
    "webhooks": _webhooks,
    "notifications": _notifications,
}


async def run_pass(db: Database, *, batch: int, stop: asyncio.Event | None = None) -> dict[str, int | None]:
    """Every job once; a failed job counts as None (logged). Stops between jobs when `stop` is set."""
    done: dict[str, int | None] = {}
    for name, job in JOBS.items():
        if stop is not None and stop.is_set():
            break
        started = time.perf_counter()
        try:
            done[name] = count = await job(db, batch, stop)
        except Exception as exc:  # the next pass tries again
            done[name] = None
            logger.error(
                "worker job %s failed: %s", name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            )
            continue
        finally:
            with contextlib.suppress(Exception):  # a connection lost with the database
                await db.end_reads()
        if count:
            logger.info(
                "worker job %s handled %d in %.0f ms", name, count, (time.perf_counter() - started) * 1000
            )
    return done


async def serve(*, once: bool, interval: float, batch: int) -> int:
    settings = get_settings()
    if settings.WORKER_METRICS_PORT:
        METRICS.serve(settings.WORKER_METRICS_PORT)
    engine = create_async_db_engine(settings.SQLALCHEMY_DATABASE_URI)
    db = Database(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if once:
            done = await run_pass(db, batch=batch, stop=stop)
            return 1 if any(count is None for count in done.values()) else 0
        logger.info("worker started: jobs %s every %.1f s", ", ".join(JOBS), interval)
        while not stop.is_set():
            await run_pass(db, batch=batch, stop=stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        logger.info("worker stopped")
        return 0
    finally:
        await db.close()
        await engine.dispose()


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(help="Run the background work: the SLA clock, recomputes, and the notification outbox.")
def main(
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass over everything due, then exit.")
    ] = False,
    interval: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds between passes (default WORKER_INTERVAL_SECONDS).")
    ] = None,
) -> None:
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, log_format(settings))
    code = asyncio.run(
        serve(
            once=once, interval=interval or settings.WORKER_INTERVAL_SECONDS, batch=settings.WORKER_BATCH_SIZE
        )
    )
    raise typer.Exit(code)
