"""Time-travel extras beyond LangGraph: the checkpoint tree of a thread (every checkpoint,
no values, cheap enough for thousands) and the diff between two checkpoints."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.encoding import to_jsonable
from agent_runtime.errors import NotFoundError
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.schema import Json
from agent_runtime.server.routing import Router
from agent_runtime.server.services import Services, services
from agent_runtime.server.snapshots import check_checkpoint_id, checkpoint_json
from agent_runtime.server.state import thread_graph
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import closed
from agent_runtime.storage.base import CheckpointSummary

router = Router("thread state")


# `from` is a Python keyword, hence the functional form.
_DiffQuery = TypedDict("_DiffQuery", {"from": str, "to": str, "checkpoint_ns": str}, total=False)
DiffQuery = closed(_DiffQuery)


class TreeNode(TypedDict):
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint_ns: str
    step: int | None
    source: str | None
    run_id: str | None
    created_at: str | None
    next: list[str]
    """Nodes the checkpoint's channel updates trigger (tasks sent with `Send` are not listed)."""


@router.get("/threads/{thread_id}/tree", response=list[TreeNode])
async def get_thread_tree(request: Request, _: None) -> list[Json]:
    """Every checkpoint of the thread, oldest first, with its parent and no values: enough to
    draw each branch of a long thread in one cheap call."""
    svc = services(request)
    thread = await svc.storage.get_thread(thread_id_of(request), values=False)
    graph = await thread_graph(svc, thread, for_reads=True)
    summaries = await svc.storage.list_checkpoint_summaries(thread["thread_id"])
    graphs: dict[str, AnyGraph | None] = {"": graph}
    nodes = []
    for summary in summaries:
        path = _node_path(summary.checkpoint_ns)
        if path not in graphs:
            graphs[path] = _subgraph(graph, path)
        nodes.append(_node(summary, graphs[path]))
    return nodes


def _node_path(namespace: str) -> str:
    # "parent:<task id>|child:<task id>" names the subgraph "parent|child".
    return "|".join(part.split(":")[0] for part in namespace.split("|")) if namespace else ""


def _subgraph(graph: AnyGraph | None, path: str) -> AnyGraph | None:
    if graph is None:
        return None
    found = dict(graph.get_subgraphs(namespace=path, recurse=True)).get(path)
    return found if isinstance(found, type(graph)) else None


def _node(summary: CheckpointSummary, graph: AnyGraph | None) -> Json:
    metadata = summary.metadata
    return {
        "checkpoint_id": summary.checkpoint_id,
        "parent_checkpoint_id": summary.parent_checkpoint_id,
        "checkpoint_ns": summary.checkpoint_ns,
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "run_id": metadata.get("run_id"),
        "created_at": summary.created_at,
        "next": [] if graph is None else _next_nodes(summary, graph),
    }


def _next_nodes(summary: CheckpointSummary, graph: AnyGraph) -> list[str]:
    # The rule LangGraph uses to pick the next pull tasks: a trigger channel holds a value
    # whose version the node has not yet seen.
    versions = summary.channel_versions
    found = []
    for name, node in graph.nodes.items():
        seen = summary.versions_seen.get(name)
        for channel in node.triggers:
            if channel not in summary.channels_with_values or channel not in versions:
                continue
            if seen is None or _newer(versions[channel], seen.get(channel)):
                found.append(name)
                break
    return found


def _newer(version: Any, seen: Any) -> bool:
    if seen is None:
        return True
    try:
        return bool(version > seen)
    except TypeError:
        return str(version) > str(seen)


@router.get("/threads/{thread_id}/history/diff", query=DiffQuery)
async def diff_thread_checkpoints(request: Request, query: Json) -> Json:
    """What changed between two checkpoints: channels added, removed and changed, and for
    message lists the messages added, removed and changed, by id. `to` defaults to the latest
    checkpoint and `from` to `to`'s parent.

    Both sides are the checkpoints' state values as `GET /threads/{id}/state/{checkpoint_id}`
    shows them, so channels that store deltas (LangGraph's `DeltaChannel`) compare as the
    whole lists they stand for. A thread whose graph is not registered has no state to show,
    and no differences either."""
    svc = services(request)
    thread = await svc.storage.get_thread(thread_id_of(request), values=False)
    thread_id = thread["thread_id"]
    graph = await thread_graph(svc, thread, for_reads=True)
    namespace = query.get("checkpoint_ns", "")
    to_id = check_checkpoint_id(query["to"], field="to") if "to" in query else None
    from_id = check_checkpoint_id(query["from"], field="from") if "from" in query else None
    later = await _tuple(svc, thread_id, namespace, to_id, field="to")
    if from_id is None and later is not None and later.parent_config:
        from_id = later.parent_config["configurable"]["checkpoint_id"]
    earlier = await _tuple(svc, thread_id, namespace, from_id, field="from") if from_id else None
    before = await _values(graph, earlier)
    after = await _values(graph, later)
    return {
        "from": checkpoint_json(earlier.config) if earlier else None,
        "to": checkpoint_json(later.config) if later else None,
        **diff_values(before, after),
    }


async def _tuple(
    svc: Services, thread_id: str, namespace: str, checkpoint_id: str | None, *, field: str
) -> Any:
    configurable: Json = {"thread_id": thread_id, "checkpoint_ns": namespace}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    found = await svc.storage.read_checkpointer.aget_tuple({"configurable": configurable})
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
