"""Prometheus metrics, in a registry of their own per app (several apps can live in one process).

- `incident_desk_http_requests_total{method,route,status}` and
  `incident_desk_http_request_duration_seconds{method,route,status}`: by route template, never the
  raw path; fed by app.api.context_middleware.RequestContextMiddleware.
- `incident_desk_http_requests_in_flight`: requests being served now.
- `incident_desk_db_pool_*`: the engine's connection pool, read at scrape time (no query).
- `incident_desk_tickets{status}`: one query per scrape. When the database fails, the scrape still
  answers with everything else, leaves this family out and counts
  `incident_desk_metrics_scrape_errors_total`.
- `incident_desk_outbox_pending{channel}`, `incident_desk_outbox_dead{channel}` and
  `incident_desk_outbox_oldest_pending_age_seconds{channel}`: the notification outbox, read from
  the table at scrape time with the ticket counts (the same for every API process: the whole
  outbox, whichever worker delivers it).

The worker (`worker`) has counters of its own, `WorkerMetrics`, served on WORKER_METRICS_PORT:
`incident_desk_notifications_total{channel,outcome}` (sent, failed, dead, skipped), per worker
process since it started (Prometheus sums the replicas).

Counts are per process: run one server process per container (as the Dockerfile does), or scrape
each worker separately.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger("app.metrics")
# No `*_created` series: they double the output and nothing here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds; the API's requests take milliseconds, a database outage up to DB_CONNECT_TIMEOUT_SECONDS.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_LABELS = ("method", "route", "status")


class PoolCollector(Collector):
    """The connection pool of the process-wide engine (the request path's), read when scraped."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        pool = self.engine().pool
        readings = {
            "size": ("Connections the pool keeps open (DB_POOL_SIZE)", "size"),
            "checked_out": ("Connections in use by requests now", "checkedout"),
            "checked_in": ("Idle connections in the pool", "checkedin"),
            "overflow": ("Connections open beyond the pool size now", "overflow"),
        }
        for name, (documentation, method) in readings.items():
            read = getattr(pool, method, None)
            if read is None:  # a pool class without this reading (e.g. StaticPool)
                continue
            yield GaugeMetricFamily(f"incident_desk_db_pool_{name}", documentation, value=max(0, int(read())))


class Metrics:
    def __init__(self, engine: Callable[[], Any], statuses: Iterable[str]) -> None:
        self.statuses = list(statuses)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "incident_desk_http_requests",
            "HTTP requests answered, by method, route template and status",
            HTTP_LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "incident_desk_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            HTTP_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "incident_desk_http_requests_in_flight", "HTTP requests being served now", registry=self.registry
        )
        self.tickets = Gauge(
            "incident_desk_tickets",
            "Tickets by status (read at scrape time)",
            ["status"],
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "incident_desk_metrics_scrape_errors",
            "Scrapes that could not read the database (incident_desk_tickets left out)",
            registry=self.registry,
        )
        self.registry.register(PoolCollector(engine))
        self.outbox = OutboxCollector()
        self.registry.register(self.outbox)

    # app.api.context_middleware.RequestObserver
    def request_started(self) -> None:
        self.in_flight.inc()

    def request_finished(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self, ticket_counts: dict[str, int] | None, outbox: "OutboxReading | None" = None) -> bytes:
        """The Prometheus text exposition. `ticket_counts` (tickets by status, read by the caller):
        None when the database could not be read, which leaves that family out and is counted;
        `outbox` likewise (the outbox families left out when None)."""
        if ticket_counts is None:
            self.scrape_errors.inc()
            self.tickets.clear()
        else:
            for status in self.statuses:
                self.tickets.labels(status).set(ticket_counts.get(status, 0))
        self.outbox.reading = outbox
        return generate_latest(self.registry)


@dataclass(frozen=True)
class OutboxReading:
    """The outbox by channel, as read at a scrape: rows pending (due or waiting for a retry), rows
    dead, and the age of the oldest pending row in seconds (0 when none is pending). Every channel
    is a key of each (the reader fills in the zeros)."""

    pending: dict[str, int]
    dead: dict[str, int]
    oldest_pending_seconds: dict[str, float]


class OutboxCollector(Collector):
    """The last reading handed to `Metrics.render` (none: the families are left out)."""

    def __init__(self) -> None:
        self.reading: OutboxReading | None = None

    def collect(self) -> Iterable[Metric]:
        reading = self.reading
        if reading is None:
            return
        families = (
            (
                "incident_desk_outbox_pending",
                "Notifications waiting to be sent (due or retrying)",
                reading.pending,
            ),
            (
                "incident_desk_outbox_dead",
                "Notifications every attempt failed for (re-queue them)",
                reading.dead,
            ),
            (
                "incident_desk_outbox_oldest_pending_age_seconds",
                "Age of the oldest notification waiting to be sent",
                reading.oldest_pending_seconds,
            ),
        )
        for name, documentation, values in families:
            family = GaugeMetricFamily(name, documentation, labels=["channel"])
            for channel in sorted(values):
                family.add_metric([channel], float(values[channel]))
            yield family


class WorkerMetrics:
    """The worker's counters, in a registry of their own (served on WORKER_METRICS_PORT)."""

    OUTCOMES = ("sent", "failed", "dead", "skipped")

    def __init__(self, channels: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "incident_desk_notifications",
            "Notifications the worker handled, by channel and outcome (failed: to be retried)",
            ["channel", "outcome"],
            registry=self.registry,
        )
        for channel in channels:  # every series from the start, at 0
            for outcome in self.OUTCOMES:
                self.notifications.labels(channel, outcome)

    def count(self, channel: str, outcome: str, n: int = 1) -> None:
        self.notifications.labels(channel, outcome).inc(n)

    def serve(self, port: int) -> None:
        """Serve /metrics on `port` from a daemon thread (prometheus_client's server)."""
        start_http_server(port, registry=self.registry)
