"""What a compiled graph looks like from outside: its drawing as JSON, its JSON schemas and its
subgraphs. Pure functions of a graph; no storage."""

from __future__ import annotations

from typing import Any

from langgraph.pregel import Pregel
from pydantic import TypeAdapter

from agent_runtime.errors import NotFoundError
from agent_runtime.schema import Json

AnyGraph = Pregel[Any, Any, Any, Any]


async def describe_graph(graph: AnyGraph, *, xray: bool | int) -> Json:
    """Nodes and edges as `langgraph_sdk` expects from `/assistants/{id}/graph`."""
    drawn = await graph.aget_graph(xray=xray)
    result: Json = drawn.to_json()
    return result


def graph_schemas(graph: AnyGraph) -> Json:
    """Input, output, state, config and context JSON schemas; None where a graph has none."""
    return {
        "input_schema": _safe(graph.get_input_jsonschema),
        "output_schema": _safe(graph.get_output_jsonschema),
        "state_schema": _state_schema(graph),
        "config_schema": _safe(graph.get_config_jsonschema),
        "context_schema": _safe(graph.get_context_jsonschema),
    }


async def list_subgraphs(graph: AnyGraph, *, namespace: str | None, recurse: bool) -> Json:
    """Schemas of each subgraph keyed by its namespace (`parent|child` when nested).

    Raises:
        NotFoundError: a namespace was asked for and the graph has no such subgraph.
    """
    found: Json = {}
    async for name, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        found[name] = {"graph_id": name, **graph_schemas(subgraph)}  # type: ignore[arg-type]
    if namespace is not None and not found:
        raise NotFoundError(
            f'The graph has no subgraph in namespace "{namespace}"', code="subgraph_not_found"
        )
    return found


def _state_schema(graph: AnyGraph) -> Json | None:
    builder = getattr(graph, "builder", None)
    state = getattr(builder, "state_schema", None)
    if state is None:
        return _safe(graph.get_output_jsonschema)
    try:
        schema: Json = TypeAdapter(state).json_schema()
    except Exception:
        # Some state classes (arbitrary types, forward refs) have no JSON schema; the output
        # schema is the closest honest answer.
        return _safe(graph.get_output_jsonschema)
    return schema


def _safe(produce: Any) -> Json | None:
    try:
        schema: Json | None = produce()
    except Exception:
        return None
    return schema
