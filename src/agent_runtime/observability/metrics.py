"""The Prometheus metrics of one server process, and how `/metrics` renders them: this
process's alone, or, under `serve --workers N`, every process's added up (prometheus_client's
multiprocess mode, through files in a folder the supervisor makes per deployment). Records
numbers and renders text; it never reads storage (the caller hands it what it sampled)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)

from agent_runtime.schema import Usage

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's folder for the values of several processes; `serve --workers N` makes
one per deployment unless it is already set."""
CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "agent_runtime_"
HTTP_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RUN_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WAIT_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
UNMATCHED_ROUTE = "unmatched"
"""The `route` of requests no route matched: never their path, whose ids would make a series
per request."""


class Metrics:
    """Every metric of the server (names and meanings: README, "Observability"). One per app;
    each has its own registry, so several apps in one process (the tests) stay apart."""

    def __init__(self, *, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        directory = environ.get(MULTIPROCESS_ENV) or None
        # prometheus_client picks file-backed values when it is first imported with the
        # variable set (in each `--workers` process, inherited from the supervisor).
        self.multiprocess_dir = directory if values.ValueClass is not values.MutexValue else None
        self.registry = CollectorRegistry()
        # Values of several processes live in their files; the registry is only for one.
        owner = None if self.multiprocess_dir else self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=owner)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(PREFIX + name, doc, labels, registry=owner, buckets=buckets)

        def gauge(name: str, doc: str, mode: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=owner, multiprocess_mode=mode)  # type: ignore[arg-type]

        self.http_requests = counter(
            "http_requests_total", "HTTP requests answered", ("method", "route", "status")
        )
        self.http_seconds = histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, to the end of its body (a stream's whole life)",
            ("method", "route"),
            HTTP_SECONDS,
        )
        self.runs_created = counter("runs_created_total", "Runs queued", ("graph",))
        self.runs_started = counter(
            "runs_started_total", "Run executions started (a retried run counts again)", ("graph",)
        )
        self.runs_finished = counter(
            "runs_finished_total", "Executed runs that ended, by status", ("graph", "status")
        )
        self.run_seconds = histogram(
            "run_duration_seconds",
            "Time from a run's claim to its end",
            ("graph", "status"),
            RUN_SECONDS,
        )
        self.queue_seconds = histogram(
            "run_queue_wait_seconds",
            "Time from a run's creation to the start of its first attempt",
            ("graph",),
            WAIT_SECONDS,
        )
        self.runs_pending = gauge(
            "runs_pending", "Runs queued and not started, in the database", "mostrecent"
        )
        self.runs_active = gauge(
            "runs_active", "Runs this process is claiming, executing or finishing", "liveall"
        )
        self.slots_free = gauge(
            "run_slots_free", "Runs this process could start now (--n-jobs-per-worker)", "liveall"
        )
        self.retries = counter(
            "run_retries_total", "Runs resumed after their process died (attempt 2 on)", ("graph",)
        )
        self.lease_reaps = counter(
            "lease_reaps_total", "Threads whose run was re-queued after its process's lease lapsed"
        )
        self.tokens = counter(
            "model_tokens_total", "Chat model tokens of ended runs", ("model", "direction")
        )
        self.cost = counter(
            "model_cost_usd_total",
            "Cost of ended runs' model calls (priced models only)",
            ("model",),
        )
        self.streams_open = gauge("streams_open", "Server-sent event streams open", "livesum")
        self.stream_events = counter(
            "stream_events_sent_total", "Server-sent events written to clients", ("event",)
        )
        self.pool_connections = gauge(
            "db_pool_connections",
            "Postgres connections of the pool: open (in use or idle), idle, and the maximum",
            "livesum",
            ("state",),
        )
        self.pool_waiting = gauge(
            "db_pool_requests_waiting", "Requests waiting for a Postgres connection", "livesum"
        )

    def render(self) -> bytes:
        """The exposition text: this process's values, or every process's added up."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def run_started(self, graph: str, attempt: int, waited: float | None) -> None:
        self.runs_started.labels(graph).inc()
        if attempt > 1:
            self.retries.labels(graph).inc()
        if waited is not None:
            self.queue_seconds.labels(graph).observe(max(0.0, waited))

    def run_finished(
        self, graph: str, status: str, seconds: float | None, usage: Usage | None
    ) -> None:
        self.runs_finished.labels(graph, status).inc()
        if seconds is not None:
            self.run_seconds.labels(graph, status).observe(seconds)
        for model, used in (usage["by_model"] if usage else {}).items():
            self.tokens.labels(model, "input").inc(used["input_tokens"])
            self.tokens.labels(model, "output").inc(used["output_tokens"])
            if used["cost_usd"] is not None:
                self.cost.labels(model).inc(used["cost_usd"])

    def slots(self, busy: int, limit: int) -> None:
        self.runs_active.set(busy)
        self.slots_free.set(limit - busy)

    def stream_event(self, event: str) -> None:
        # Subgraph events (`updates|sub:1`) count under their mode: namespaces are unbounded.
        self.stream_events.labels(event.partition("|")[0]).inc()

    def pool(self, stats: Mapping[str, int] | None) -> None:
        if stats is None:
            return
        for state in ("open", "idle", "max"):
            self.pool_connections.labels(state).set(stats.get(state, 0))
        self.pool_waiting.set(stats.get("waiting", 0))


@contextlib.contextmanager
def multiprocess_metrics(enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """For `serve --workers N`: a folder for the processes' values (`PROMETHEUS_MULTIPROC_DIR`,
    set here for the processes to inherit; made per deployment and removed afterwards unless
    it was given), and yields what to call with the pid of a process that died (its live
    gauges are dropped; its counters still count). Yields None when metrics are off."""
    if not enabled:
        yield None
        return
    given = os.environ.get(MULTIPROCESS_ENV)
    directory = given or tempfile.mkdtemp(prefix="agent-runtime-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory

    def process_died(pid: int) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]

    try:
        yield process_died
    finally:
        if not given:
            del os.environ[MULTIPROCESS_ENV]
            shutil.rmtree(directory, ignore_errors=True)
