"""The difference between two checkpoints of a thread: channels added, removed and changed, and
for message lists the messages added, removed and changed, by id. A time-travel extra beyond
LangGraph; both sides are state values as `snapshot.get_state` shows them."""

from __future__ import annotations

from typing import Any

from agent_runtime.encoding import to_jsonable
from agent_runtime.errors import NotFoundError
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.schema import Json
from agent_runtime.state.checkpoint import thread_graph
from agent_runtime.state.shape import check_checkpoint_id, checkpoint_json
from agent_runtime.storage.base import Storage


async def diff_checkpoints(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    *,
    from_id: Any = None,
    to_id: Any = None,
    namespace: str = "",
) -> Json:
    """What changed between checkpoints `from_id` and `to_id` of the thread, in `namespace`.
    `to_id` defaults to the latest checkpoint and `from_id` to `to_id`'s parent. A thread whose
    graph is not registered has no state to show, and no differences either.

    Raises:
        NotFoundError: the thread, or a checkpoint named, does not exist.
        InvalidRequestError: a checkpoint id is malformed.
    """
    thread = await storage.get_thread(thread_id, values=False)
    thread_id = thread["thread_id"]
    graph = await thread_graph(storage, registry, thread, for_reads=True)
    to_id = check_checkpoint_id(to_id, field="to") if to_id is not None else None
    from_id = check_checkpoint_id(from_id, field="from") if from_id is not None else None
    later = await _tuple(storage, thread_id, namespace, to_id, field="to")
    if from_id is None and later is not None and later.parent_config:
        from_id = later.parent_config["configurable"]["checkpoint_id"]
    earlier = (
        await _tuple(storage, thread_id, namespace, from_id, field="from") if from_id else None
    )
    before = await _values(graph, earlier)
    after = await _values(graph, later)
    return {
        "from": checkpoint_json(earlier.config) if earlier else None,
        "to": checkpoint_json(later.config) if later else None,
        **diff_values(before, after),
    }


async def _tuple(
    storage: Storage, thread_id: str, namespace: str, checkpoint_id: str | None, *, field: str
) -> Any:
    configurable: Json = {"thread_id": thread_id, "checkpoint_ns": namespace}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    found = await storage.read_checkpointer.aget_tuple({"configurable": configurable})
    if found is None and checkpoint_id:
        raise NotFoundError(
            f'{field}: checkpoint "{checkpoint_id}" not found on thread "{thread_id}"',
            code="checkpoint_not_found",
        )
    return found


async def _values(graph: AnyGraph | None, found: Any) -> Json:
    # The state values, as `GET /threads/{id}/state/{checkpoint_id}` shows them, never the
    # stored channel values: a delta channel (the example graphs' `messages`) stores only what
    # each step added, with the whole list only in its periodic snapshots, and the raw values
    # hold LangGraph's internal channels (`branch:to:...`) besides. Without the graph there is
    # no way to rebuild them, so a thread whose graph is unknown shows no values here either.
    if found is None or graph is None:
        return {}
    snapshot = await graph.aget_state(found.config)
    return to_jsonable(snapshot.values or {})  # type: ignore[no-any-return]


def diff_values(before: Json, after: Json) -> Json:
    """The difference of two JSON states, channel by channel; message lists by message id."""
    added = {k: v for k, v in after.items() if k not in before}
    removed = {k: v for k, v in before.items() if k not in after}
    changed: Json = {}
    messages: Json = {}
    for key in before.keys() & after.keys():
        old, new = before[key], after[key]
        if old == new:
            continue
        if _is_message_list(old) and _is_message_list(new):
            messages[key] = _diff_messages(old, new)
        else:
            changed[key] = {"from": old, "to": new}
    for key, value in added.items():
        if _is_message_list(value):
            messages[key] = _diff_messages([], value)
    return {"added": added, "removed": removed, "changed": changed, "messages": messages}


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and "type" in item and "content" in item for item in value
    )


def _diff_messages(old: list[Json], new: list[Json]) -> Json:
    old_by_id = {m.get("id"): m for m in old}
    new_by_id = {m.get("id"): m for m in new}
    return {
        "added": [m for m in new if m.get("id") not in old_by_id],
        "removed": [m for m in old if m.get("id") not in new_by_id],
        "changed": [
            {"id": mid, "from": old_by_id[mid], "to": m}
            for mid, m in new_by_id.items()
            if mid in old_by_id and old_by_id[mid] != m
        ],
    }
