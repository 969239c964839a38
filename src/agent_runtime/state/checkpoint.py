"""Where a thread's state is read or written: the graph the thread runs, the config naming one of
its checkpoints, and the 404 for a checkpoint that is not there. No requests, no responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent_runtime.errors import NotFoundError
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.schema import Json, Thread
from agent_runtime.state.shape import check_checkpoint_id
from agent_runtime.storage.base import Storage


async def thread_graph(
    storage: Storage, registry: GraphRegistry, thread: Thread, *, for_reads: bool
) -> AnyGraph | None:
    """The graph a thread runs (from the `graph_id` its runs stamp), or None if unknown.

    With `for_reads`, the graph reads through the storage's read checkpointer, so that state and
    history never hold up a running graph's writes."""
    graph_id = thread["metadata"].get("graph_id")
    if not isinstance(graph_id, str) or graph_id not in registry:
        return None
    graph = await registry.get_graph(graph_id)
    if for_reads:
        return graph.copy(update={"checkpointer": storage.read_checkpointer})
    return graph


def checkpoint_config(
    thread_id: str, ref: Mapping[str, Any] | None = None, checkpoint_id: Any = None
) -> Json:
    """The config naming a checkpoint of the thread: its latest in the root namespace unless
    `ref` (a checkpoint object) or `checkpoint_id` names another.

    Raises:
        InvalidRequestError: `checkpoint_id` or the ref's id is not a checkpoint id.
    """
    if checkpoint_id is not None:
        checkpoint_id = check_checkpoint_id(checkpoint_id, field="checkpoint_id")
    configurable: Json = {"thread_id": thread_id, "checkpoint_ns": ""}
    if ref:
        configurable["checkpoint_ns"] = ref.get("checkpoint_ns") or ""
        if ref.get("checkpoint_id"):
            configurable["checkpoint_id"] = check_checkpoint_id(
                ref["checkpoint_id"], field="checkpoint.checkpoint_id"
            )
        if ref.get("checkpoint_map"):
            configurable["checkpoint_map"] = ref["checkpoint_map"]
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def latest_config(thread_id: str) -> RunnableConfig:
    """The config of the thread's latest checkpoint in the root namespace."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def require_checkpoint(storage: Storage, config: Json) -> None:
    """Raises:
    NotFoundError: the config names a checkpoint the thread does not have.
    """
    configurable = config["configurable"]
    if not configurable.get("checkpoint_id"):
        return
    found = await storage.read_checkpointer.aget_tuple(config)  # type: ignore[arg-type]
    if found is None:
        raise NotFoundError(
            f'Checkpoint "{configurable["checkpoint_id"]}" not found on thread '
            f'"{configurable["thread_id"]}"'
            + (
                f' in namespace "{configurable["checkpoint_ns"]}"'
                if configurable["checkpoint_ns"]
                else ""
            ),
            code="checkpoint_not_found",
        )
