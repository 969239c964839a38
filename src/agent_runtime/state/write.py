"""The one path by which a thread's state changes outside a run: state updates (which fork when
they name a past checkpoint, `as_node`, `__copy__`) and the messages view's adds, edits and
deletions. Its order is fixed here, for every caller: the lifecycle check before anything is
read or written, then the change is planned, written as a new checkpoint, and the thread is
settled (status and values) from the state it left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError

from agent_runtime.errors import AgentRuntimeError, ConflictError, InvalidRequestError
from agent_runtime.lifecycle import require_editable
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.executor import AnyGraph, state_outcome
from agent_runtime.schema import Json, Thread
from agent_runtime.state.checkpoint import checkpoint_config, require_checkpoint, thread_graph
from agent_runtime.state.shape import checkpoint_json
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import ThreadPatch

T = TypeVar("T")

SPECIAL_NODES = ("__copy__", "__input__", "__start__", "__end__")
"""Names `as_node` may take besides the graph's nodes."""

Refusal = Callable[[Exception], AgentRuntimeError]
"""What LangGraph's refusal of an update (`InvalidUpdateError`, or a reducer's `ValueError`)
becomes for the caller."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change(Generic[T]):
    """One change to a thread's state, as LangGraph's `update_state` takes it."""

    graph: AnyGraph
    """The thread's graph, wired to the checkpointer that writes."""
    config: RunnableConfig
    """The checkpoint the change applies to (a past one forks the history there)."""
    values: Any
    as_node: str | None = None
    """The node the change is attributed to; None lets LangGraph pick the last one to write."""
    refused: Refusal
    stamp: Json | None = None
    """Metadata merged into the thread once the checkpoint is written: the graph a thread that
    had none runs from now on."""
    result: T
    """What the caller gets back besides the new checkpoint."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Written(Generic[T]):
    """A change written: the planner's result and the new checkpoint."""

    result: T
    checkpoint: Json | None


Plan = Callable[[Thread], Awaitable[Change[T]]]
"""Turns the thread, once it may be written, into the change to write."""


async def write_state(
    storage: Storage, thread_id: str, plan: Plan[T], *, doing: str, action: str
) -> Written[T]:
    """Check the thread may be written, plan the change, write it as a new checkpoint, then
    settle the thread from the state it left. `doing` and `action` word the refusal
    ("wait ... before {doing}", "so it cannot {action}").

    Raises:
        NotFoundError: the thread does not exist.
        ConflictError: the thread is busy, locked or archived (before `plan` is called).
        AgentRuntimeError: whatever `plan` raises, or its `refused` makes of LangGraph's
            refusal; nothing is written then.
    """
    thread = await storage.get_thread(thread_id, values=False)
    require_editable(thread, doing=doing, action=action)
    change = await plan(thread)
    thread_id = thread["thread_id"]
    try:
        updated: RunnableConfig = await change.graph.aupdate_state(
            change.config, change.values, as_node=change.as_node
        )
    except (InvalidUpdateError, ValueError) as exc:
        raise change.refused(exc) from exc
    if change.stamp is not None:
        await storage.update_thread(thread_id, ThreadPatch(metadata=change.stamp))
    await storage.settle_thread(thread_id, await state_outcome(change.graph, thread_id))
    return Written(result=change.result, checkpoint=checkpoint_json(updated))


async def update_state(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    *,
    values: Any,
    as_node: str | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    checkpoint_id: Any = None,
) -> Json | None:
    """Write values into the thread's state as node `as_node` would; on a past checkpoint
    (`checkpoint` or `checkpoint_id`) this forks. Answers the new checkpoint.

    Raises:
        NotFoundError: the thread, or the checkpoint named, does not exist.
        ConflictError: the thread is busy, locked or archived, or names no graph.
        InvalidRequestError: a checkpoint id is malformed, the graph has no node `as_node`,
            or LangGraph refused the update.
    """

    async def plan(thread: Thread) -> Change[None]:
        graph = await thread_graph(storage, registry, thread, for_reads=False)
        if graph is None:
            raise ConflictError(
                f'Thread "{thread["thread_id"]}" has never run and names no graph, so its state '
                'has no shape yet; run it first, or create it with metadata {"graph_id": ...}',
                code="thread_has_no_graph",
            )
        config = checkpoint_config(thread["thread_id"], checkpoint, checkpoint_id)
        await require_checkpoint(storage, config)
        if as_node is not None and as_node not in graph.nodes and as_node not in SPECIAL_NODES:
            known = ", ".join(n for n in graph.nodes if not n.startswith("__"))
            raise InvalidRequestError(
                f'as_node: graph "{thread["metadata"]["graph_id"]}" has no node "{as_node}"; its '
                f"nodes are {known} (or __copy__ to copy the checkpoint unchanged)",
                code="unknown_node",
            )
        return Change(
            graph=graph,
            config=config,  # type: ignore[arg-type]
            values=values,
            as_node=as_node,
            refused=_update_refused,
            result=None,
        )

    written = await write_state(
        storage, thread_id, plan, doing="updating its state", action="have its state updated"
    )
    return written.checkpoint


def _update_refused(exc: Exception) -> AgentRuntimeError:
    # ValueError: the channel's reducer refused the values (say, removing an unknown id).
    return InvalidRequestError(f"The update cannot be applied: {exc}", code="invalid_update")
