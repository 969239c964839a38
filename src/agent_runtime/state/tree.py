"""The checkpoint tree of a thread: every checkpoint, all namespaces, with its parent and the
nodes it would run next, and no values: cheap enough for thousands. A time-travel extra beyond
LangGraph."""

from __future__ import annotations

from typing import Any

from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.schema import Json
from agent_runtime.state.checkpoint import thread_graph
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import CheckpointSummary


async def get_tree(storage: Storage, registry: GraphRegistry, thread_id: str) -> list[Json]:
    """Every checkpoint of the thread, oldest first, with its parent and no values (`TreeNode`
    in the API); `next` stays empty when the thread's graph is unknown.

    Raises:
        NotFoundError: the thread does not exist.
    """
    thread = await storage.get_thread(thread_id, values=False)
    graph = await thread_graph(storage, registry, thread, for_reads=True)
    summaries = await storage.list_checkpoint_summaries(thread["thread_id"])
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
