"""Records what a run's chat models and tools did, as they do it: tokens per model (priced from
langgraph.json) and every tool call with its arguments, outcome and duration. A LangChain
callback handler attached to the run's config; it never alters what the graph sees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langgraph.config import get_config

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config.model import ModelPrice
from agent_runtime.encoding import to_jsonable
from agent_runtime.schema import ModelUsage, ToolCall, Usage
from agent_runtime.usage import model_usage, summarize

logger = logging.getLogger("agent_runtime.runs")
UNKNOWN_MODEL = "unknown"


@dataclass(slots=True)
class _Started:
    tool_call_id: str
    name: str
    args: Any
    checkpoint_id: str | None
    started_at: datetime
    monotonic: float


class RunRecorder(AsyncCallbackHandler):
    """Collects one run's usage and hands each finished tool call to `save_tool_call`."""

    # Awaited in line rather than as a task of its own per event: LangChain gathers the
    # handlers that are not, which costs a task for every node's start and end.
    run_inline = True

    # Only model ends and tool calls matter here; LangChain skips these events for us. (Tool
    # events go by `ignore_agent`, which must stay False.)
    ignore_chain = ignore_retriever = ignore_retry = ignore_custom_event = True

    def __init__(
        self,
        *,
        run_id: str,
        pricing: Mapping[str, ModelPrice],
        save_tool_call: Callable[[ToolCall], Coroutine[Any, Any, None]],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Made for one run, on the loop that runs it.

        Args:
            clock: stamps each tool call's start and times its duration.
        """
        self._run_id = run_id
        self._clock = clock
        self._pricing = pricing
        self._save = save_tool_call
        # Sync tools report from a worker thread with an event loop of its own; storage belongs
        # to this loop, so saves are handed back to it.
        self._loop = asyncio.get_running_loop()
        self._tokens: dict[str, list[int]] = {}
        self._tools: dict[UUID, _Started] = {}

    def usage(self) -> Usage | None:
        """The run's usage so far; None when no chat model reported any."""
        if not self._tokens:
            return None
        by_model: dict[str, ModelUsage] = {}
        for name, (inputs, outputs) in self._tokens.items():
            price = self._pricing.get(name)
            by_model[name] = model_usage(inputs, outputs, None if price is None else _price(price))
        return summarize(by_model)

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        # Defined so LangChain does not fall back to on_llm_start, which first renders the
        # whole conversation as text on every model call.
        return None

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = getattr(message, "usage_metadata", None)
                if not isinstance(message, BaseMessage) or not usage:
                    continue
                name = _model_name(message, response)
                totals = self._tokens.setdefault(name, [0, 0])
                totals[0] += int(usage.get("input_tokens", 0))
                totals[1] += int(usage.get("output_tokens", 0))

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        inputs: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._tools[run_id] = _Started(
            tool_call_id=str(kwargs.get("tool_call_id") or run_id),
            name=str(serialized.get("name") or kwargs.get("name") or "tool"),
            args=to_jsonable(inputs if inputs is not None else input_str),
            checkpoint_id=_source_checkpoint(metadata or {}),
            started_at=self._clock.now(),
            monotonic=self._clock.monotonic(),
        )

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._tools.pop(run_id, None)
        if started is None:
            return
        if isinstance(output, ToolMessage) and output.status == "error":
            await self._finish(started, status="error", result=None, error=str(output.content))
            return
        content = output.content if isinstance(output, ToolMessage) else output
        await self._finish(started, status="success", result=to_jsonable(content), error=None)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._tools.pop(run_id, None)
        if started is not None:
            message = f"{type(error).__name__}: {error}"
            await self._finish(started, status="error", result=None, error=message)

    async def _finish(
        self, started: _Started, *, status: str, result: Any, error: str | None
    ) -> None:
        call: ToolCall = {
            "id": started.tool_call_id,
            "name": started.name,
            "args": started.args if isinstance(started.args, dict) else {"input": started.args},
            "status": "error" if status == "error" else "success",
            "result": result,
            "error": error,
            "run_id": self._run_id,
            "checkpoint_id": started.checkpoint_id,
            "started_at": started.started_at,
            "duration_ms": round((self._clock.monotonic() - started.monotonic) * 1000, 3),
        }
        try:
            if _running_loop() is self._loop:
                await self._save(call)
            else:
                handed: Future[None] = asyncio.run_coroutine_threadsafe(
                    self._save(call), self._loop
                )
                await asyncio.wrap_future(handed)
        except Exception:
            # The log must never fail the run it observes.
            logger.exception("Could not record tool call %s of run %s", call["id"], self._run_id)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _price(price: ModelPrice) -> dict[str, float]:
    return {
        "input_per_million": price.input_per_million,
        "output_per_million": price.output_per_million,
    }


def _model_name(message: BaseMessage, response: LLMResult) -> str:
    metadata = message.response_metadata or {}
    for key in ("model_name", "model"):
        if metadata.get(key):
            return str(metadata[key])
    output = response.llm_output or {}
    for key in ("model_name", "model"):
        if output.get(key):
            return str(output[key])
    return UNKNOWN_MODEL


def _source_checkpoint(metadata: Mapping[str, Any]) -> str | None:
    # The task's config maps each enclosing namespace to the checkpoint it runs from.
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return None
    namespace = str(metadata.get("langgraph_checkpoint_ns") or "")
    parent = namespace.rsplit("|", 1)[0] if "|" in namespace else ""
    found = (configurable.get("checkpoint_map") or {}).get(parent)
    return str(found) if found else None
