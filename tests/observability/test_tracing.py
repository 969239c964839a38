"""OpenTelemetry spans of real runs, recorded by the SDK's in-memory exporter: the span tree of
a run with a tool call (request -> run -> nodes -> model and tool calls, tokens on the model
spans), a caller's `traceparent` continued, a run created on one process and executed on
another continuing the creating request's trace, and a server without OpenTelemetry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_runtime.observability.otel import Tracing
from agent_runtime.observability.tracing import load_tracing
from tests.conftest import ROOT, Database, RunningServer, json_of, sdk_client, until
from tests.observability.test_metrics import QUESTION, observability_config

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


@pytest.fixture
async def traced(database: Database, tracing: Tracing) -> AsyncIterator[RunningServer]:
    config = observability_config(database, metrics=False)
    running = await RunningServer(config, tracing=tracing).start()
    try:
        yield running
    finally:
        await running.stop()


def tree(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[str]:
    """The span tree under `root`, one indented name per line, children in start order."""
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        lines.append("  " * depth + span.name)
        assert span.context is not None
        children = [
            s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id
        ]
        for child in sorted(children, key=lambda s: s.start_time or 0):
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def run_span(exporter: InMemorySpanExporter, graph: str) -> ReadableSpan:
    # The run's span ends after its outcome is recorded, so just after the client hears of it.
    async def ended() -> ReadableSpan | None:
        found = named(exporter.get_finished_spans(), f"run {graph}")
        return found[0] if found else None

    return await until(ended)


async def test_a_run_with_a_tool_call_is_a_tree_of_spans(
    traced: RunningServer, exporter: InMemorySpanExporter
) -> None:
    async with sdk_client(traced) as sdk:
        thread = await sdk.threads.create()
        await sdk.runs.wait(thread["thread_id"], "agent", input=QUESTION)
        [run] = await sdk.runs.list(thread["thread_id"])
    span = await run_span(exporter, "agent")
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST /threads/{thread_id}/runs/wait"]
    assert span.parent is not None and request.context is not None
    assert span.parent.span_id == request.context.span_id
    lines = tree(spans, request)
    print("\n".join(lines))  # the README's example trace
    assert lines == [
        "POST /threads/{thread_id}/runs/wait",
        "  run agent",
        "    node model",
        "      chat echo",
        "    node tools",
        "      execute_tool calculator",
        "    node model",
        "      chat echo",
    ]
    attributes = dict(span.attributes or {})
    assert attributes["agent_runtime.run_id"] == run["run_id"]
    assert attributes["agent_runtime.thread_id"] == thread["thread_id"]
    assert attributes["agent_runtime.graph_id"] == "agent"
    assert attributes["agent_runtime.run.status"] == "success"
    usage = json_of(run)["usage"]
    assert attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    models = named(spans, "chat echo")
    tokens: dict[str, Any] = {"input": 0, "output": 0}
    for model in models:
        for direction in tokens:
            tokens[direction] += dict(model.attributes or {})[f"gen_ai.usage.{direction}_tokens"]
    assert tokens == {"input": usage["input_tokens"], "output": usage["output_tokens"]}
    assert dict(models[0].attributes or {})["gen_ai.request.model"] == "echo"
    [tool] = named(spans, "execute_tool calculator")
    assert dict(tool.attributes or {})["gen_ai.tool.name"] == "calculator"
    assert dict(request.attributes or {})["http.response.status_code"] == 200


async def test_a_failed_run_has_an_error_span(
    traced: RunningServer, exporter: InMemorySpanExporter
) -> None:
    async with sdk_client(traced) as sdk:
        thread = await sdk.threads.create()
        await sdk.runs.wait(thread["thread_id"], "failing", input={"steps": []}, raise_error=False)
    span = await run_span(exporter, "failing")
    assert span.status.status_code.name == "ERROR"
    assert "the fixture graph failed on purpose" in (span.status.description or "")
    [explode] = named(exporter.get_finished_spans(), "node explode")
    assert explode.status.status_code.name == "ERROR"


async def test_a_callers_traceparent_is_continued(
    traced: RunningServer, exporter: InMemorySpanExporter
) -> None:
    async with sdk_client(traced) as sdk, httpx.AsyncClient(base_url=traced.url) as http:
        thread = await sdk.threads.create()
        response = await http.post(
            f"/threads/{thread['thread_id']}/runs",
            json={"assistant_id": "agent", "input": QUESTION},
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"},
        )
        assert response.status_code == 200
    span = await run_span(exporter, "agent")
    assert span.context is not None and format(span.context.trace_id, "032x") == TRACE_ID
    [request] = named(exporter.get_finished_spans(), "POST /threads/{thread_id}/runs")
    assert request.parent is not None and format(request.parent.span_id, "016x") == CALLER_SPAN_ID
    # Stored with the run, where the executing process finds it.
    assert response.json()["kwargs"]["trace_context"]["traceparent"].startswith(f"00-{TRACE_ID}-")


async def test_a_run_executed_by_another_process_continues_the_request_trace(
    database: Database, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    # Two runtimes on one database, as two processes: one queues, the other executes.
    api = await RunningServer(
        observability_config(database, metrics=False, role="api"), tracing=tracing
    ).start()
    worker = await RunningServer(
        observability_config(database, metrics=False, role="worker"), tracing=tracing
    ).start()
    try:
        async with sdk_client(api) as sdk:
            thread = await sdk.threads.create()
            run = await sdk.runs.create(thread["thread_id"], "agent", input=QUESTION)
            span = await run_span(exporter, "agent")
            [request] = named(exporter.get_finished_spans(), "POST /threads/{thread_id}/runs")
    finally:
        await worker.stop()
        await api.stop()
    assert dict(span.attributes or {})["agent_runtime.run_id"] == run["run_id"]
    assert span.parent is not None and request.context is not None
    assert span.parent.span_id == request.context.span_id
    assert tree(exporter.get_finished_spans(), request)[1:3] == ["  run agent", "    node model"]


def test_tracing_is_off_without_an_endpoint() -> None:
    assert load_tracing({}) is None
    assert (
        load_tracing(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}
        )
        is None
    )


@pytest.mark.parametrize("service", [None, "support-bot"])
def test_tracing_exports_to_the_configured_endpoint(
    monkeypatch: pytest.MonkeyPatch, service: str | None
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    if service is None:
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    else:
        monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    found = load_tracing(os.environ)
    assert found is not None
    try:
        name = found.provider.resource.attributes["service.name"]
        assert name == (service or "agent-runtime")
    finally:
        found.shutdown()


WITHOUT_OTEL = """
import importlib.abc, logging, sys

class NoOpenTelemetry(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from starlette.testclient import TestClient
from agent_runtime.config import load_config
from agent_runtime.server.app import create_app

config = load_config(sys.argv[1], database=sys.argv[2], environ={})
with TestClient(create_app(config)) as client:
    thread = client.post("/threads", json={}).json()
    answer = client.post(
        f"/threads/{thread['thread_id']}/runs/wait",
        json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "2+3"}]}},
    )
    assert answer.status_code == 200, answer.text
print("loaded:", sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_a_server_without_opentelemetry_works_and_says_why_it_does_not_trace(tmp_path) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_OTEL,
            str(ROOT / "tests/fixtures/observability/langgraph.json"),
            str(tmp_path / "db.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr
    assert "pip install 'agent-runtime[otel]'" in done.stderr
