"""OpenTelemetry spans (the `otel` extra; imported only by `tracing.load_tracing` and tests):
one per HTTP request, continuing the caller's W3C `traceparent`; one per run, a child of the
request that created it even when another process executes it (the run stores the request's
trace context); and, under the run, the graph's nodes, model calls and tool calls
(`graph_spans.py`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agent_runtime import __version__
from agent_runtime.observability.graph_spans import GraphSpans
from agent_runtime.schema import Run
from agent_runtime.storage.records import RunOutcome

DEFAULT_SERVICE_NAME = "agent-runtime"
_PROPAGATOR = TraceContextTextMapPropagator()


def otlp_provider(environ: Mapping[str, str], *, grpc: bool = False) -> TracerProvider:
    """A provider that batches spans to the OTLP exporter, which reads its endpoint, headers,
    timeout and compression from the `OTEL_EXPORTER_OTLP_*` variables itself."""
    if grpc:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; a name is given only when neither does.
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class Tracing:
    """The spans of one process, made by `provider` (the app's own: the global provider is
    left to the graphs, so a graph's instrumentation, if any, keeps its own)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("agent_runtime", __version__)

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()

    @contextlib.contextmanager
    def request(self, method: str, path: str, headers: Mapping[str, str]) -> Iterator[Span]:
        """The span of one HTTP request, current while the block runs; a `traceparent` header
        makes it a child of the caller's span."""
        parent = _PROPAGATOR.extract(headers)
        with self.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
            record_exception=False,
            set_status_on_exception=True,
        ) as span:
            yield span

    @staticmethod
    def finish_request(span: Span, method: str, route: str, status: int) -> None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @staticmethod
    def carrier() -> dict[str, str]:
        """The current trace context as W3C headers (`traceparent`, `tracestate`), to store
        with a run; empty outside any span."""
        found: dict[str, str] = {}
        _PROPAGATOR.inject(found)
        return found

    def start_run(self, run: Run) -> RunTrace:
        """The span of one execution of a run, a child of the request that created it."""
        stored = run["kwargs"].get("trace_context")
        carrier = {k: v for k, v in stored.items() if isinstance(v, str)} if stored else {}
        # Never the context this task happens to hold (a worker task outlives requests).
        parent = _PROPAGATOR.extract(carrier, context=otel_context.Context())
        span = self.tracer.start_span(
            "run",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "agent_runtime.run_id": run["run_id"],
                "agent_runtime.thread_id": run["thread_id"],
                "agent_runtime.assistant_id": run["assistant_id"],
                "agent_runtime.run.attempt": run["attempt"],
            },
        )
        return RunTrace(self.tracer, span)


class RunTrace:
    """One run's span and the spans of its graph."""

    def __init__(self, tracer: trace.Tracer, span: Span) -> None:
        self.span = span
        self.graph_spans = GraphSpans(tracer, span)

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """The run's span is the current one while the block runs, and in the tasks started
        in it (the graph's nodes): spans of a graph's own instrumentation nest under it."""
        token = otel_context.attach(trace.set_span_in_context(self.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def graph(self, graph_id: str) -> None:
        self.span.update_name(f"run {graph_id}")
        self.span.set_attribute("agent_runtime.graph_id", graph_id)

    def finish(self, outcome: RunOutcome) -> None:
        span = self.span
        span.set_attribute("agent_runtime.run.status", outcome.status)
        usage: Any = outcome.usage
        if usage:
            span.set_attribute("gen_ai.usage.input_tokens", usage["input_tokens"])
            span.set_attribute("gen_ai.usage.output_tokens", usage["output_tokens"])
            if usage["cost_usd"] is not None:
                span.set_attribute("agent_runtime.cost_usd", usage["cost_usd"])
        if outcome.status == "error":
            span.set_status(Status(StatusCode.ERROR, outcome.error))

    def end(self) -> None:
        """End what is still open (a cancelled run's nodes), then the run's span."""
        self.graph_spans.close()
        self.span.end()
