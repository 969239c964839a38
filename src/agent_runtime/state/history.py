"""A thread's checkpoints, newest first, as `ThreadState` JSON: paged, filtered by metadata,
before a checkpoint, or in a subgraph's namespace. Reads go through the read checkpointer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runtime.registry import GraphRegistry
from agent_runtime.schema import Json
from agent_runtime.state.checkpoint import checkpoint_config, require_checkpoint, thread_graph
from agent_runtime.state.shape import check_checkpoint_id, select_fields, snapshot_json
from agent_runtime.storage.base import Storage


async def get_history(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    *,
    limit: int,
    before: str | Mapping[str, Any] | None = None,
    metadata: Json | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    select: list[str] | None = None,
) -> list[Json]:
    """At most `limit` checkpoints of the thread, newest first: only those older than `before`
    (an id or a checkpoint object), whose metadata has `metadata`'s values, in the namespace
    `checkpoint` names. A thread whose graph is unknown has none.

    Raises:
        NotFoundError: the thread, or the `before` checkpoint, does not exist.
        InvalidRequestError: a checkpoint id is malformed.
    """
    thread = await storage.get_thread(thread_id, values=False)
    thread_id = thread["thread_id"]
    config = checkpoint_config(thread_id, checkpoint)
    config["configurable"].pop("checkpoint_id", None)
    before_config = None
    if before is not None:
        before_id = before if isinstance(before, str) else before.get("checkpoint_id")
        before_id = check_checkpoint_id(before_id, field="before")
        before_config = checkpoint_config(
            thread_id, {**(checkpoint or {}), "checkpoint_id": before_id}
        )
        await require_checkpoint(storage, before_config)
    graph = await thread_graph(storage, registry, thread, for_reads=True)
    if graph is None:
        return []
    states = graph.aget_state_history(
        config,  # type: ignore[arg-type]
        filter=metadata or None,
        before=before_config,  # type: ignore[arg-type]
        limit=limit,
    )
    return [select_fields(snapshot_json(s), select) async for s in states]
