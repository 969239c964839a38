"""The spans of one run's graph, from LangChain's callbacks: a span per node (each step), per
chat model call (its tokens as attributes, OpenTelemetry's `gen_ai.*` names) and per tool call,
each under the span of what called it. Other runnables (edges, sequences) get no span: what
they start nests under the nearest span. It observes only; it never alters the graph's run."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langgraph.errors import GraphBubbleUp
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode


@dataclass(slots=True)
class _Entry:
    span: Span
    owned: bool
    """Made for this callback run (and ended with it), rather than borrowed from a parent."""


class GraphSpans(BaseCallbackHandler):
    """Attached to one run's config; `close` ends whatever a cancel left open."""

    # Called on the loop as events happen (no hop to a thread), so spans open and close in
    # order; sync tools call from their own thread, hence the lock.
    run_inline = True

    def __init__(self, tracer: trace.Tracer, root: Span) -> None:
        self._tracer = tracer
        self._root = root
        self._entries: dict[UUID, _Entry] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in reversed(entries):
            if entry.owned:
                entry.span.set_status(Status(StatusCode.ERROR, "ended with its run"))
                entry.span.end()

    def _parent(self, parent_run_id: UUID | None) -> Span:
        with self._lock:
            found = self._entries.get(parent_run_id) if parent_run_id is not None else None
        return self._root if found is None else found.span

    def _open(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
    ) -> None:
        parent = trace.set_span_in_context(self._parent(parent_run_id))
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        with self._lock:
            self._entries[run_id] = _Entry(span, owned=True)

    def _borrow(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        span = self._parent(parent_run_id)
        with self._lock:
            self._entries[run_id] = _Entry(span, owned=False)

    def _close(self, run_id: UUID, error: BaseException | str | None = None) -> Span | None:
        with self._lock:
            entry = self._entries.pop(run_id, None)
        if entry is None or not entry.owned:
            return None
        if isinstance(error, BaseException) and not isinstance(error, GraphBubbleUp):
            entry.span.record_exception(error)
            entry.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif isinstance(error, str):
            entry.span.set_status(Status(StatusCode.ERROR, error))
        entry.span.end()
        return entry.span

    # Nodes

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        name = kwargs.get("name")
        if parent_run_id is not None and node and name == node and _is_step(tags):
            self._open(
                run_id,
                parent_run_id,
                f"node {node}",
                SpanKind.INTERNAL,
                {
                    "langgraph.node": node,
                    "langgraph.step": (metadata or {}).get("langgraph_step"),
                    "langgraph.checkpoint_ns": (metadata or {}).get("langgraph_checkpoint_ns"),
                },
            )
        else:
            self._borrow(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # Model calls

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        found = metadata or {}
        model = found.get("ls_model_name")
        self._open(
            run_id,
            parent_run_id,
            f"chat {model}" if model else "chat",
            SpanKind.CLIENT,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": found.get("ls_provider"),
                "gen_ai.request.model": model,
            },
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            entry = self._entries.get(run_id)
        if entry is not None and entry.owned:
            inputs, outputs, model = _usage(response)
            entry.span.set_attribute("gen_ai.usage.input_tokens", inputs)
            entry.span.set_attribute("gen_ai.usage.output_tokens", outputs)
            if model:
                entry.span.set_attribute("gen_ai.response.model", model)
        self._close(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # Tool calls

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self._open(
            run_id,
            parent_run_id,
            f"execute_tool {name}",
            SpanKind.INTERNAL,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": kwargs.get("tool_call_id"),
            },
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        failed = isinstance(output, ToolMessage) and output.status == "error"
        self._close(run_id, str(output.content) if failed else None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)


def _is_step(tags: Sequence[str] | None) -> bool:
    # LangGraph tags each node's task `graph:step:N`; runnables inside a node are not steps.
    return any(tag.startswith("graph:step:") for tag in tags or ())


def _usage(response: LLMResult) -> tuple[int, int, str | None]:
    inputs = outputs = 0
    model = None
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if not isinstance(message, BaseMessage):
                continue
            usage = getattr(message, "usage_metadata", None) or {}
            inputs += int(usage.get("input_tokens", 0))
            outputs += int(usage.get("output_tokens", 0))
            metadata = message.response_metadata or {}
            model = model or metadata.get("model_name") or metadata.get("model")
    return inputs, outputs, model
