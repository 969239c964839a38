"""A thread's state at its latest or a past checkpoint, as `ThreadState` JSON. Reads go through
the storage's read checkpointer so they never hold up a running graph's writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runtime.registry import GraphRegistry
from agent_runtime.schema import Json
from agent_runtime.state.checkpoint import checkpoint_config, require_checkpoint, thread_graph
from agent_runtime.state.shape import empty_snapshot, select_fields, snapshot_json
from agent_runtime.storage.base import Storage


async def get_state(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    *,
    checkpoint: Mapping[str, Any] | None = None,
    checkpoint_id: Any = None,
    subgraphs: bool = False,
    select: list[str] | None = None,
) -> Json:
    """The thread's state at the checkpoint `checkpoint` (an object: namespace and id) or
    `checkpoint_id` names, else at its latest; `subgraphs` nests subgraph states, `select`
    keeps only these keys. A thread whose graph is unknown shows an empty state.

    Raises:
        NotFoundError: the thread, or the checkpoint named, does not exist.
        InvalidRequestError: a checkpoint id is malformed.
    """
    thread = await storage.get_thread(thread_id, values=False)
    config = checkpoint_config(thread["thread_id"], checkpoint, checkpoint_id)
    await require_checkpoint(storage, config)
    graph = await thread_graph(storage, registry, thread, for_reads=True)
    if graph is None:
        return select_fields(empty_snapshot(thread["thread_id"]), select)
    snapshot = await graph.aget_state(config, subgraphs=subgraphs)  # type: ignore[arg-type]
    if snapshot.created_at is None and not snapshot.values:
        return select_fields(empty_snapshot(thread["thread_id"]), select)
    return select_fields(snapshot_json(snapshot), select)
