"""Assistant routes: CRUD, search, versions, and what a graph looks like (drawing, schemas,
subgraphs). Assistants are named by id or, for a graph's default assistant, by graph name."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Required

from pydantic import Field
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.errors import NotFoundError
from agent_runtime.limits import check_metadata_size
from agent_runtime.schema import Assistant, AssistantVersion, Json, OnConflict, SortOrder
from agent_runtime.server.auth.authorize import request_filter
from agent_runtime.server.graphs import describe_graph, graph_schemas, list_subgraphs
from agent_runtime.server.routing import Router, json_response
from agent_runtime.server.services import Services, services
from agent_runtime.server.validation import (
    ContainmentFilter,
    Metadata,
    Offset,
    UuidStr,
    Version,
    closed,
    parse_uuid,
)
from agent_runtime.storage.records import (
    AssistantPatch,
    AssistantQuery,
    AssistantSortBy,
    NewAssistant,
)

router = Router("assistants")

Limit = Annotated[int, Field(ge=1, le=1000)]
AssistantField = Literal[
    "assistant_id", "graph_id", "name", "description", "config", "context",
    "created_at", "updated_at", "metadata", "version",
]  # fmt: skip


@closed
class AssistantCreate(TypedDict, total=False):
    graph_id: Required[Annotated[str, Field(min_length=1)]]
    """The graph this assistant runs, as named in langgraph.json."""
    assistant_id: UuidStr
    """A UUID; one is generated when absent."""
    config: Json
    context: Json
    metadata: Metadata
    if_exists: OnConflict
    name: Annotated[str, Field(max_length=200)]
    description: str | None


@closed
class AssistantUpdate(TypedDict, total=False):
    graph_id: Annotated[str, Field(min_length=1)]
    config: Json
    context: Json
    metadata: Metadata
    """Merged into the current metadata."""
    name: Annotated[str, Field(max_length=200)]
    description: str | None


@closed
class AssistantSearch(TypedDict, total=False):
    metadata: ContainmentFilter
    graph_id: str
    name: str
    limit: Limit
    offset: Offset
    sort_by: AssistantSortBy
    sort_order: SortOrder
    select: list[AssistantField]


@closed
class AssistantCount(TypedDict, total=False):
    metadata: ContainmentFilter
    graph_id: str
    name: str


@closed
class VersionSearch(TypedDict, total=False):
    metadata: ContainmentFilter
    limit: Limit
    offset: Offset


@closed
class LatestVersion(TypedDict):
    version: Version


@closed
class GraphQuery(TypedDict, total=False):
    xray: bool | Annotated[int, Field(ge=0)]


@closed
class SubgraphQuery(TypedDict, total=False):
    recurse: bool


@closed
class DeleteQuery(TypedDict, total=False):
    delete_threads: bool


def resolve_assistant_id(svc: Services, value: str) -> str:
    """An assistant id from a UUID or a graph name (its default assistant).

    Raises:
        NotFoundError: when the value is neither a UUID nor a known graph.
    """
    return svc.registry.resolve_assistant_id(value)


async def _assistant(request: Request) -> Assistant:
    svc = services(request)
    assistant_id = resolve_assistant_id(svc, request.path_params["assistant_id"])
    return await svc.storage.get_assistant(assistant_id)


@router.post("/assistants", body=AssistantCreate, response=Assistant)
async def create_assistant(request: Request, body: AssistantCreate) -> Assistant:
    """Create an assistant: a graph with its own config, context and metadata."""
    svc = services(request)
    graph_id = body["graph_id"]
    _require_graph(svc, graph_id)
    raw_id = body.get("assistant_id")
    assistant_id = (
        parse_uuid(raw_id, field="assistant_id") if raw_id is not None else str(uuid.uuid4())
    )
    limit = svc.config.limits.max_metadata_bytes
    check_metadata_size(body.get("metadata") or {}, limit=limit, owner="assistant")
    new = NewAssistant(
        assistant_id=assistant_id,
        graph_id=graph_id,
        config=body.get("config") or {},
        context=body.get("context") or {},
        metadata=body.get("metadata") or {},
        name=body.get("name") or "Untitled",
        description=body.get("description"),
    )
    return await svc.storage.create_assistant(new, if_exists=body.get("if_exists", "raise"))


@router.post("/assistants/search", body=AssistantSearch, response=list[Assistant], selects=True)
async def search_assistants(request: Request, body: AssistantSearch) -> Any:
    """List assistants matching every filter given, newest first by default."""
    query = AssistantQuery(
        graph_id=body.get("graph_id"),
        name=body.get("name"),
        metadata=body.get("metadata"),
        auth=request_filter(request),
        limit=body.get("limit", 10),
        offset=body.get("offset", 0),
        sort_by=body.get("sort_by", "created_at"),
        sort_order=body.get("sort_order", "desc"),
    )
    found = await services(request).storage.search_assistants(query)
    select = body.get("select")
    items = [{k: a[k] for k in select} for a in found] if select else found  # type: ignore[literal-required]
    headers = {}
    if len(found) == query.limit:
        headers["X-Pagination-Next"] = str(query.offset + query.limit)
    return json_response(items, headers=headers)


@router.post("/assistants/count", body=AssistantCount, response=int)
async def count_assistants(request: Request, body: AssistantCount) -> int:
    """Count assistants matching every filter given."""
    query = AssistantQuery(
        graph_id=body.get("graph_id"),
        name=body.get("name"),
        metadata=body.get("metadata"),
        auth=request_filter(request),
    )
    return await services(request).storage.count_assistants(query)


@router.get("/assistants/{assistant_id}", response=Assistant)
async def get_assistant(request: Request, _: None) -> Assistant:
    """Get an assistant by id, or a graph's default assistant by graph name."""
    return await _assistant(request)


@router.patch("/assistants/{assistant_id}", body=AssistantUpdate, response=Assistant)
async def update_assistant(request: Request, body: AssistantUpdate) -> Assistant:
    """Change an assistant; this stores a new version and makes it the current one."""
    svc = services(request)
    current = await _assistant(request)
    if "graph_id" in body:
        _require_graph(svc, body["graph_id"])
    if body.get("metadata"):
        # Merged into the current metadata, as storage will.
        merged = {**current["metadata"], **body["metadata"]}
        check_metadata_size(merged, limit=svc.config.limits.max_metadata_bytes, owner="assistant")
    patch = AssistantPatch(
        graph_id=body.get("graph_id"),
        config=body.get("config"),
        context=body.get("context"),
        metadata=body.get("metadata"),
        name=body.get("name"),
        description=body.get("description"),
    )
    return await svc.storage.update_assistant(current["assistant_id"], patch)


@router.delete("/assistants/{assistant_id}", query=DeleteQuery, status=204)
async def delete_assistant(request: Request, query: DeleteQuery) -> None:
    """Delete an assistant and its versions; `delete_threads=true` also deletes its threads."""
    svc = services(request)
    current = await _assistant(request)
    await svc.storage.delete_assistant(
        current["assistant_id"],
        delete_threads=query.get("delete_threads", False),
        thread_auth=request_filter(request),
    )


@router.post(
    "/assistants/{assistant_id}/versions", body=VersionSearch, response=list[AssistantVersion]
)
async def list_assistant_versions(request: Request, body: VersionSearch) -> list[AssistantVersion]:
    """List an assistant's versions, newest first."""
    current = await _assistant(request)
    return await services(request).storage.list_assistant_versions(
        current["assistant_id"],
        metadata=body.get("metadata"),
        limit=body.get("limit", 10),
        offset=body.get("offset", 0),
    )


@router.post("/assistants/{assistant_id}/latest", body=LatestVersion, response=Assistant)
async def set_latest_assistant_version(request: Request, body: LatestVersion) -> Assistant:
    """Make a stored version the current one."""
    current = await _assistant(request)
    return await services(request).storage.set_latest_assistant_version(
        current["assistant_id"], body["version"]
    )


@router.get("/assistants/{assistant_id}/graph", query=GraphQuery)
async def get_assistant_graph(request: Request, query: GraphQuery) -> Json:
    """The assistant's graph as nodes and edges; `xray` expands subgraphs (to a depth if an int)."""
    assistant = await _assistant(request)
    graph = await services(request).registry.get_graph(
        assistant["graph_id"],
        config=assistant["config"],  # type: ignore[arg-type]
    )
    return await describe_graph(graph, xray=query.get("xray", False))


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(request: Request, _: None) -> Json:
    """JSON schemas of the graph's input, output, state, config and context."""
    assistant = await _assistant(request)
    graph = await services(request).registry.get_graph(
        assistant["graph_id"],
        config=assistant["config"],  # type: ignore[arg-type]
    )
    return {"graph_id": assistant["graph_id"], **graph_schemas(graph)}


@router.get("/assistants/{assistant_id}/subgraphs", query=SubgraphQuery)
async def get_assistant_subgraphs(request: Request, query: SubgraphQuery) -> Json:
    """Schemas of the graph's subgraphs, keyed by namespace."""
    return await _subgraphs(request, None, query.get("recurse", False))


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}", query=SubgraphQuery)
async def get_assistant_subgraphs_in_namespace(request: Request, query: SubgraphQuery) -> Json:
    """Schemas of the subgraphs under one namespace."""
    return await _subgraphs(request, request.path_params["namespace"], query.get("recurse", False))


async def _subgraphs(request: Request, namespace: str | None, recurse: bool) -> Json:
    assistant = await _assistant(request)
    graph = await services(request).registry.get_graph(
        assistant["graph_id"],
        config=assistant["config"],  # type: ignore[arg-type]
    )
    return await list_subgraphs(graph, namespace=namespace, recurse=recurse)


def _require_graph(svc: Services, graph_id: str) -> None:
    if graph_id not in svc.registry:
        known = ", ".join(svc.registry.graph_ids)
        raise NotFoundError(
            f'Graph "{graph_id}" not found; known graphs: {known}', code="graph_not_found"
        )
