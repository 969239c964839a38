"""Executes one run: builds the graph's config, context and input from the run's request,
drives the graph's stream, publishes every event to the run's event log, and reports how the run
ended. It never touches run rows: the run manager records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, Literal, cast

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Command, Send

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config.model import ModelPrice
from agent_runtime.encoding import GrowingListJson, dumps, to_jsonable
from agent_runtime.errors import AgentRuntimeError, MessageLimitError, NotFoundError
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.observer import NO_OBSERVER, RunObserver
from agent_runtime.runs.options import NodeNames, RunOptions
from agent_runtime.runs.recorder import RunRecorder
from agent_runtime.runs.shaping import EventShaper, graph_stream_modes
from agent_runtime.schema import Assistant, Interrupt, Json, Run, RunStatus, ThreadStatus, Usage
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import RunOutcome, ThreadBrief
from agent_runtime.streaming import EventLog
from agent_runtime.user import USER_KEY, AuthUser, without_auth_keys

AnyGraph = Pregel[Any, Any, Any, Any]

logger = logging.getLogger("agent_runtime.runs")

MESSAGES_JSON_BYTES = 8 * 1024 * 1024
"""The JSON of threads' `messages` kept for encoding their next states (`GrowingListJson`): about
50 threads of 600 messages. The messages it holds stay alive as long."""

_MESSAGES_FIRST = b'{"messages":'


class RunExecutor:
    """Runs graphs for the run manager; one instance serves every run."""

    def __init__(
        self,
        storage: Storage,
        registry: GraphRegistry,
        events: EventLog,
        *,
        pricing: Mapping[str, ModelPrice],
        max_messages: int,
        clock: Clock = SYSTEM_CLOCK,
        observer: RunObserver = NO_OBSERVER,
    ) -> None:
        self._storage = storage
        self._observer = observer
        self._clock = clock
        self._registry = registry
        self._events = events
        self._pricing = pricing
        self._max_messages = max_messages
        self._recorders: dict[str, RunRecorder] = {}
        # Each thread's `messages` as last encoded: a run's values events and final state
        # encode only what the thread gained since.
        self._messages_json = GrowingListJson(MESSAGES_JSON_BYTES)

    def release(self, run_id: str) -> Usage | None:
        """Forget a run's recorder and return the usage it saw (also after a cancel)."""
        recorder = self._recorders.pop(run_id, None)
        return None if recorder is None else recorder.usage()

    async def execute(
        self,
        run: Run,
        options: RunOptions,
        *,
        assistant: Assistant | None = None,
        brief: ThreadBrief | None = None,
    ) -> RunOutcome:
        """Execute the run (its options read from its `kwargs` once, by the caller) to its end
        and describe the end; graph errors become an `error` event and an `error` outcome.
        Cancellation propagates to the caller. `assistant` and `brief` (the thread as the run
        was claimed) spare reading them again when the caller has them."""
        run_id = run["run_id"]
        await self._publish(run_id, "metadata", {"run_id": run_id, "attempt": run["attempt"]})
        try:
            if assistant is None or assistant["assistant_id"] != run["assistant_id"]:
                assistant = await self._storage.get_assistant(run["assistant_id"])
            config = build_config(run, options, assistant)
            graph = await self._registry.get_graph(assistant["graph_id"], config=config)
            graph_input = await _graph_input(run, options, graph)
            if brief is None:
                brief = await self._storage.thread_brief(run["thread_id"])
            count, thread_metadata = brief
            _check_message_limit(count, graph_input, self._max_messages)
            # Graphs may read the thread's metadata (a user's time zone, say); a dict in
            # configurable is not copied into checkpoint metadata.
            config["configurable"]["thread_metadata"] = thread_metadata
        except Exception as exc:
            known = assistant is not None and assistant["assistant_id"] == run["assistant_id"]
            graph_id = assistant["graph_id"] if known and assistant is not None else None
            return await self._failed(run, exc, graph=None, graph_id=graph_id)
        recorder = RunRecorder(
            run_id=run_id,
            pricing=self._pricing,
            save_tool_call=lambda call: self._storage.record_tool_call(run["thread_id"], call),
            clock=self._clock,
        )
        self._recorders[run_id] = recorder
        self._observer.run_started(run, assistant["graph_id"])
        config["callbacks"] = [recorder, *self._observer.callbacks(run_id)]
        modes = options.stream_mode
        shaper = EventShaper(modes, subgraphs=options.stream_subgraphs)
        # Always a dict, if an empty one: LangGraph builds a `context_schema` dataclass or model
        # from it, so a graph gets its defaults (None would reach `runtime.context` as is).
        context = {**assistant["context"], **options.context}
        stream_options: dict[str, Any] = {
            "context": context,
            "stream_mode": graph_stream_modes(modes),
            "subgraphs": options.stream_subgraphs,
            "interrupt_before": _nodes(options.interrupt_before),
            "interrupt_after": _nodes(options.interrupt_after),
            "durability": options.durability,
        }
        # The last top-level `values` chunk and the bytes it was published as.
        published: tuple[Any, bytes] | None = None
        # The event names published so far: each one's first event goes out at once.
        named: set[str] = set()
        try:
            stream = _stream(graph, graph_input, config, stream_options, events="events" in modes)
            async for name, data in _shaped(stream, shaper):
                if name == "values":
                    encoded = self._values_json(run["thread_id"], data)
                    await self._events.publish(run_id, name, encoded)
                    published = (data, encoded)
                else:
                    await self._publish(run_id, name, data)
                if name not in named:
                    named.add(name)
                    # A graph may have a burst of events ready (a model's tokens all at once):
                    # publishing them does not suspend, so the streams waiting for the first
                    # would only run after the last. Letting them run now puts a run's first
                    # token on the wire before the rest are published.
                    await asyncio.sleep(0)
            for name, data in shaper.finish():
                await self._publish(run_id, name, data)
        except Exception as exc:
            failed = await self._failed(run, exc, graph=graph, graph_id=assistant["graph_id"])
            return replace(failed, usage=recorder.usage())
        last = shaper.last_values
        if shaper.interrupted or not isinstance(last, dict):
            outcome = await state_outcome(graph, run["thread_id"])
        else:
            # Finished without an interrupt: the last values event is the state, no re-read,
            # and its bytes serve the outcome, the threads row and `wait` alike.
            final = {k: v for k, v in last.items() if k != "__interrupt__"}
            encoded = self._final_json(run["thread_id"], last, final, published)
            outcome = RunOutcome(
                status="success",
                thread_status="idle",
                values_json=encoded,
                values_json_stable=self._stable_bytes(run["thread_id"], encoded),
                message_count=_message_count(final),
            )
        outcome = replace(outcome, usage=recorder.usage())
        count = outcome.count_messages() or 0
        if count > self._max_messages:
            # The run's steps are undone, so the thread keeps what it held before the run.
            await self._storage.delete_run_checkpoints(run["thread_id"], run_id)
            return await self._failed(
                run,
                MessageLimitError(count, self._max_messages),
                graph=graph,
                graph_id=assistant["graph_id"],
            )
        if outcome.status == "interrupted" and "values" in modes and not shaper.sent_interrupts:
            # The SDK reads pending interrupts off the last `values` event.
            every = [i for group in outcome.interrupts.values() for i in group]
            await self._publish(
                run_id, "values", {**(outcome.decoded_values() or {}), "__interrupt__": every}
            )
        return outcome

    async def _failed(
        self, run: Run, exc: Exception, *, graph: AnyGraph | None, graph_id: str | None
    ) -> RunOutcome:
        error = {"error": type(exc).__name__, "message": str(exc)}
        # The one place a developer sees why a background run failed, and where.
        logger.error(
            "Run %s on thread %s (graph %s) failed: %s: %s",
            run["run_id"],
            run["thread_id"],
            graph_id or f"of assistant {run['assistant_id']}",
            error["error"],
            error["message"],
            exc_info=exc,
        )
        await self._publish(run["run_id"], "error", error)
        state = RunOutcome(status="error")
        if graph is not None:
            # The failure may be the thread's state itself (a checkpoint that cannot be
            # decoded): then there is no state to report, but the run must still end.
            with contextlib.suppress(Exception):
                state = await state_outcome(graph, run["thread_id"])
        recorder = self._recorders.get(run["run_id"])
        return replace(
            state,
            status="error",
            error=f"{error['error']}: {error['message']}",
            thread_status="error",
            usage=None if recorder is None else recorder.usage(),
        )

    async def _publish(self, run_id: str, event: str, data: Any) -> bytes:
        encoded = dumps(data)
        await self._events.publish(run_id, event, encoded)
        return encoded

    def _values_json(self, thread_id: str, values: Any) -> bytes:
        messages = values.get("messages") if isinstance(values, dict) else None
        if not isinstance(messages, list):
            return dumps(values)
        if next(iter(values)) == "messages":
            # The usual shape: the document is written around the array, not copied after it.
            rest = {key: value for key, value in values.items() if key != "messages"}
            tail = b"," + dumps(rest)[1:] if rest else b"}"
            return self._messages_json.dumps(thread_id, messages, head=_MESSAGES_FIRST, tail=tail)
        array = self._messages_json.dumps(thread_id, messages)
        return dumps({**values, "messages": orjson.Fragment(array)})

    def _stable_bytes(self, thread_id: str, encoded: bytes) -> int:
        # The thread's next state likely starts as this one does up to the end of the messages
        # kept for it, when they come first: `{"messages":[...` without the closing bracket.
        known = self._messages_json.known_bytes(thread_id)
        if known <= len(b"[]") or not encoded.startswith(_MESSAGES_FIRST):
            return 0
        return len(_MESSAGES_FIRST) + known - 1

    def _final_json(
        self, thread_id: str, last: Json, final: Json, published: tuple[Any, bytes] | None
    ) -> bytes:
        # The event's bytes are the state's only if that event was `last` and carried nothing
        # beyond it (an `__interrupt__` key); else (a run streaming other modes) encode it.
        if published is not None and published[0] is last and len(final) == len(last):
            return published[1]
        return self._values_json(thread_id, final)


def _check_message_limit(count: int, graph_input: Any, limit: int) -> None:
    incoming = graph_input.get("messages") if isinstance(graph_input, dict) else None
    adding = len(incoming) if isinstance(incoming, list) else int(incoming is not None)
    if count + adding > limit:
        raise MessageLimitError(count + adding, limit)


def _message_count(values: Mapping[str, Any]) -> int | None:
    messages = values.get("messages")
    return len(messages) if isinstance(messages, list | tuple) else None


def build_config(run: Run, options: RunOptions, assistant: Assistant) -> RunnableConfig:
    """The assistant's config overlaid with the run's, plus the ids LangGraph needs."""
    base: Json = assistant["config"] or {}
    given: Json = options.config
    ids = {
        "thread_id": run["thread_id"],
        "run_id": run["run_id"],
        "assistant_id": run["assistant_id"],
        "graph_id": assistant["graph_id"],
        "run_attempt": run["attempt"],
    }
    # Only the server puts the user in a run's own config (stripping what a client sent);
    # an assistant's config never speaks for a user.
    configurable = {
        **without_auth_keys(base.get("configurable", {})),
        **given.get("configurable", {}),
        **ids,
    }
    if isinstance(configurable.get(USER_KEY), dict):
        # The stored JSON made a user again, with attributes and `.get` as LangGraph's.
        configurable[USER_KEY] = AuthUser(configurable[USER_KEY])
    checkpoint = options.checkpoint or {}
    checkpoint_id = options.checkpoint_id or checkpoint.get("checkpoint_id")
    if checkpoint_id and run["attempt"] <= 1:
        configurable["checkpoint_id"] = checkpoint_id
        if checkpoint.get("checkpoint_ns"):
            configurable["checkpoint_ns"] = checkpoint["checkpoint_ns"]
    metadata = {
        **base.get("metadata", {}),
        **given.get("metadata", {}),
        **run["metadata"],
        **{k: v for k, v in ids.items() if k != "run_attempt"},
    }
    config: Json = {**base, **given, "configurable": configurable, "metadata": metadata}
    tags = [*base.get("tags", []), *given.get("tags", [])]
    if tags:
        config["tags"] = list(dict.fromkeys(tags))
    return cast(RunnableConfig, config)


def _nodes(names: NodeNames | None) -> Literal["*"] | list[str] | None:
    return list(names) if isinstance(names, tuple) else names


async def _graph_input(run: Run, options: RunOptions, graph: AnyGraph) -> Any:
    if run["attempt"] > 1:
        # A retried run continues from its own last checkpoint rather than replaying its input.
        latest = await graph.aget_state({"configurable": {"thread_id": run["thread_id"]}})
        if (latest.metadata or {}).get("run_id") == run["run_id"]:
            return None
    if options.command:
        return _command(options.command)
    return options.input


def _command(command: Json) -> Command[Any]:
    goto = command.get("goto")
    if isinstance(goto, dict):
        goto = Send(goto["node"], goto.get("input"))
    elif isinstance(goto, list):
        goto = [Send(g["node"], g.get("input")) if isinstance(g, dict) else g for g in goto]
    update = command.get("update")
    if isinstance(update, list):
        update = [tuple(pair) for pair in update]
    return Command(
        resume=command.get("resume"),
        update=update,
        goto=goto if goto is not None else (),
    )


async def _stream(
    graph: AnyGraph, graph_input: Any, config: RunnableConfig, options: Json, *, events: bool
) -> AsyncIterator[tuple[str, Any, Any]]:
    """`(namespace-or-"events", mode, chunk)` items; astream_events only when `events` is asked."""
    if not events:
        async for item in graph.astream(graph_input, config, **options):
            yield _with_namespace(item, options["subgraphs"])
        return
    async for event in graph.astream_events(graph_input, config, version="v2", **options):
        if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
            yield _with_namespace(event["data"].get("chunk"), options["subgraphs"])
        else:
            yield "events", "events", event


def _with_namespace(item: Any, subgraphs: bool) -> tuple[Any, str, Any]:
    # astream yields (mode, chunk) without subgraphs and (namespace, mode, chunk) with them.
    if subgraphs:
        namespace, mode, chunk = item
        return namespace, mode, chunk
    mode, chunk = item
    return (), mode, chunk


async def _shaped(
    stream: AsyncIterator[tuple[Any, str, Any]], shaper: EventShaper
) -> AsyncIterator[tuple[str, Any]]:
    async for namespace, mode, chunk in stream:
        if namespace == "events":
            yield "events", chunk
            continue
        for event in shaper.shape(namespace, mode, chunk):
            yield event


async def state_outcome(graph: AnyGraph, thread_id: str) -> RunOutcome:
    """The outcome a finished stream leaves: interrupted when tasks are pending, else success."""
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    interrupts: dict[str, list[Interrupt]] = {
        task.id: [cast(Interrupt, to_jsonable(i)) for i in task.interrupts]
        for task in snapshot.tasks
        if task.interrupts
    }
    status: RunStatus = "success"
    thread_status: ThreadStatus = "idle"
    if any(task.error is not None for task in snapshot.tasks) and not interrupts:
        # Pending because a task failed, not because it waits for a human.
        status = thread_status = "error"
    elif snapshot.next:
        status = thread_status = "interrupted"
    state = snapshot.values if snapshot.values is not None else {}
    # Encoded once, for the threads row; readers that need a dict decode it (decoded_values).
    return RunOutcome(
        status=status,
        thread_status=thread_status,
        values_json=dumps(state),
        message_count=_message_count(state) if isinstance(state, Mapping) else None,
        interrupts=interrupts,
    )


async def latest_outcome(storage: Storage, registry: GraphRegistry, thread_id: str) -> RunOutcome:
    """What the thread's latest checkpoint says, for runs that ended without a clean finish."""
    try:
        thread = await storage.get_thread(thread_id, values=False)
    except NotFoundError:
        return RunOutcome(status="success")
    graph_id = thread["metadata"].get("graph_id")
    if not isinstance(graph_id, str) or graph_id not in registry:
        return RunOutcome(status="success")
    try:
        graph = await registry.get_graph(graph_id)
        return await state_outcome(graph, thread_id)
    except AgentRuntimeError as exc:
        # A state that cannot be read (an undecodable checkpoint) leaves the thread as is.
        logger.warning("Thread %s: its state cannot be read: %s", thread_id, exc.detail)
        return RunOutcome(status="error", thread_status="error")
