"""The run observer of a server process: turns the run manager's hooks into metrics, spans
and the run's log lines (its ids on every line it writes; one line at its start and one at its
end, with status, duration and usage). It observes runs and never changes one, except for
adding the creating request's trace context to a new run's options."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.observability.context import add_run_id, run_ids_context
from agent_runtime.observability.langsmith import langsmith_run_context
from agent_runtime.observability.metrics import Metrics
from agent_runtime.runs.observer import RunObserver
from agent_runtime.schema import Run, Usage
from agent_runtime.storage.records import NewRun, RunOutcome

if TYPE_CHECKING:
    from agent_runtime.observability.otel import RunTrace, Tracing

logger = logging.getLogger("agent_runtime.runs")
UNKNOWN_GRAPH = "unknown"
"""The `graph` label of a run that ended before its graph was known (its assistant gone)."""


@dataclass(slots=True)
class _Running:
    run: Run
    claimed_at: float
    graph_id: str
    trace: RunTrace | None


class Observer(RunObserver):
    """Feeds `metrics` and `tracing` (each optional) and writes the run log lines."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self._clock = clock
        self._running: dict[str, _Running] = {}

    def run_creating(self, new: NewRun) -> NewRun:
        if self.tracing is None:
            return new
        carrier = self.tracing.carrier()
        if not carrier:
            return new
        return replace(new, options=replace(new.options, trace_context=carrier))

    def run_created(self, run: Run, graph_id: str) -> None:
        if self.metrics is not None:
            self.metrics.runs_created.labels(graph_id).inc()

    @contextlib.contextmanager
    def run_claimed(self, run: Run) -> Iterator[None]:
        run_id = run["run_id"]
        trace = self.tracing.start_run(run) if self.tracing is not None else None
        running = _Running(run, self._clock.monotonic(), UNKNOWN_GRAPH, trace)
        self._running[run_id] = running
        ids = {"run_id": run_id, "thread_id": run["thread_id"], "assistant_id": run["assistant_id"]}
        try:
            with (
                run_ids_context(**ids),
                trace.current() if trace is not None else contextlib.nullcontext(),
                langsmith_run_context(run["kwargs"].get("langsmith_tracer")),
            ):
                yield
        finally:
            self._running.pop(run_id, None)
            if trace is not None:
                trace.end()

    def run_started(self, run: Run, graph_id: str) -> None:
        running = self._running.get(run["run_id"])
        if running is not None:
            running.graph_id = graph_id
            if running.trace is not None:
                running.trace.graph(graph_id)
        add_run_id("graph_id", graph_id)
        attempt = run["attempt"]
        if self.metrics is not None:
            waited = None
            if attempt == 1:
                waited = (self._clock.now() - run["created_at"]).total_seconds()
            self.metrics.run_started(graph_id, attempt, waited)
        logger.info(
            "Run %s started on thread %s (graph %s, attempt %d)",
            run["run_id"],
            run["thread_id"],
            graph_id,
            attempt,
            extra={"event": "run_started", "attempt": attempt},
        )

    def callbacks(self, run_id: str) -> Sequence[Any]:
        running = self._running.get(run_id)
        if running is None or running.trace is None:
            return ()
        return (running.trace.graph_spans,)

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        run_id = run["run_id"]
        running = self._running.get(run_id)
        graph_id = running.graph_id if running is not None else UNKNOWN_GRAPH
        seconds = None if running is None else self._clock.monotonic() - running.claimed_at
        if self.metrics is not None:
            self.metrics.run_finished(graph_id, outcome.status, seconds, outcome.usage)
        if running is not None and running.trace is not None:
            running.trace.finish(outcome)
        duration_ms = None if seconds is None else round(seconds * 1000, 3)
        logger.log(
            logging.WARNING if outcome.status == "error" else logging.INFO,
            "Run %s ended %s in %s%s",
            run_id,
            outcome.status,
            "?" if seconds is None else f"{seconds:.3f} s",
            _usage_text(outcome.usage),
            extra={
                "event": "run_finished",
                "status": outcome.status,
                "duration_ms": duration_ms,
                "usage": outcome.usage,
                **({"run_error": outcome.error} if outcome.error else {}),
            },
        )

    def leases_reaped(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.lease_reaps.inc(count)

    def slots_changed(self, busy: int, limit: int) -> None:
        if self.metrics is not None:
            self.metrics.slots(busy, limit)

    def stream_count(self, open_streams: int) -> None:
        """The number of server-sent event streams open in this process changed."""
        if self.metrics is not None:
            self.metrics.streams_open.set(open_streams)

    def stream_event(self, event: str) -> None:
        """One server-sent event was written to a client."""
        if self.metrics is not None:
            self.metrics.stream_event(event)


def _usage_text(usage: Usage | None) -> str:
    if not usage:
        return ""
    cost = "" if usage["cost_usd"] is None else f", ${usage['cost_usd']:.6f}"
    return f" ({usage['total_tokens']} tokens{cost})"
